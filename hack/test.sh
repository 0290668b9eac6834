#!/usr/bin/env bash
# `make test`: formatting and lints, then every test (Rust and Python) against a test
# environment that this script starts and stops. With TESTENV_USE_EXISTING_CLUSTER=1 and
# KUBECONFIG set, the tests use that cluster (only the emulator is started).
set -euo pipefail
# shellcheck source=hack/errtrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/errtrap.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

echo "== system packages (openssl, curl, lua5.1, python3)"
hack/ensure-packages.sh

command -v cargo >/dev/null || { echo "cargo not found: install Rust with rustup (https://rustup.rs), then run: rustup component add rustfmt clippy" >&2; exit 1; }

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --all-targets -- -D warnings
echo "== build"
cargo build --all-targets

echo "== test environment"
started_here=0
if [ ! -f target/testenv/env.sh ]; then started_here=1; fi
hack/testenv-up.sh
if [ "$started_here" = 1 ] && [ -z "${TESTENV_KEEP:-}" ]; then
    trap 'hack/testenv-down.sh || true' EXIT
fi
# shellcheck disable=SC1091
. target/testenv/env.sh
python="$(hack/emulator/setup-venv.sh)"

echo "== cargo test"
cargo test --all-targets
echo "== pytest (emulator, environment, operator end to end)"
"$python" -m pytest -q tests/emulator tests/testenv tests/e2e tests/ship
echo "== fault matrix, CI subset (make test-faults for the full run)"
FAULT_OBJECTS=50 "$python" -m pytest -q -s tests/faults -k "throttle_50 or sigkilled or api_server_restarted"
echo "== node mode: the operator as a pod from its own image (make test-node)"
if [ "${TESTENV_USE_EXISTING_CLUSTER:-}" = 1 ]; then
    echo "NOT RUN: tests/node need the local nodes (TESTENV_NODE=1), not TESTENV_USE_EXISTING_CLUSTER=1" >&2
else
    # Restarts the environment with nodes (a fresh cluster), builds and imports the image, runs
    # tests/node, then (unless TESTENV_KEEP) stops it and checks that nothing was left behind.
    hack/test-node.sh
fi
