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
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
SERVER = REPO / "hack" / "emulator" / "server.py"
START_TIMEOUT_S = 60

_own: dict[str, object] = {}

# Test files that must not share the cluster with other tests running at the same time:
# - test_access.py makes cluster-scoped ApiGatewayAccess objects, whose status the access
#   controller of every running operator writes (each against its own emulator: another test's
#   operator would flip a status the test waits for), and runs operators over every namespace;
# - test_rbac.py does the same through the chart's ServiceAccount.
SOLO_FILES = ("tests/e2e/test_access.py", "tests/ship/test_rbac.py")


def _healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/_emulator/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _start_emulator(tag: str) -> tuple[subprocess.Popen, str, Path]:
    workdir = Path(tempfile.mkdtemp(prefix=f"apigw-emulator-{tag}-"))
    port_file, log_path = workdir / "port", workdir / "server.log"
    log = open(log_path, "w")
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(REPO),
    )
    log.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        text = port_file.read_text().strip() if port_file.is_file() else ""
        if text:
            url = f"http://127.0.0.1:{int(text)}"
            if _healthy(url):
                return proc, url, log_path
        time.sleep(0.1)
    _stop(proc)
    raise pytest.UsageError(
        f"the worker's emulator did not become ready within {START_TIMEOUT_S}s (exit code {proc.poll()}); "
        f"its log:\n{log_path.read_text()}"
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


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
    proc, url, log_path = _start_emulator(worker or "main")
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
        _stop(proc)


def pytest_report_header(config: pytest.Config) -> str | None:
    if _own:
        return f"emulator of this process: {_own['url']} (log {_own['log']}; env.sh's was {_own['shared']})"
    return None
