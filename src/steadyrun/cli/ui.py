"""`steadyrun ui [--dir D] [--host H] [--port N] [--open]`: the local dashboard.

Serves the run root read-only on 127.0.0.1 until Ctrl-C (ui/server.py). Another host
exposes every run to whoever can reach it, without a password: allowed, with a warning.
"""

from __future__ import annotations

import argparse
import errno
import sys
from pathlib import Path
from typing import Any

DEFAULT_PORT = 7331
UI_HINT = "pip install 'steadyrun[ui]'"


def register(sub: Any) -> None:
    u = sub.add_parser("ui", help="a local web dashboard over the run root (read-only)")
    u.add_argument("--dir", default=argparse.SUPPRESS,
                   help="root folder (default: $STEADYRUN_DIR or ./steadyrun)")
    u.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    u.add_argument("--port", type=int, default=None,
                   help=f"port (default {DEFAULT_PORT}, or the next free one; 0: any free)")
    u.add_argument("--open", action="store_true", help="open the dashboard in a browser")
    u.set_defaults(func=cmd_ui)


def need_ui_parts(what: str) -> str | None:
    """None when numpy and pyarrow import, else the one line that says how to get them."""
    for module in ("numpy", "pyarrow"):
        try:
            __import__(module)
        except ImportError:
            return f"steadyrun: {what} needs {module}: {UI_HINT}"
    return None


def root_of(args: argparse.Namespace) -> Path | None:
    from ..store.layout import root_dir

    root = root_dir(getattr(args, "dir", None))
    if not root.is_dir():
        print(f"steadyrun: no run root at {root} (pass --dir, or set STEADYRUN_DIR)",
              file=sys.stderr)
        return None
    return root


def cmd_ui(args: argparse.Namespace) -> int:
    missing = need_ui_parts("steadyrun ui")
    if missing:
        print(missing, file=sys.stderr)
        return 2
    root = root_of(args)
    if root is None:
        return 2
    if args.port is not None and not 0 <= args.port <= 65535:
        print(f"steadyrun: --port {args.port} is not a port (0 to 65535)", file=sys.stderr)
        return 2
    from ..ui.server import LOOPBACK, serve

    if args.host not in LOOPBACK:
        print(f"steadyrun: warning: --host {args.host} exposes every run under {root} to "
              f"whoever can reach this address, with no password", file=sys.stderr)

    def ready(server: Any) -> None:
        print(f"steadyrun ui: {server.url}  (runs under {root.resolve()}; Ctrl-C to stop)",
              flush=True)
        if args.open:
            import webbrowser

            webbrowser.open(server.url)

    ports = [args.port] if args.port is not None else range(DEFAULT_PORT, DEFAULT_PORT + 20)
    for port in ports:
        try:
            serve(root, args.host, port, ready)
            return 0
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE and args.port is None:
                continue  # the default port is taken: the next one
            print(f"steadyrun: cannot listen on {args.host}:{port}: {exc.strerror or exc}",
                  file=sys.stderr)
            return 2
    print(f"steadyrun: ports {DEFAULT_PORT} to {DEFAULT_PORT + 19} are taken: pass --port",
          file=sys.stderr)
    return 2
