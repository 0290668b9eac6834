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

# Run-time state (pids, logs, certs, data) of a started test environment. TESTENV_STATE_DIR (an
# absolute path) puts a second environment beside the first: make test's solo phase runs on
# target/testenv-solo.
TESTENV_STATE_DIR="${TESTENV_STATE_DIR:-$TESTENV_REPO_ROOT/target/testenv}"

# testenv_live_pid NAME: prints the pid in $TESTENV_STATE_DIR/NAME.pid if that
# process still runs NAME's program (so a recycled pid is never taken for it).
testenv_live_pid() {
    local f="$TESTENV_STATE_DIR/$1.pid" pid pattern
    [ -s "$f" ] || return 1
    pid="$(cat "$f")"
    case "$pid" in '' | *[!0-9]*) return 1 ;; esac
    case "$1" in
        emulator) pattern="server.py" ;;
        node*-kubelet) pattern="kubelet" ;;
        node*-containerd) pattern="containerd" ;;
        *) pattern="$1" ;;
    esac
    [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern" || return 1
    echo "$pid"
}

# The services, in the order they are stopped.
# shellcheck disable=SC2034
TESTENV_SERVICES="kube-apiserver emulator etcd"

# --- node mode (TESTENV_NODE=1) ------------------------------------------------

# The node's binaries, built by hack/build-testenv.sh from the same k8s.io/kubernetes module as
# kube-apiserver (only in node mode, or with `hack/build-testenv.sh --node`).
# shellcheck disable=SC2034
TESTENV_NODE_BINARIES="kubelet kube-scheduler kube-controller-manager"

# How many nodes node mode starts: node i (0-based) is named and addressed 127.0.0.<i+1>, with its
# own containerd and kubelet. Two, so that two replicas with hostNetwork (one metrics port each)
# fit, one per node.
TESTENV_NODE_COUNT="${TESTENV_NODE_COUNT:-2}"

# Run-time state of node i: containerd's root and state, the kubelet's root, logs.
node_dir() { printf '%s/node%s\n' "$TESTENV_STATE_DIR" "$1"; }
node_ip() { printf '127.0.0.%s\n' "$(($1 + 1))"; }
node_containerd_socket() { printf '%s/containerd.sock\n' "$(node_dir "$1")"; }
# The sockets of the nodes that run now (one a line).
node_containerd_sockets() {
    local d
    for d in "$TESTENV_STATE_DIR"/node*/containerd.sock; do
        [ -S "$d" ] && echo "$d"
    done
    return 0
}
# The cgroup (v1, every hierarchy) under which node i's kubelet puts its pods.
node_cgroup_root() { printf '/apigw-testenv-node%s\n' "$1"; }

# apt_install PKG...: installs the Debian packages that are missing (idempotent, no upgrade).
apt_install() {
    local missing="" p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    command -v apt-get >/dev/null || testenv_die "missing Debian packages:$missing, and no apt-get to install them"
    [ "$(id -u)" = 0 ] || testenv_die "missing Debian packages:$missing; install them as root: apt-get install$missing"
    testenv_log "apt-get install$missing"
    # (Debian's containerd package starts no service on a machine without systemd, as here; the
    # node's containerd is its own process with its own socket either way.)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2 ||
        { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >&2; } ||
        testenv_die "apt-get install$missing failed"
}
