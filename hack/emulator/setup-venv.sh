#!/usr/bin/env bash
# Creates (once, then reuses) the Python venv of the API Gateway emulator and its tests:
# moto[server] plus pytest, requests and boto3, pinned in hack/emulator/requirements.txt.
#
# The venv is cached under ${XDG_CACHE_HOME:-~/.cache}/apigw-operator/
#   venv-moto-<MOTO_VERSION>-<hash of the requirements and the python version>
# MOTO_VERSION comes from hack/versions.env when that file sets it, else 5.2.5.
#
# Prints ONLY the absolute path of the venv's python on stdout; progress goes to stderr.
set -euo pipefail
# shellcheck source=hack/errtrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/../errtrap.sh"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
req="$here/requirements.txt"

log() { printf 'setup-venv: %s\n' "$*" >&2; }
die() { printf 'setup-venv: ERROR: %s\n' "$*" >&2; exit 1; }

moto_version="5.2.5"
if [[ -f "$repo/hack/versions.env" ]]; then
  v="$(sed -n -E 's/^[[:space:]]*(export[[:space:]]+)?MOTO_VERSION=["'\'']?([^"'\''[:space:]#]+).*/\2/p' "$repo/hack/versions.env" | tail -n 1)"
  if [[ -n "$v" ]]; then moto_version="$v"; fi
fi

python="${PYTHON:-python3}"
command -v "$python" >/dev/null 2>&1 \
  || die "'$python' not found. Install Python 3.9+ (Debian/Ubuntu: apt-get install -y python3 python3-venv) or set PYTHON=/path/to/python3."
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
  || die "$("$python" -V 2>&1) is too old: moto $moto_version needs Python 3.9+. Install a newer python3 or set PYTHON=/path/to/python3."
"$python" -c 'import venv, ensurepip' >/dev/null 2>&1 \
  || die "'$python' has no working venv/ensurepip module. Install it (Debian/Ubuntu: apt-get install -y python3-venv) or set PYTHON to a python3 that has it."

# The requirements actually installed: requirements.txt with the moto pin set to $moto_version.
effective="$(sed -E "s/^moto\[server\]==.*/moto[server]==${moto_version}/" "$req")"
grep -q "^moto\[server\]==${moto_version}\$" <<<"$effective" || die "$req has no 'moto[server]==' line to pin"
py_id="$("$python" -c 'import sys, platform; print(platform.python_implementation(), *sys.version_info[:3], sys.executable)')"
hash="$(printf '%s\n%s\n' "$effective" "$py_id" | sha256sum | cut -c1-12)"

cache="${XDG_CACHE_HOME:-$HOME/.cache}/apigw-operator"
venv="$cache/venv-moto-${moto_version}-${hash}"
mkdir -p "$cache"

ready() { [[ -f "$venv/.complete" && -x "$venv/bin/python" ]]; }

if ! ready; then
  # One builder at a time; others wait here and then reuse its venv.
  exec 9>"$venv.lock"
  if command -v flock >/dev/null 2>&1; then flock -w 900 9 || die "timed out waiting for $venv.lock"; fi
  if ! ready; then
    log "creating $venv (moto[server]==$moto_version) ..."
    rm -rf "$venv"
    "$python" -m venv "$venv" >&2 || die "'$python -m venv' failed (Debian/Ubuntu: apt-get install -y python3-venv)"
    reqfile="$venv/requirements.effective.txt"
    printf '%s\n' "$effective" >"$reqfile"
    "$venv/bin/python" -m pip install --disable-pip-version-check --no-input -q -r "$reqfile" >&2 \
      || { rm -rf "$venv"; die "pip install of $req failed (is PyPI reachable? see pip's output above)"; }
    "$venv/bin/python" -c 'import moto, moto.server, flask, werkzeug, boto3, requests, pytest' >&2 \
      || { rm -rf "$venv"; die "the new venv cannot import its packages"; }
    touch "$venv/.complete"
    log "ready: $venv"
  fi
fi

printf '%s\n' "$venv/bin/python"
