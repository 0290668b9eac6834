"""Starting and stopping an API Gateway emulator process (hack/emulator/server.py) on a free
127.0.0.1 port: tests/conftest.py (one per xdist worker) and tests/emulator/conftest.py (when no
environment's emulator is given) both use it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
SERVER = REPO / "hack" / "emulator" / "server.py"
START_TIMEOUT_S = 60


class EmulatorDidNotStart(Exception):
    pass


def healthy(url: str) -> bool:
    try:
        return requests.get(f"{url}/_emulator/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def start(workdir: Path) -> tuple[subprocess.Popen, str, Path]:
    """(process, base URL, log path); raises EmulatorDidNotStart with the log when it does not
    answer within START_TIMEOUT_S."""
    port_file, log_path = workdir / "port", workdir / "server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=str(REPO),
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and proc.poll() is None:
        text = port_file.read_text().strip() if port_file.is_file() else ""
        if text and healthy(url := f"http://127.0.0.1:{int(text)}"):
            return proc, url, log_path
        time.sleep(0.1)
    stop(proc)
    raise EmulatorDidNotStart(
        f"the emulator did not become ready within {START_TIMEOUT_S}s (exit code {proc.poll()}); "
        f"its log:\n{log_path.read_text()}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 10 s."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
