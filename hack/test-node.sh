#!/usr/bin/env bash
# `make test-node`: the operator as a pod from its own image. Brings the test environment up in
# node mode (TESTENV_NODE=1 hack/testenv-up.sh; an environment without nodes is restarted with
# them), builds the image and imports it (hack/build-image.sh), runs tests/node, and, when it
# started the environment, brings it down and checks that nothing was left behind
# (hack/testenv-leftovers.sh). TESTENV_KEEP=1 leaves it running.
set -euo pipefail
# shellcheck source=hack/errtrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/errtrap.sh"
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ "${TESTENV_USE_EXISTING_CLUSTER:-}" = 1 ]; then
    echo "== tests/node NOT RUN: they need the local node mode, not TESTENV_USE_EXISTING_CLUSTER" >&2
    exit 1
fi
started_here=0
if ! grep -qs ' node x' target/testenv/mode; then started_here=1; fi
t0=$(date +%s)
echo "== node mode: TESTENV_NODE=1 hack/testenv-up.sh"
TESTENV_NODE=1 hack/testenv-up.sh
down() {
    echo "== testenv-down and the leftovers check"
    hack/testenv-down.sh && hack/testenv-leftovers.sh
}
if [ "$started_here" = 1 ] && [ -z "${TESTENV_KEEP:-}" ]; then
    trap 'rc=$?; down || rc=1; exit $rc' EXIT
fi
t1=$(date +%s)
echo "== the operator's image: hack/build-image.sh"
hack/build-image.sh >/dev/null
t2=$(date +%s)
# shellcheck disable=SC1091
. target/testenv/env.sh
python="$(hack/emulator/setup-venv.sh)"
echo "== pytest tests/node"
"$python" -m pytest -q tests/node
t3=$(date +%s)
echo "== node: up $((t1 - t0)) s, image $((t2 - t1)) s, tests $((t3 - t2)) s"
