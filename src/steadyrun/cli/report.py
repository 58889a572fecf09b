"""`steadyrun report RUN [RUN...] [-o report.html]`: one self-contained HTML file of the
runs (overlaid), for CI artifacts, e-mail and pull requests (ui/report.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .runs import locate_run
from .ui import need_ui_parts


def register(sub: Any) -> None:
    r = sub.add_parser("report", help="write runs' charts into one HTML file")
    r.add_argument("runs", nargs="+", metavar="RUN", help="run ids, id prefixes or folders")
    r.add_argument("-o", "--output", default="report.html", help="file to write")
    r.add_argument("--dir", default=argparse.SUPPRESS,
                   help="root folder (default: $STEADYRUN_DIR or ./steadyrun)")
    r.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    missing = need_ui_parts("steadyrun report")
    if missing:
        print(missing, file=sys.stderr)
        return 2
    rdirs: list[Path] = []
    for ref in args.runs:
        rdir = locate_run(ref, getattr(args, "dir", None))
        if rdir not in rdirs:
            rdirs.append(rdir)
    out = Path(args.output)
    if not out.parent.is_dir():
        print(f"steadyrun: cannot write {out}: {out.parent} is not a folder", file=sys.stderr)
        return 2
    from ..ui.report import write_report

    try:
        size = write_report(rdirs, out)
    except OSError as exc:
        print(f"steadyrun: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"report: {out} ({size / 1e6:.1f} MB, {len(rdirs)} run(s)); opens offline in any "
          f"browser")
    return 0
