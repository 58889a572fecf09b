"""`steadyrun logs RUN [-f] [--writer W] [--grep RE] [--tail N]`: the run's captured
stdout and stderr (log/console.py), every writer's lines in time order, each marked
with its writer (`[owner]`, `[rank-1]`) when the run has more than one."""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import deque
from typing import Any

from ..store.console_file import short_writer
from .runs import locate_run


def register(sub: Any) -> None:
    s = sub.add_parser("logs", help="print a run's captured stdout and stderr")
    s.add_argument("run")
    s.add_argument("-f", "--follow", action="store_true",
                   help="keep printing new lines while the run is running")
    s.add_argument("--writer", action="append", default=None,
                   help="only this writer's lines (a prefix of its name; repeatable)")
    s.add_argument("--grep", default=None, help="only lines matching this regular expression")
    s.add_argument("--tail", type=int, default=None, help="only the last N lines")
    s.set_defaults(func=cmd_logs)


def cmd_logs(args: argparse.Namespace) -> int:
    from ..read.console import console_files, console_lines

    if args.tail is not None and args.tail < 0:
        print("steadyrun logs: --tail must be 0 or more", file=sys.stderr)
        return 2
    try:
        pattern = re.compile(args.grep) if args.grep else None
    except re.error as exc:
        print(f"steadyrun logs: --grep is not a regular expression ({exc})", file=sys.stderr)
        return 2
    rdir = locate_run(args.run, args.dir)
    files = console_files(rdir)
    writers = [w for w in files if not args.writer or any(w.startswith(p) for p in args.writer)]
    if not files:
        print(f"steadyrun logs: run {rdir.name} has no captured console (it ran with "
              f"console off, or before steadyrun captured it)", file=sys.stderr)
        return 0 if not args.follow else _follow(rdir, args.writer, pattern, False)
    if args.writer and not writers:
        print(f"steadyrun logs: run {rdir.name} has no writer named {', '.join(args.writer)}"
              f"* (its writers: {', '.join(files)})", file=sys.stderr)
        return 2
    many = len(writers) > 1  # marks only when lines of several writers are shown
    lines = (rec for rec in console_lines(rdir, writers) if _wanted(rec, pattern))
    if args.tail is not None:
        lines = iter(deque(lines, maxlen=args.tail))
    for rec in lines:
        _print(rec, many)
    return _follow(rdir, args.writer, pattern, many) if args.follow else 0


def _wanted(rec: dict[str, Any], pattern: re.Pattern[str] | None) -> bool:
    return pattern is None or pattern.search(rec["l"]) is not None


def _print(rec: dict[str, Any], many: bool) -> None:
    prefix = f"[{short_writer(rec['writer'])}] " if many else ""
    stream = sys.stderr if rec.get("s") == "err" else sys.stdout
    stream.write(prefix + rec["l"] + "\n")
    stream.flush()


def _follow(rdir: Any, prefixes: list[str] | None, pattern: re.Pattern[str] | None,
            many: bool) -> int:
    """New lines as they come (a writer that starts later included), until the run has
    ended and nothing more comes."""
    from ..store.console_file import console_files, read_lines
    from ..store.manifest import manifest_of

    offsets = {w: p.stat().st_size for w, p in console_files(rdir).items()}
    quiet = 0
    while True:
        got = False
        for writer, path in console_files(rdir).items():
            if prefixes and not any(writer.startswith(p) for p in prefixes):
                continue
            lines, offsets[writer] = read_lines(path, offsets.get(writer, 0))
            shown = [w for w in offsets if not prefixes or any(w.startswith(p) for p in prefixes)]
            for rec in lines:
                got = True
                if _wanted(rec, pattern):
                    _print({**rec, "writer": writer}, many or len(shown) > 1)
        running = manifest_of(rdir).get("state") == "running"
        quiet = 0 if got or running else quiet + 1
        if quiet >= 2:  # ended, and two more looks found nothing
            return 0
        time.sleep(0.5)
