"""hack/tcp_proxy.py: forwarding, cut("refuse"), cut("blackhole"), restore(), stop(), and the
script with its HTTP and signal control. Needs no test environment: an echo server on a free
127.0.0.1 port stands in for kube-apiserver.

No verdict here depends on how fast the machine is: waits for something to happen are bounded
by generous deadlines (WAIT), and the checks that something did NOT happen (a blackhole) also
ask the echo server, which counts every connection and byte it received.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hack"))
from tcp_proxy import TcpProxy  # noqa: E402

WAIT = 20.0  # seconds: the longest any wait for an expected event may take
QUIET = 0.5  # seconds: how long a blackholed connection is watched for a byte that must not come


class EchoServer:
    """Echoes every byte back; counts connections and bytes received."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.lock = threading.Lock()
        self.connections = 0
        self.received = 0
        self.stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._echo, args=(conn,), daemon=True).start()

    def _echo(self, conn: socket.socket) -> None:
        conn.settimeout(0.2)
        with conn:
            while not self.stopped.is_set():
                try:
                    data = conn.recv(65536)
                except socket.timeout:
                    continue
                except OSError:
                    return
                if not data:
                    return
                with self.lock:
                    self.received += len(data)
                try:
                    conn.sendall(data)
                except OSError:
                    return

    def counts(self) -> tuple[int, int]:
        with self.lock:
            return self.connections, self.received

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()


@pytest.fixture
def echo():
    server = EchoServer()
    yield server
    server.stop()


@pytest.fixture
def proxy(echo):
    p = TcpProxy("127.0.0.1", echo.port).start()
    yield p
    p.stop()


def connect(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    s.settimeout(WAIT)
    return s


def roundtrip(s: socket.socket, data: bytes) -> bytes:
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def recv_exact(s: socket.socket, n: int) -> bytes:
    got = b""
    while len(got) < n:
        chunk = s.recv(n - len(got))
        if not chunk:
            break
        got += chunk
    return got


def broken(s: socket.socket) -> bool:
    """True once the connection is reset or closed (waits up to WAIT for it)."""
    try:
        s.sendall(b"x")
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError, ConnectionAbortedError):
        return True


def refused(port: int) -> bool:
    """True when a new connection is reset, at connect or at the first exchange."""
    try:
        s = connect(port)
    except (ConnectionResetError, ConnectionRefusedError):
        return True
    with s:
        return broken(s)


def wait_until(what: str, check, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def silent(s: socket.socket) -> bool:
    """True when nothing arrives for QUIET seconds."""
    s.settimeout(QUIET)
    try:
        s.recv(1)
        return False
    except socket.timeout:
        return True
    finally:
        s.settimeout(WAIT)


def test_forwards_bytes_both_ways(proxy, echo):
    payload = os.urandom(1 << 20)
    with connect(proxy.port) as a, connect(proxy.port) as b:
        assert roundtrip(a, b"hello") == b"hello"
        assert roundtrip(b, payload) == payload
        assert roundtrip(a, b"again") == b"again"
    assert echo.counts() == (2, 5 + len(payload) + 5)
    assert proxy.stats()["accepted"] == 2
    wait_until("both links closed", lambda: proxy.stats()["open"] == 0)


def test_listens_on_loopback_only_and_forwards_to_loopback_only(echo):
    with pytest.raises(ValueError):
        TcpProxy("192.0.2.1", 443)
    with pytest.raises(ValueError):
        TcpProxy("127.0.0.1", echo.port, listen_host="0.0.0.0")
    with TcpProxy("127.0.0.1", echo.port) as p:
        assert socket.getaddrinfo("127.0.0.1", p.port)  # bound
        assert p._sock.getsockname()[0] == "127.0.0.1"


def test_cut_refuse_breaks_open_connections_and_refuses_new_ones(proxy, echo):
    s = connect(proxy.port)
    assert roundtrip(s, b"before") == b"before"
    proxy.cut("refuse")
    assert proxy.mode == "refuse"
    assert broken(s)
    s.close()
    # New connections: accepted by the kernel, then reset at once; none reaches the target.
    for _ in range(3):
        assert refused(proxy.port)
    assert echo.counts()[0] == 1
    assert proxy.stats()["refused"] == 3
    proxy.restore()
    with connect(proxy.port) as u:
        assert roundtrip(u, b"after") == b"after"
    assert echo.counts()[0] == 2


def test_blackhole_stalls_both_directions_and_restore_resumes(proxy, echo):
    s = connect(proxy.port)
    assert roundtrip(s, b"one") == b"one"
    proxy.cut("blackhole")
    s.sendall(b"two")
    assert silent(s)
    assert echo.counts() == (1, 3)  # "two" never reached the target
    # A new connection is accepted, held, and not connected to the target.
    t = connect(proxy.port)
    t.sendall(b"three")
    wait_until("the proxy accepted it", lambda: proxy.stats()["open"] == 2)
    assert silent(t)
    assert echo.counts() == (1, 3)

    proxy.restore()
    # Nothing was lost: the held bytes go through, in order, on both connections.
    assert recv_exact(s, 3) == b"two"
    assert recv_exact(t, 5) == b"three"
    assert roundtrip(s, b"four") == b"four"
    assert echo.counts() == (2, 3 + 3 + 5 + 4)
    s.close()
    t.close()


def test_blackhole_also_holds_what_the_target_sends(echo):
    """Bytes the target sends during a blackhole reach the client only after restore."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(WAIT)
    with server, TcpProxy("127.0.0.1", server.getsockname()[1]) as p:
        with connect(p.port) as s:
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"early")
                assert recv_exact(s, 5) == b"early"
                p.cut("blackhole")
                conn.sendall(b"late")  # into the proxy's socket buffer; the proxy does not read
                assert silent(s)
                p.restore()
                assert recv_exact(s, 4) == b"late"


def test_refuse_after_blackhole_resets_the_held_connections(proxy, echo):
    s = connect(proxy.port)
    assert roundtrip(s, b"x") == b"x"
    proxy.cut("blackhole")
    t = connect(proxy.port)
    proxy.cut("refuse")
    assert broken(s)
    assert broken(t)
    wait_until("no open link", lambda: proxy.stats()["open"] == 0)
    s.close()
    t.close()


def test_stop_closes_everything(echo):
    p = TcpProxy("127.0.0.1", echo.port).start()
    port = p.port
    s = connect(port)
    assert roundtrip(s, b"x") == b"x"
    p.stop()
    assert broken(s)
    s.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=WAIT).close()
    p.stop()  # idempotent


def test_target_down_resets_the_client(echo):
    free = socket.create_server(("127.0.0.1", 0))
    port = free.getsockname()[1]
    free.close()
    with TcpProxy("127.0.0.1", port) as p:
        assert refused(p.port)


# ------------------------------------------------------------------ the script


def read_port(path: Path, proc: subprocess.Popen) -> int:
    def ready():
        assert proc.poll() is None, f"tcp_proxy.py exited {proc.returncode}"
        return path.exists() and path.read_text().strip()
    return int(wait_until(f"{path.name}", ready))


def control(port: int, method: str, path: str) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=b"" if method == "POST" else None)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=WAIT) as r:
        assert r.status == 200
        return json.loads(r.read())


def test_script_with_http_and_signal_control(tmp_path, echo):
    listen_file, control_file = tmp_path / "port", tmp_path / "control"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "hack" / "tcp_proxy.py"), "--target", f"127.0.0.1:{echo.port}",
         "--listen-port-file", str(listen_file), "--control-port-file", str(control_file)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        port = read_port(listen_file, proc)
        ctl = read_port(control_file, proc)
        with connect(port) as s:
            assert roundtrip(s, b"hi") == b"hi"
            state = control(ctl, "GET", "/state")
            assert state["mode"] == "forward" and state["port"] == port and state["open"] == 1
            assert control(ctl, "POST", "/cut/refuse")["mode"] == "refuse"
            assert broken(s)
        assert control(ctl, "POST", "/restore")["mode"] == "forward"
        with connect(port) as s:
            assert roundtrip(s, b"again") == b"again"
            assert control(ctl, "POST", "/cut/blackhole")["mode"] == "blackhole"
            s.sendall(b"held")
            assert silent(s)
            proc.send_signal(signal.SIGHUP)  # restore
            assert recv_exact(s, 4) == b"held"
        proc.send_signal(signal.SIGUSR2)
        wait_until("blackhole by SIGUSR2", lambda: control(ctl, "GET", "/state")["mode"] == "blackhole")
        proc.send_signal(signal.SIGUSR1)
        wait_until("refuse by SIGUSR1", lambda: control(ctl, "GET", "/state")["mode"] == "refuse")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=WAIT)
        assert proc.returncode == 0, err
        assert out.strip() == str(port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=WAIT)


def test_script_stops_by_http(tmp_path, echo):
    listen_file, control_file = tmp_path / "port", tmp_path / "control"
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "hack" / "tcp_proxy.py"), "--target", f"127.0.0.1:{echo.port}",
         "--listen-port-file", str(listen_file), "--control-port-file", str(control_file)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        read_port(listen_file, proc)
        assert control(read_port(control_file, proc), "POST", "/stop")["stopping"] is True
        assert proc.wait(timeout=WAIT) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=WAIT)


def test_script_rejects_a_remote_target():
    proc = subprocess.run([sys.executable, str(REPO / "hack" / "tcp_proxy.py"), "--target", "192.0.2.1:443"],
                          capture_output=True, text=True, timeout=WAIT)
    assert proc.returncode == 2
    assert "loopback" in proc.stderr
