"""What every pytest run under tests/ shares: one API Gateway emulator per pytest-xdist worker.

`make test` runs the Python tests in parallel (pytest-xdist, `-n`). The emulator's call
counters and faults are global to one emulator process, so two tests that count calls or post
faults must not share one. Each xdist worker therefore starts its own emulator
(hack/emulator/server.py on a free 127.0.0.1 port) before any test module is imported, and points
`AWS_ENDPOINT_URL` and `APIGW_EMULATOR_ADMIN` at it; the operators a test starts inherit that
environment. The kube-apiserver is shared: every test works in a namespace of its own (and the
cluster-scoped objects a test makes carry a random name or label), which the fixtures already do.

A few test files act on the whole cluster (SOLO_FILES below): they are marked `solo`, and
`make test` runs them one at a time on an API server of their own (a second environment,
TESTENV_STATE_DIR=target/testenv-solo) while the rest runs on the workers.

Without xdist (`pytest tests/e2e/test_stages.py`, one process) nothing changes: the tests use
the emulator of `target/testenv/env.sh`. APIGW_TEST_OWN_EMULATOR=1 forces a private emulator in
one process too (two pytest runs side by side).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

import emulator_process

REPO = Path(__file__).resolve().parents[1]

_own: dict[str, object] = {}

# Test files that must not share the cluster with other tests running at the same time:
# - test_access.py makes cluster-scoped ApiGatewayAccess objects, whose status the access
#   controller of every running operator writes (each against its own emulator: another test's
#   operator would flip a status the test waits for), and runs operators over every namespace;
# - test_rbac.py does the same through the chart's ServiceAccount.
SOLO_FILES = ("tests/e2e/test_access.py", "tests/ship/test_rbac.py")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "solo: acts on the whole cluster; make test runs it alone on its own API server (tests/conftest.py)")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker and os.environ.get("APIGW_TEST_OWN_EMULATOR") != "1":
        return
    # Only where the run uses an emulator at all (env.sh sourced), so the tests that need none
    # (tests/testenv/test_first_run.py alone, say) start none.
    if not os.environ.get("APIGW_EMULATOR_ADMIN"):
        return
    workdir = Path(tempfile.mkdtemp(prefix=f"apigw-emulator-{worker or 'main'}-"))
    try:
        proc, url, log_path = emulator_process.start(workdir)
    except emulator_process.EmulatorDidNotStart as e:
        raise pytest.UsageError(f"this worker's emulator: {e}") from None
    _own.update(proc=proc, url=url, log=log_path, shared=os.environ["APIGW_EMULATOR_ADMIN"])
    os.environ["AWS_ENDPOINT_URL"] = url
    os.environ["APIGW_EMULATOR_ADMIN"] = url


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(item.fspath).resolve().relative_to(REPO).as_posix() in SOLO_FILES:
            item.add_marker(pytest.mark.solo)


def pytest_unconfigure(config: pytest.Config) -> None:
    proc = _own.pop("proc", None)
    if isinstance(proc, subprocess.Popen):
        emulator_process.stop(proc)


def pytest_report_header(config: pytest.Config) -> str | None:
    if _own:
        return f"emulator of this process: {_own['url']} (log {_own['log']}; env.sh's was {_own['shared']})"
    return None
