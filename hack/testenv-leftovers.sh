#!/usr/bin/env bash
# After `make testenv-down`: checks that node mode left nothing behind on the host: no process
# of the test environment (its command line names target/testenv/, or it runs in a node's
# cgroup), no mount under target/testenv/, no cgroup /apigw-testenv-node*, and no sysctl,
# iptables rule or chain, network link or network namespace that differs from what
# hack/node/host-state.py recorded before the node started. Prints each leftover; exit 1 if any.
set -euo pipefail
# shellcheck source=hack/errtrap.sh
. "$(dirname "${BASH_SOURCE[0]}")/errtrap.sh"
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/lib.sh
. "$HACK_DIR/lib.sh"
if python3 "$HACK_DIR/node/host-state.py" check "$TESTENV_STATE_DIR"; then
    testenv_log "no leftovers: no process, mount, cgroup, sysctl, iptables rule, link or network namespace"
else
    testenv_die "the test environment left the above behind"
fi
