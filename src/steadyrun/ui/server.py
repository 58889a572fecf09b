"""`steadyrun ui`'s web server: the static page and a read-only JSON API over a run root.

Why the standard library's `http.server`: the dashboard serves one person on one machine
(a few requests a second), which a threaded stdlib server handles with room to spare;
a framework (Flask, FastAPI + uvicorn) would add several packages to the install for
routing we can write in a page. Every endpoint is a GET: nothing writes, deletes or
renames, so there is no token to leak. Requests whose Host header is not the address
the server listens on are refused (a DNS-rebinding page cannot read runs), and every
path taken from a URL is resolved by `Catalog`, which never leaves the root.

    GET /                              the page
    GET /static/<file>                 its scripts, styles and the vendored uPlot
    GET /api/runs                      the runs table
    GET /api/run/<id>                  a run: summary, config, metadata, keys, notices
    GET /api/run/<id>/stamp            changes when the run does (live updates poll it)
    GET /api/run/<id>/series?key=..&axis=step|time&lo=..&hi=..&n=..
    GET /api/run/<id>/media            tables, images, histograms, alerts, files, checkpoints
    GET /api/run/<id>/anomalies
    GET /api/run/<id>/logs             its captured stdout and stderr, the last lines
    GET /api/run/<id>/file/<path>      a file of the run folder (images, saved files)
"""

from __future__ import annotations

import math
import mimetypes
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import orjson

from . import extras
from .catalog import Catalog
from .model import AXES

STATIC = Path(__file__).with_name("static")
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")
_HOST = re.compile(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]/@\s]+)(?::\d{1,5})?")  # a Host header
JSON_OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS
FILE_PIECE = 1 << 20  # bytes of a run's file sent at a time
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")


def static_files() -> dict[str, Path]:
    """The files the page may load, by URL path: a fixed list, nothing built from input."""
    return {"/static/" + p.relative_to(STATIC).as_posix(): p
            for p in STATIC.rglob("*") if p.is_file() and p.suffix in (".js", ".css")}


def _number(value: str | None) -> float | None:
    """A finite number from a query parameter, else None (as if it were not given)."""
    if value in (None, ""):
        return None
    try:
        out = float(value)  # type: ignore[arg-type]
    except ValueError:
        return None
    return out if math.isfinite(out) else None


class Handler(BaseHTTPRequestHandler):
    server: UIServer
    protocol_version = "HTTP/1.1"
    timeout = 120  # an idle or stalled connection gives its thread back

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass  # a line per request would bury the URL the user needs

    # ------------------------------------------------------------------ replies
    def _head(self, status: int, length: int, ctype: str,
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()

    def _send(self, status: int, body: bytes, ctype: str, extra: dict[str, str] | None = None
              ) -> None:
        self._head(status, len(body), ctype, extra)
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_file(self, path: Path, ctype: str, extra: dict[str, str]) -> None:
        """A run's file in pieces: a checkpoint of gigabytes is never read into memory."""
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            self._head(200, size, ctype, extra)
            if self.command == "HEAD":
                return
            self.close_connection = True  # a file that shrank meanwhile: no stray bytes
            left = size
            while left > 0 and (piece := fh.read(min(FILE_PIECE, left))):
                self.wfile.write(piece)
                left -= len(piece)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, orjson.dumps(obj, option=JSON_OPTS), "application/json")

    def _error(self, status: int, message: str) -> None:
        self._json({"error": message}, status)

    # ------------------------------------------------------------------ methods
    def do_HEAD(self) -> None:  # noqa: N802 - stdlib name
        self.do_GET()

    def _refuse(self) -> None:
        # The body is never read: the connection closes after the answer, or its bytes
        # would be parsed as the next request.
        self.close_connection = True
        self._send(405, orjson.dumps({"error": "the dashboard is read-only"}),
                   "application/json", {"Allow": "GET, HEAD", "Connection": "close"})

    do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        if not self.server.host_allowed(self.headers.get("Host", "")):
            self._error(403, "unexpected Host header")
            return
        url = urlsplit(self.path)
        path = url.path
        try:
            if path in ("/", "/index.html"):
                page = (STATIC / "index.html").read_bytes()
                self._send(200, page, "text/html; charset=utf-8",
                           {"Content-Security-Policy": PAGE_CSP})
            elif path in self.server.static:
                file = self.server.static[path]
                ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
                self._send(200, file.read_bytes(), f"{ctype}; charset=utf-8")
            elif path == "/api/runs":
                self._json({"root": str(self.server.catalog.root),
                            "runs": self.server.catalog.runs()})
            elif path.startswith("/api/run/"):
                self._run_api(path[len("/api/run/"):], parse_qs(url.query))
            else:
                self._error(404, "no such page")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away
        except Exception as exc:  # noqa: BLE001 - a notice on the page, never a bare 500
            self._json({"error": f"{type(exc).__name__}: {exc}",
                        "notices": [f"this part of the run could not be read: "
                                    f"{type(exc).__name__}: {exc}"]})

    def _run_api(self, rest: str, query: dict[str, list[str]]) -> None:
        run_id, _, what = rest.partition("/")
        view = self.server.catalog.view(unquote(run_id))
        if view is None:
            self._error(404, "no such run under this root")
            return
        if what == "":
            self._json(view.payload())
        elif what == "stamp":
            row = view.summary_row()
            self._json({"stamp": row["stamp"], "state": row["state"], "rows": row["rows"]})
        elif what == "series":
            axis = (query.get("axis") or ["step"])[0]
            keys = query.get("key") or view.row_keys()
            target = int(_number((query.get("n") or [""])[0]) or 2000)
            self._json(view.series(keys, axis if axis in AXES else "step",
                                   _number((query.get("lo") or [""])[0]),
                                   _number((query.get("hi") or [""])[0]),
                                   max(16, min(target, 20_000))))
        elif what == "media":
            rid = quote(view.dir.name)
            self._json(extras.media(view, lambda p: f"/api/run/{rid}/file/{quote(p)}"))
        elif what == "anomalies":
            self._json(extras.anomalies(view))
        elif what == "logs":
            self._json(extras.logs(view))
        elif what.startswith("file/"):
            file = self.server.catalog.file(view.dir.name, unquote(what[len("file/"):]))
            if file is None:
                self._error(404, "no such file in this run")
                return
            ctype = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            headers = {"Content-Security-Policy": "default-src 'none'; sandbox"}
            if not ctype.startswith("image/"):
                headers["Content-Disposition"] = "attachment"  # shown, never run
            self._send_file(file, ctype, headers)
        else:
            self._error(404, "no such page")


def _warm_up() -> None:
    try:
        import pyarrow.compute  # noqa: F401
    except ImportError:  # the command said how to get it before it started
        pass


class UIServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0) -> None:
        self.catalog = Catalog(root)
        self.static = static_files()
        self.bind_host = host
        super().__init__((host, port), Handler)
        # pyarrow and its compute functions take a few hundred ms to import: done while
        # the browser loads the page, not in its first chart's request.
        threading.Thread(target=_warm_up, name="steadyrun-ui-warm-up", daemon=True).start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that closes its connection (a tab closed, a reload, an idle keep-
        alive dropped) is normal: no traceback for it. Anything else is one line."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError)):
            return
        print(f"steadyrun ui: a request from {client_address[0]} failed: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else str(host)
        return f"http://{shown}:{port}/"

    def host_allowed(self, header: str) -> bool:
        if self.bind_host in ("0.0.0.0", "::", ""):
            return True  # exposed on purpose (with a warning at start)
        match = _HOST.fullmatch(header.strip())
        if match is None:
            return False  # no Host, or not a host[:port] at all
        name = match.group(1).lower()
        return name in LOOPBACK or name == self.bind_host.lower()


def serve(root: Path, host: str, port: int, on_ready: Any = None) -> None:
    """Serve until Ctrl-C (SIGINT) or SIGTERM; `on_ready(server)` once listening."""
    import signal

    server = UIServer(root, host, port)
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()

    # Both set here, SIGINT too: a process started in the background by a shell script
    # (or by a test runner run that way) inherits SIGINT ignored, and Ctrl-C or `kill
    # -INT` would never stop it.
    previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if on_ready is not None:
            on_ready(server)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
        print("steadyrun ui: stopped", file=sys.stderr)
