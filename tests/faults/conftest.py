"""Fixtures of the fault matrix (tests/faults/test_faults.py).

- The operator binary: target/debug/apigw-operator (FAULT_OPERATOR_BIN overrides), run as its
  own process per case, stopped by PID.
- Kubernetes: the test environment's API server (KUBECONFIG), except for the API-server restart
  case, which gets a private etcd + kube-apiserver (see `PrivateCluster`): restarting the shared
  API server would disturb every other test run using it, and hack/testenv-up.sh restarts a
  partly-down environment from a fresh etcd (a wiped cluster), so it cannot restart the API
  server alone.
- AWS: a private API Gateway emulator (bench/envkit.py) started with --log-requests, so that its
  faults and counters belong to this run and calls can be counted per integration from its log.

Nothing skips: a missing part fails and names the command that provides it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))
import envkit  # noqa: E402
from envkit import KitError  # noqa: E402

LOGS = REPO / "target" / "faults"
STATE = REPO / "target" / "testenv"


def fail(message: str) -> None:
    pytest.fail(message, pytrace=False)


@pytest.fixture(scope="session")
def operator_binary() -> Path:
    path = Path(os.environ.get("FAULT_OPERATOR_BIN", (REPO / os.environ.get("CARGO_TARGET_DIR", "target")) / "debug" / "apigw-operator"))
    if not path.exists():
        fail(f"{path} is missing: run `cargo build` (make test-faults does)")
    return path


@pytest.fixture(scope="session")
def shared_kube():
    try:
        envkit.need_env("KUBECONFIG")
        envkit.install_crd()
        kube = envkit.Kube()
    except KitError as e:
        fail(str(e))
    yield kube
    kube.close()


@pytest.fixture(scope="session")
def emulator():
    LOGS.mkdir(parents=True, exist_ok=True)
    try:
        emu = envkit.Emulator(LOGS / f"emulator-{time.strftime('%Y%m%dT%H%M%S')}.log", log_requests=True)
    except KitError as e:
        fail(f"{e} (PY=$(hack/emulator/setup-venv.sh); \"$PY\" -m pytest tests/faults)")
    yield emu
    emu.stop()


# --- a private etcd + kube-apiserver, for the restart case ------------------------------------


def cmdline_of(name: str) -> list[str]:
    """The command line of the test environment's `name` process (etcd, kube-apiserver), read
    from /proc through its pid file."""
    pid_file = STATE / f"{name}.pid"
    hint = ("the API-server restart case copies the local test environment's etcd and kube-apiserver "
            "command lines: run `make testenv-up` (not TESTENV_USE_EXISTING_CLUSTER=1)")
    if not pid_file.exists():
        fail(f"{pid_file} is missing: {hint}")
    pid = pid_file.read_text().strip()
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:
        fail(f"{name} (pid {pid}) is not running: {hint}")
    args = [a.decode() for a in args if a]
    if not args or name not in Path(args[0]).name:
        fail(f"pid {pid} is not {name}: {hint}")
    return args


def with_flags(args: list[str], **flags: str) -> list[str]:
    """`args` with --key=value flags replaced (or added), keys given with _ for -."""
    wanted = {"--" + k.replace("_", "-"): v for k, v in flags.items()}
    out = [a for a in args if a.split("=", 1)[0] not in wanted]
    return out + [f"{k}={v}" for k, v in wanted.items()]


class PrivateCluster:
    """etcd + kube-apiserver on free ports, with the test environment's binaries, flags and
    certificates; its own data directory and kubeconfig. `restart_apiserver` kills the API
    server (SIGKILL) and starts the same command line again."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        etcd_port, peer_port = envkit.free_port(), envkit.free_port()
        self.etcd_args = with_flags(
            cmdline_of("etcd"), name="faults", data_dir=str(workdir / "etcd-data"),
            listen_client_urls=f"http://127.0.0.1:{etcd_port}",
            advertise_client_urls=f"http://127.0.0.1:{etcd_port}",
            listen_peer_urls=f"http://127.0.0.1:{peer_port}",
            initial_advertise_peer_urls=f"http://127.0.0.1:{peer_port}",
            initial_cluster=f"faults=http://127.0.0.1:{peer_port}",
        )
        self.port = envkit.free_port()
        self.apiserver_args = with_flags(
            cmdline_of("kube-apiserver"), secure_port=str(self.port),
            etcd_servers=f"http://127.0.0.1:{etcd_port}",
        )
        text = (STATE / "kubeconfig").read_text()
        self.kubeconfig = str(workdir / "kubeconfig")
        Path(self.kubeconfig).write_text(re.sub(r"server: https://127\.0\.0\.1:\d+", f"server: https://127.0.0.1:{self.port}", text))
        os.chmod(self.kubeconfig, 0o600)
        self.etcd = self._start("etcd", self.etcd_args)
        self.apiserver = self._start("kube-apiserver", self.apiserver_args)
        self.kube = envkit.Kube(self.kubeconfig)
        try:
            self.wait_ready(120)
            envkit.install_crd(self.kubeconfig)
        except BaseException:
            # A failed setup must not leave its etcd and kube-apiserver running.
            self.stop()
            raise

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        return proc

    def wait_ready(self, timeout: float) -> None:
        def ready() -> bool:
            if self.apiserver.poll() is not None:
                raise KitError(f"kube-apiserver exited; see {self.workdir}/kube-apiserver.log")
            return self.kube.healthy()
        envkit.wait_until("the private kube-apiserver /readyz", ready, timeout)

    def restart_apiserver(self, down_seconds: float) -> float:
        """SIGKILL, `down_seconds` down, the same command line again; returns seconds until ready."""
        self.apiserver.kill()
        self.apiserver.wait(timeout=20)
        time.sleep(down_seconds)
        t = time.monotonic()
        self.apiserver = self._start("kube-apiserver", self.apiserver_args)
        self.wait_ready(120)
        return time.monotonic() - t

    def stop(self) -> None:
        self.kube.close()
        envkit.stop_process(self.apiserver)
        envkit.stop_process(self.etcd)
        shutil.rmtree(self.workdir / "etcd-data", ignore_errors=True)


@pytest.fixture(scope="session")
def private_cluster():
    try:
        cluster = PrivateCluster(LOGS / f"cluster-{secrets.token_hex(3)}")
    except KitError as e:
        fail(str(e))
    yield cluster
    cluster.stop()
