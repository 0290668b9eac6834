#!/usr/bin/env bash
# Makes sure the system commands the tests need are installed, installing the missing ones with
# apt-get (Debian/Ubuntu). `make test` (hack/test.sh) and hack/testenv-up.sh run it first.
#
#   openssl, curl   hack/testenv-up.sh: the test environment's certificates, health checks
#   lua5.1          tests/ship: Argo CD's health check (deploy/argocd/health.lua) under Lua 5.1
#   python3 (+venv) hack/emulator/setup-venv.sh: the emulator's and the tests' venv
#
# Idempotent: when every command is there it does nothing (no apt-get at all). Otherwise it
# runs `apt-get update -qq` once and one `apt-get install` of every missing package. When
# something is missing and this is not root (or there is no apt-get), it fails and prints the
# command that installs it.
#
# Usage: hack/ensure-packages.sh [COMMAND...]   (default: every command above)
# Environment (for tests of this script): ENSURE_PACKAGES_SPEC overrides the list, as
# space-separated command:package pairs; ENSURE_PACKAGES_UID stands in for the user id.
set -euo pipefail
# shellcheck source=hack/errtrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/errtrap.sh"

log() { printf '[ensure-packages] %s\n' "$*" >&2; }
die() { printf '[ensure-packages] ERROR: %s\n' "$*" >&2; exit 1; }

# command:package
spec="${ENSURE_PACKAGES_SPEC:-openssl:openssl curl:curl lua5.1:lua5.1 python3:python3}"

declare -A package_of=()
order=()
for pair in $spec; do
    [[ "$pair" == *:* ]] || die "bad entry '$pair' in the package list (want command:package)"
    package_of["${pair%%:*}"]="${pair#*:}"
    order+=("${pair%%:*}")
done
if (($# > 0)); then
    for cmd in "$@"; do
        [[ -n "${package_of[$cmd]:-}" ]] || die "unknown command '$cmd'; known: ${order[*]}"
    done
    order=("$@")
fi

missing=()
for cmd in "${order[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${package_of[$cmd]}")
done
# Debian splits the venv module out of python3; setup-venv.sh needs it. Only the system
# python3 can be fixed with apt-get (a pyenv or conda python3 has its own venv).
if [[ " ${order[*]} " == *" python3 "* && -z "${ENSURE_PACKAGES_SPEC:-}" ]]; then
    if ! command -v python3 >/dev/null 2>&1; then
        missing+=(python3-venv)
    elif [[ "$(command -v python3)" == /usr/bin/python3 ]] && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        missing+=(python3-venv)
    fi
fi

((${#missing[@]} == 0)) && exit 0

# One package may serve several commands.
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | awk '!seen[$0]++')
how="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
command -v apt-get >/dev/null 2>&1 \
    || die "missing: ${missing[*]}, and there is no apt-get here; install them with this system's package manager (Debian/Ubuntu: $how)"
uid="${ENSURE_PACKAGES_UID:-$(id -u)}"
[[ "$uid" == 0 ]] \
    || die "missing: ${missing[*]}; installing needs root. Run: sudo sh -c '$how' (then rerun this command)"

log "installing ${missing[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2 || die "apt-get update failed (is the package mirror reachable?)"
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || die "apt-get install ${missing[*]} failed (see above)"

still=()
for cmd in "${order[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || still+=("$cmd")
done
((${#still[@]} == 0)) || die "still missing after apt-get install: ${still[*]}"
log "installed ${missing[*]}"
