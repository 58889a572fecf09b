"""`steadyrun doctor PATH... [--json] [--fail-on warn|error]`: the bugs of home-made W&B
wrappers found in W&B run folders (and what a steadyrun run recorded about itself).

Exit 0 when no finding reaches `--fail-on` (default: error), 1 when one does, 2 when a
PATH cannot be read: one line on stderr naming the file and what was wrong, never a
traceback. The logic is in doctor/.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

EXIT_OK, EXIT_FOUND, EXIT_CANNOT = 0, 1, 2


def register(sub: Any) -> None:
    d = sub.add_parser(
        "doctor", help="find the W&B bugs (dropped rows, empty charts, split pipelines, "
        "duplicate ranks, leaked keys...) in W&B or steadyrun runs",
        description="Check W&B run folders (offline-run-*, run-*, a wandb/ folder of many) "
        "and steadyrun runs or roots. Exit 0 clean, 1 findings at or above --fail-on, 2 "
        "unreadable input.")
    d.add_argument("paths", nargs="+", metavar="PATH",
                   help="a W&B run folder, a wandb/ folder, a run-*.wandb file, or a "
                   "steadyrun run or root")
    d.add_argument("--json", action="store_true", help="the findings as JSON")
    d.add_argument("--fail-on", choices=("warn", "error"), default="error",
                   help="exit 1 when a finding of this severity or worse is found "
                   "(default: error)")
    d.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from ..doctor import DoctorInputError, at_or_above, examine

    try:
        report = examine(args.paths)
    except DoctorInputError as exc:
        return _cannot(str(exc))
    except Exception as exc:  # noqa: BLE001 - unreadable data: one line, never a traceback
        return _cannot(f"cannot read {' '.join(args.paths)} ({type(exc).__name__}: {exc})")
    if args.json:
        sys.stdout.write(orjson.dumps(report.as_dict(), option=orjson.OPT_INDENT_2,
                                      default=str).decode() + "\n")
    else:
        sys.stdout.write(report.text())
    return EXIT_FOUND if at_or_above(report.findings, args.fail_on) else EXIT_OK


def _cannot(message: str) -> int:
    text = " ".join(message.split())  # one line
    print(f"steadyrun doctor: cannot read: {text}", file=sys.stderr)
    return EXIT_CANNOT
