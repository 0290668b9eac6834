#!/usr/bin/env python3
"""A TCP forwarder with a link that tests can cut: 127.0.0.1:<port> -> a target host:port.

Made to sit between the operator and kube-apiserver (TLS: the bytes are forwarded untouched),
so that a test can take the API server away from the operator without touching the API server.
Python standard library only; every thread is a daemon; every wait is bounded (0.2 s) and
rechecks the proxy's state; only loopback addresses are accepted, for listening and as target.

As a module:

    from tcp_proxy import TcpProxy
    with TcpProxy("127.0.0.1", 6443) as proxy:     # start(); stop() on exit
        url = f"https://127.0.0.1:{proxy.port}"
        proxy.cut("refuse")      # close (RST) every open connection; new ones are closed at once
        proxy.cut("blackhole")   # connections stay open, no byte moves either way (timeouts only)
        proxy.restore()          # forwarding again: new connections, and the open ones resume
        proxy.stats()            # {"mode": ..., "open": ..., "accepted": ..., "refused": ...}

`cut("blackhole")` does not read from either side, so nothing is lost: TCP's flow control
holds the bytes in the kernels' buffers, and `restore()` lets them through in order, as when a
network partition heals (a TLS stream survives it). Connections accepted during a blackhole
are held without connecting to the target until `restore()`. `cut("refuse")` resets (RST) the
open connections, and every connection accepted while it lasts is reset at once: clients see
"connection reset" (the listening socket stays bound, so the port cannot be taken by another
process meanwhile).

As a script:

    python3 hack/tcp_proxy.py --target 127.0.0.1:6443 [--listen-port 0] \\
        [--listen-port-file F] [--control-port-file C]

prints the bound port on stdout and writes it to F. Control, either way:
  - HTTP on 127.0.0.1:<control port> (written to C; answered once the change is in force):
      POST /cut/refuse, POST /cut/blackhole, POST /restore, POST /stop, GET /state
      (each answers the state as JSON);
  - signals: SIGUSR1 cut("refuse"), SIGUSR2 cut("blackhole"), SIGHUP restore(),
    SIGTERM/SIGINT stop and exit 0.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

FORWARD = "forward"
REFUSE = "refuse"
BLACKHOLE = "blackhole"
MODES = (REFUSE, BLACKHOLE)
TICK = 0.2  # seconds: the longest any loop waits before it looks at the state again
CHUNK = 65536


def _loopback(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def _reset(sock: socket.socket) -> None:
    """Close with RST (SO_LINGER 0), not FIN: the peer sees a reset connection."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Link:
    """One accepted connection and its connection to the target; two pump threads."""

    def __init__(self, proxy: "TcpProxy", client: socket.socket):
        self.proxy = proxy
        self.client = client
        self.upstream: socket.socket | None = None
        self.closed = threading.Event()
        self.lock = threading.Lock()
        self.done_directions = 0

    def run(self) -> None:
        """Connects to the target (once forwarding is on), then pumps both ways."""
        if not self.proxy._wait_forwarding(self.closed):
            self.close(reset=True)
            return
        try:
            upstream = socket.create_connection(self.proxy.target, timeout=10)
            upstream.settimeout(TICK)
        except OSError:
            self.close(reset=True)
            return
        with self.lock:
            if not self.closed.is_set():
                self.upstream = upstream
        if self.upstream is None:  # cut or stopped while connecting
            _reset(upstream)
            return
        threading.Thread(target=self._pump, args=(upstream, self.client), daemon=True,
                         name="tcp-proxy-down").start()
        self._pump(self.client, upstream)

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                # Not even reading while blackholed: the bytes wait in the kernel, in order.
                if not self.proxy._wait_forwarding(self.closed):
                    self.close(reset=True)
                    return
                readable, _, _ = select.select([src], [], [], TICK)
                if not readable:
                    continue
                data = src.recv(CHUNK)
                if not data:  # the sender closed its side: pass the FIN on
                    try:
                        dst.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    break
                if not self._send_all(dst, data):
                    self.close(reset=True)
                    return
        except (OSError, ValueError):
            self.close(reset=True)
            return
        with self.lock:
            self.done_directions += 1
            both = self.done_directions == 2
        if both:
            self.close(reset=False)

    def _send_all(self, dst: socket.socket, data: bytes) -> bool:
        """Sends in bounded steps; a cut between recv and send holds the bytes until restored.
        False when the link or the proxy ended first."""
        view = memoryview(data)
        while view:
            if not self.proxy._wait_forwarding(self.closed):
                return False
            try:
                sent = dst.send(view)
            except socket.timeout:  # the receiver is not reading: look at the state again
                continue
            view = view[sent:]
        return True

    def close(self, reset: bool) -> None:
        with self.lock:
            if self.closed.is_set():
                return
            self.closed.set()
        for sock in (self.client, self.upstream):
            if sock is None:
                continue
            if reset:
                _reset(sock)
            else:
                try:
                    sock.close()
                except OSError:
                    pass
        self.proxy._forget(self)


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target_host:target_port` until stop()."""

    def __init__(self, target_host: str, target_port: int, listen_port: int = 0,
                 listen_host: str = "127.0.0.1", max_connections: int = 512):
        if not _loopback(listen_host):
            raise ValueError(f"listen_host must be a loopback address, not {listen_host!r}")
        if not _loopback(target_host):
            raise ValueError(f"the target must be a loopback address, not {target_host!r}")
        self.target = (target_host, int(target_port))
        self.listen = (listen_host, int(listen_port))
        self.max_connections = max_connections
        self._mode = FORWARD
        self._cond = threading.Condition()
        self._links: set[_Link] = set()
        self._stopped = threading.Event()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.accepted = 0
        self.refused = 0

    # ------------------------------------------------------------------ public API

    def start(self) -> "TcpProxy":
        if self._sock is not None:
            raise RuntimeError("already started")
        sock = socket.socket(socket.AF_INET6 if ":" in self.listen[0] else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(self.listen)
        sock.listen(128)
        sock.settimeout(TICK)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept_loop, daemon=True, name="tcp-proxy-accept")
        self._thread.start()
        return self

    @property
    def port(self) -> int:
        if self._sock is None:
            raise RuntimeError("not started")
        return self._sock.getsockname()[1]

    @property
    def mode(self) -> str:
        with self._cond:
            return self._mode

    def cut(self, mode: str = REFUSE) -> None:
        """`refuse`: reset every open connection and every new one. `blackhole`: keep them all
        open, move no byte in either direction. In force when this returns."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        with self._cond:
            self._mode = mode
            links = list(self._links) if mode == REFUSE else []
            self._cond.notify_all()
        for link in links:
            link.close(reset=True)

    def restore(self) -> None:
        """Forward again: new connections, and those a blackhole held."""
        with self._cond:
            self._mode = FORWARD
            self._cond.notify_all()

    def stop(self) -> None:
        """Closes the listening socket and every connection (RST); idempotent."""
        self._stopped.set()
        with self._cond:
            links = list(self._links)
            self._cond.notify_all()
        for link in links:
            link.close(reset=True)
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {"mode": self._mode, "open": len(self._links), "accepted": self.accepted,
                    "refused": self.refused, "port": self.port,
                    "target": f"{self.target[0]}:{self.target[1]}", "stopped": self._stopped.is_set()}

    def __enter__(self) -> "TcpProxy":
        return self.start() if self._sock is None else self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ------------------------------------------------------------------ internals

    def _wait_forwarding(self, closed: threading.Event) -> bool:
        """Blocks while blackholed; True once forwarding, False when the link or proxy ends."""
        with self._cond:
            while True:
                if closed.is_set() or self._stopped.is_set():
                    return False
                if self._mode == FORWARD:
                    return True
                if self._mode == REFUSE:
                    return False
                self._cond.wait(TICK)

    def _forget(self, link: _Link) -> None:
        with self._cond:
            self._links.discard(link)

    def _accept_loop(self) -> None:
        assert self._sock is not None
        while not self._stopped.is_set():
            try:
                client, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                if self._stopped.is_set():
                    return
                continue
            with self._cond:
                refuse = self._mode == REFUSE or len(self._links) >= self.max_connections
                if refuse:
                    self.refused += 1
                else:
                    self.accepted += 1
                    link = _Link(self, client)
                    self._links.add(link)
            if refuse:
                _reset(client)
                continue
            client.settimeout(TICK)
            threading.Thread(target=link.run, daemon=True, name="tcp-proxy-up").start()


# ---------------------------------------------------------------------- the script


def _control_server(proxy: TcpProxy, done: threading.Event) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body, sort_keys=True).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/state":
                self._answer(200, proxy.stats())
            else:
                self._answer(404, {"message": f"no route GET {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(min(length, 65536))
            if self.path in ("/cut/refuse", "/cut/blackhole"):
                proxy.cut(self.path.rsplit("/", 1)[1])
            elif self.path == "/restore":
                proxy.restore()
            elif self.path == "/stop":
                self._answer(200, dict(proxy.stats(), stopping=True))
                done.set()
                return
            else:
                self._answer(404, {"message": f"no route POST {self.path}"})
                return
            self._answer(200, proxy.stats())

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": TICK}, daemon=True,
                     name="tcp-proxy-control").start()
    return server


def _write_atomically(path: str, text: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True, help="HOST:PORT to forward to (loopback only)")
    parser.add_argument("--listen-port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--listen-port-file", help="write the bound port here once listening")
    parser.add_argument("--control-port-file", help="write the HTTP control port here")
    args = parser.parse_args(argv)
    host, sep, port = args.target.rpartition(":")
    if not sep or not port.isdigit():
        parser.error("--target must be HOST:PORT")
    try:
        proxy = TcpProxy(host.strip("[]"), int(port), listen_port=args.listen_port).start()
    except (ValueError, OSError) as e:
        print(f"tcp_proxy: {e}", file=sys.stderr)
        return 2
    done = threading.Event()
    control = _control_server(proxy, done)
    actions = {signal.SIGUSR1: lambda: proxy.cut(REFUSE), signal.SIGUSR2: lambda: proxy.cut(BLACKHOLE),
               signal.SIGHUP: proxy.restore, signal.SIGTERM: done.set, signal.SIGINT: done.set}
    for sig, action in actions.items():
        signal.signal(sig, lambda signum, frame, action=action: action())
    if args.control_port_file:
        _write_atomically(args.control_port_file, f"{control.server_address[1]}\n")
    if args.listen_port_file:
        _write_atomically(args.listen_port_file, f"{proxy.port}\n")
    print(proxy.port, flush=True)
    print(f"tcp_proxy: 127.0.0.1:{proxy.port} -> {args.target}, control http://127.0.0.1:"
          f"{control.server_address[1]}/, pid {os.getpid()}", file=sys.stderr, flush=True)
    while not done.wait(TICK):
        pass
    control.shutdown()
    control.server_close()
    proxy.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
