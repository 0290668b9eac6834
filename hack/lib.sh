# Shared helpers for the hack/testenv-*.sh and hack/build-testenv.sh scripts.
# Source it; it defines functions and variables, and runs nothing else.
# shellcheck shell=bash

TESTENV_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

testenv_log() { printf '[testenv] %s\n' "$*" >&2; }

testenv_die() {
    printf '[testenv] ERROR: %s\n' "$*" >&2
    exit 1
}

# Reads hack/versions.env into the environment (KUBE_VERSION, ETCD_VERSION,
# HELM_VERSION, MOTO_VERSION), failing if a key is missing.
testenv_load_versions() {
    local f="$TESTENV_REPO_ROOT/hack/versions.env"
    [ -r "$f" ] || testenv_die "missing $f"
    # shellcheck disable=SC1090
    . "$f"
    local k
    for k in KUBE_VERSION ETCD_VERSION HELM_VERSION MOTO_VERSION; do
        [ -n "${!k:-}" ] || testenv_die "$k is not set in $f"
    done
}

# Directory holding the built binaries for the pinned versions. Override the
# cache root with APIGW_TESTENV_CACHE (default ~/.cache/apigw-operator/testenv).
testenv_bin_dir() {
    local root="${APIGW_TESTENV_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/apigw-operator/testenv}"
    printf '%s/%s-%s-%s/bin\n' "$root" "$KUBE_VERSION" "$ETCD_VERSION" "$HELM_VERSION"
}

# shellcheck disable=SC2034 # used by the scripts that source this file
TESTENV_BINARIES="etcd kube-apiserver kubectl helm"

# Run-time state (pids, logs, certs, data) of a started test environment.
TESTENV_STATE_DIR="$TESTENV_REPO_ROOT/target/testenv"

# testenv_live_pid NAME: prints the pid in $TESTENV_STATE_DIR/NAME.pid if that
# process still runs NAME's program (so a recycled pid is never taken for it).
testenv_live_pid() {
    local f="$TESTENV_STATE_DIR/$1.pid" pid pattern
    [ -s "$f" ] || return 1
    pid="$(cat "$f")"
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    case "$1" in
        emulator) pattern="server.py" ;;
        *) pattern="$1" ;;
    esac
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern" || return 1
    echo "$pid"
}

# The services, in the order they are stopped.
# shellcheck disable=SC2034
TESTENV_SERVICES="kube-apiserver emulator etcd"
