"""A W&B stand-in on 127.0.0.1 that misbehaves on purpose, for the network-fault tests.

One server serves tests/test_network_faults.py, tests/faults/ (as `fault_helpers.FaultServer`)
and benchmarks/raw_wandb_faults.py, so raw wandb and steadyrun meet the same faults. Plain
stdlib; it only ever binds 127.0.0.1, so a test never reaches or exposes a real network.

Kinds:
  refused        nothing listens on the port
  silent         accepts, reads the request, never answers
  silent_socket  accepts, never reads nor answers (`seen` holds "connection" per connection)
  http500        every request answers 500
  slow           every answer comes after `delay` seconds
  flaky          the health check answers, the API answers 500; `down()` and `up()` take
                 the server away and bring it back on the same port
  api_hangs      the health check answers, every other request hangs
  anything else  every request answers 200 `{}` (the health check 200 `ok`)

A hanging request is released after `hang` seconds or by `close()`. `seen` lists the
requests as "METHOD /path"; `requests` counts them.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading
from collections.abc import Iterator

HOST = "127.0.0.1"
_ERROR = b'{"error": "internal"}'


class _Handler(http.server.BaseHTTPRequestHandler):
    server: FaultServer
    protocol_version = "HTTP/1.0"

    def _answer(self) -> None:
        server = self.server
        server.requests += 1
        server.seen.append(f"{self.command} {self.path}")
        kind = server.kind
        health = self.path.rstrip("/").endswith("/healthz")
        if kind == "silent" or (kind == "api_hangs" and not health):
            server.stop.wait(server.hang)
            return
        if kind == "slow":
            server.stop.wait(server.delay)
        if kind == "http500":
            self._send(500, _ERROR)
        elif health:
            self._send(200, b"ok")
        elif kind == "flaky":
            self._send(500, _ERROR)  # up, but no W&B API behind it
        else:
            self._send(200, b"{}")

    def _send(self, code: int, body: bytes) -> None:
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:
            pass

    do_GET = do_POST = do_PUT = do_HEAD = _answer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


class FaultServer(http.server.ThreadingHTTPServer):
    """A loopback W&B stand-in of the given kind (see the module docstring), serving at
    `url` from the moment it is made until `close()`."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, kind: str, delay: float = 5.0, hang: float = 120.0,
                 port: int = 0) -> None:
        super().__init__((HOST, port), _Handler, bind_and_activate=True)
        self.kind = kind
        self.delay = delay
        self.hang = hang
        self.stop = threading.Event()
        self.requests = 0
        self.seen: list[str] = []
        self._held: list[socket.socket] = []
        self._thread: threading.Thread | None = None
        self.port = self.server_address[1]
        self.url = f"http://{HOST}:{self.port}"
        if kind == "refused":
            self.server_close()  # nothing listens on the port any more
        else:
            self._serve()

    def _serve(self) -> None:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()

    def process_request(self, request: socket.socket, client_address: tuple[str, int]) -> None:
        if self.kind == "silent_socket":  # hold the connection, never read from it
            self._held.append(request)
            self.requests += 1
            self.seen.append("connection")
            return
        super().process_request(request, client_address)

    def down(self) -> None:
        """Stop listening: new connections are refused until `up()`."""
        self.shutdown()
        self.socket.close()

    def up(self) -> None:
        self.socket = socket.socket(self.address_family, self.socket_type)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind((HOST, self.port))
        self.socket.listen(self.request_queue_size)
        self._serve()

    def close(self) -> None:
        self.stop.set()
        if self.kind != "refused":
            try:
                self.shutdown()
            except Exception:
                pass
            self.server_close()
        for conn in self._held:
            conn.close()


@contextlib.contextmanager
def serve(kind: str, delay: float = 5.0, hang: float = 120.0) -> Iterator[FaultServer]:
    """A `FaultServer` of the given kind, closed on the way out."""
    server = FaultServer(kind, delay=delay, hang=hang)
    try:
        yield server
    finally:
        server.close()
