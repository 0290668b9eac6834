#!/usr/bin/env bash
# Stops what hack/testenv-up.sh started (kube-apiserver, the emulator, etcd, and
# in node mode the node's parts: hack/node-down.sh),
# by the pids in target/testenv/*.pid: SIGTERM, then SIGKILL after
# TESTENV_STOP_TIMEOUT seconds (15). Removes the pid files, env.sh and etcd's
# data; keeps the logs. Idempotent: with nothing running it does nothing.
set -euo pipefail
# shellcheck source=hack/errtrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/errtrap.sh"

HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
. "$HACK_DIR/lib.sh"

STATE="$TESTENV_STATE_DIR"
TIMEOUT="${TESTENV_STOP_TIMEOUT:-15}"
[ -d "$STATE" ] || exit 0

if [ "${TESTENV_LOCK_HELD:-}" != 1 ] && command -v flock >/dev/null 2>&1; then
    exec 8>"$STATE/.lock"
    flock -w 300 8 || testenv_die "another testenv-up/down holds $STATE/.lock"
fi

# signal SIG PID: the process, and its process group when it leads one (each
# service is started in its own session by testenv-up.sh).
signal() {
    local pgid
    pgid="$(ps -o pgid= -p "$2" 2>/dev/null | tr -d ' ')" || true
    if [ "$pgid" = "$2" ]; then
        kill "-$1" -- "-$2" 2>/dev/null || true
    else
        kill "-$1" "$2" 2>/dev/null || true
    fi
}

# alive PID: runs and is not a zombie.
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    [ "$(sed -n 's/^[^)]*) \([A-Z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# Node mode first (kubelets, containers, containerd, mounts, cgroups, host state), while the
# apiserver still runs.
# shellcheck source=hack/node-down.sh
. "$HACK_DIR/node-down.sh"
node_down

pids=""
for name in $TESTENV_SERVICES; do
    if pid="$(testenv_live_pid "$name")"; then
        testenv_log "stopping $name (pid $pid)"
        signal TERM "$pid"
        pids="$pids $name:$pid"
    fi
done

deadline=$(($(date +%s) + TIMEOUT))
for entry in $pids; do
    name="${entry%%:*}" pid="${entry#*:}"
    while alive "$pid" && [ "$(date +%s)" -lt "$deadline" ]; do
        sleep 0.1
    done
    if alive "$pid"; then
        testenv_log "$name (pid $pid) still runs after ${TIMEOUT}s; sending SIGKILL"
        signal KILL "$pid"
        for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    fi
done

for name in $TESTENV_SERVICES; do rm -f "$STATE/$name.pid"; done
rm -rf "$STATE/env.sh" "$STATE/ports" "$STATE/mode" "$STATE/etcd-data"
if [ -n "$pids" ]; then testenv_log "down"; else testenv_log "nothing was running"; fi
