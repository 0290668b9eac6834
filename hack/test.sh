#!/usr/bin/env bash
# `make test`: formatting and lints, then every test (Rust and Python) against a test
# environment that this script starts and stops. With TESTENV_USE_EXISTING_CLUSTER=1 and
# KUBECONFIG set, the tests use that cluster (only the emulator is started).
#
# Nothing is skipped; the time goes down by overlapping what waits with what computes
# (docs/testing.md has the phases and their times):
#   - the builds no test needs yet run in the background, at the lowest CPU priority, while the
#     foreground goes on: the Go binaries of the test environment (node mode's too), promtool
#     and the emulator's venv beside the Rust build; the operator's musl image beside the tests;
#   - the fault matrix's CI subset (its own emulator) runs beside the other Python tests, and so
#     do the tests that act on the whole cluster (tests/conftest.py, SOLO_FILES), one at a time
#     on a second API server (TESTENV_STATE_DIR=target/testenv-solo);
#   - the Python tests run on TEST_WORKERS (default 4) pytest-xdist workers, each with an
#     emulator of its own (tests/conftest.py); they share the API server, every test in its own
#     namespace.
# A background step's output goes to target/test-logs/<step>.log and is printed when it fails.
# The phase times are printed at the end and written to target/test-logs/times.txt.
set -euo pipefail
# shellcheck source=hack/errtrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/errtrap.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

WORKERS="${TEST_WORKERS:-4}"
LOGS=target/test-logs
rm -rf "$LOGS"
mkdir -p "$LOGS"
T0=$(date +%s)
: >"$LOGS/times.txt"

# phase NAME: prints the header and closes the previous phase's timing.
current="" current_t0=$T0
phase() {
    local now
    now=$(date +%s)
    [ -z "$current" ] || printf '%-58s %5d s\n' "$current" $((now - current_t0)) >>"$LOGS/times.txt"
    current="$1" current_t0=$now
    [ -z "$1" ] || echo "== $1"
}

# bg NAME NICENESS CMD...: runs CMD in the background in a session of its own (so that it can be
# stopped whole), its output in $LOGS/NAME.log, its end time in $LOGS/NAME.end. Builds run at
# niceness 19, tests at 0 (their operators must not starve).
declare -A BG_PID BG_T0
bg() {
    local name="$1" niceness="$2"
    shift 2
    BG_T0[$name]=$(date +%s)
    (
        # A new session is a new scheduler autogroup (kernel.sched_autogroup_enabled), in which
        # nice counts only against the session's own processes: give the group the niceness too.
        # shellcheck disable=SC2016 # expanded by the inner bash
        setsid bash -c 'echo "$0" >/proc/self/autogroup 2>/dev/null || true; exec nice -n "$0" "$@"' "$niceness" "$@" &
        echo $! >"$LOGS/$name.pgid"
        rc=0
        wait $! || rc=$?
        date +%s >"$LOGS/$name.end"
        exit $rc
    ) >"$LOGS/$name.log" 2>&1 &
    BG_PID[$name]=$!
    echo "   (background: $name, log $LOGS/$name.log)"
}
# bg_wait NAME: waits for it; on failure prints its log and fails.
bg_wait() {
    local name="$1" rc=0
    wait "${BG_PID[$name]}" || rc=$?
    unset "BG_PID[$name]"
    printf '%-58s %5d s\n' "  (background) $name" $(($(cat "$LOGS/$name.end" 2>/dev/null || date +%s) - BG_T0[$name])) >>"$LOGS/times.txt"
    if [ "$rc" != 0 ]; then
        echo "== background step $name failed (exit $rc); its log, $LOGS/$name.log:" >&2
        tail -n 200 "$LOGS/$name.log" >&2
        return "$rc"
    fi
}
# On any exit: stop the background steps still running (each its whole session), then the
# environments this script started.
cleanup() {
    local name
    for name in "${!BG_PID[@]}"; do
        kill -TERM -- "-$(cat "$LOGS/$name.pgid" 2>/dev/null)" 2>/dev/null || true
    done
    if [ "${solo_started:-0}" = 1 ]; then TESTENV_STATE_DIR="$SOLO_STATE" hack/testenv-down.sh || true; fi
    if [ "${started_here:-0}" = 1 ] && [ -z "${TESTENV_KEEP:-}" ]; then hack/testenv-down.sh || true; fi
}
trap cleanup EXIT

phase "system packages (openssl, curl, lua5.1, python3)"
hack/ensure-packages.sh

command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs), then run: rustup component add rustfmt clippy" >&2; exit 1; }

phase "cargo fmt --check"
cargo fmt --all -- --check

# Nothing below needs these until the environment starts (a warm cache makes each a no-op).
if [ "${TESTENV_USE_EXISTING_CLUSTER:-}" != 1 ]; then
    bg testenv-binaries 19 hack/build-testenv.sh --node
fi
bg promtool 19 hack/ensure-promtool.sh
bg venv 19 hack/emulator/setup-venv.sh

phase "cargo clippy -D warnings"
cargo clippy --all-targets -- -D warnings
phase "build"
cargo build --all-targets

phase "test environment (waits for the Go build on a cold machine)"
[ -z "${BG_PID[testenv-binaries]:-}" ] || bg_wait testenv-binaries
bg_wait venv
started_here=0
if [ ! -f target/testenv/env.sh ]; then started_here=1; fi
hack/testenv-up.sh
# shellcheck disable=SC1091
. target/testenv/env.sh
python="$(hack/emulator/setup-venv.sh)"

# The node phase's image: a musl release build with fat LTO, all CPU, no test needs it before
# the node phase.
if [ "${TESTENV_USE_EXISTING_CLUSTER:-}" != 1 ]; then
    bg image 19 env IMAGE_IMPORT=0 hack/build-image.sh
fi

# The solo phase's environment (tests/conftest.py, SOLO_FILES): a second API server, etcd and
# emulator beside the first, for the tests that act on the whole cluster.
SOLO_STATE="$PWD/target/testenv-solo"
solo_started=0
if [ "${TESTENV_USE_EXISTING_CLUSTER:-}" != 1 ]; then
    solo_started=1
    TESTENV_STATE_DIR="$SOLO_STATE" hack/testenv-up.sh
fi

phase "cargo test"
cargo test --all-targets

PYTEST=("$python" -m pytest -q -p no:cacheprovider tests/emulator tests/testenv tests/e2e tests/ship)
phase "pytest: $WORKERS workers, beside them the solo tests and the fault matrix's CI subset"
bg_wait promtool
# The fault matrix's CI subset (make test-faults for the full run): its own emulator and
# operators, the shared API server; its cases compare counts, not times.
bg faults 0 env FAULT_OBJECTS=50 "$python" -m pytest -q -s -p no:cacheprovider tests/faults \
    -k "throttle_50 or sigkilled or api_server_restarted"
SOLO=("${PYTEST[@]}" -m solo --basetemp "$LOGS/tmp-solo")
if [ "$solo_started" = 1 ]; then
    # shellcheck disable=SC2016 # expanded by the inner bash
    bg solo 0 bash -c '. "$0/env.sh" && exec "$@"' "$SOLO_STATE" "${SOLO[@]}"
fi
"${PYTEST[@]}" -n "$WORKERS" --dist load --durations=30 -m "not solo" --basetemp "$LOGS/tmp-workers"
phase "the solo tests and the fault matrix's CI subset (what still runs of them)"
if [ "$solo_started" = 1 ]; then
    bg_wait solo
    tail -n 1 "$LOGS/solo.log"
    TESTENV_STATE_DIR="$SOLO_STATE" hack/testenv-down.sh
    solo_started=0
else
    # One cluster only (TESTENV_USE_EXISTING_CLUSTER): the solo tests run after the others.
    "${SOLO[@]}"
fi
bg_wait faults
tail -n 1 "$LOGS/faults.log"

phase "node mode: the operator as a pod from its own image (make test-node)"
if [ "${TESTENV_USE_EXISTING_CLUSTER:-}" = 1 ]; then
    echo "NOT RUN: tests/node need the local nodes (TESTENV_NODE=1), not TESTENV_USE_EXISTING_CLUSTER=1" >&2
else
    bg_wait image
    # Restarts the environment with nodes (a fresh cluster), builds (now: finds it built) and
    # imports the image, runs tests/node, then (unless TESTENV_KEEP) stops it and checks that
    # nothing was left behind.
    hack/test-node.sh
    started_here=0
fi
phase ""
printf '%-58s %5d s\n' "make test, all" $(($(date +%s) - T0)) >>"$LOGS/times.txt"
echo "== times ($LOGS/times.txt)"
cat "$LOGS/times.txt"
