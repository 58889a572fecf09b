"""`steadyrun check RUN [--baseline B] [--rule 'eval/acc>=-0.5%' ...] [--k 2] [--json]`:
a CI gate. Exit 0 when every rule holds, 1 when a regression is found, 2 when the check
could not be made (one line on stderr naming what is missing, never a traceback).

The markdown table goes to stdout, ready for a CI job summary:
`steadyrun check $RUN --baseline tag:main >> $GITHUB_STEP_SUMMARY`. The logic is in
read/check.py, the rules in store/rules.py.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

EXIT_OK, EXIT_REGRESSED, EXIT_CANNOT = 0, 1, 2


def register(sub: Any) -> None:
    c = sub.add_parser("check", help="judge a run against its baseline (exit 0 ok, 1 "
                       "regressed, 2 cannot check)",
                       description="Judge RUN's summary values against a baseline: exit 0 "
                       "when every rule holds, 1 on a regression, 2 when the check cannot "
                       "be made.")
    c.add_argument("run", help="run id, id prefix or folder")
    c.add_argument("--baseline", default=None,
                   help="run id, tag:NAME, group:NAME, latest or best (default: the run's "
                   "own baseline, kept in run.json)")
    c.add_argument("--rule", action="append", default=None, metavar="RULE",
                   help="e.g. 'eval/acc>=-0.5%%' or 'eval/loss<=+0.02' (repeatable; "
                   "default: the run's stored rules, and 1%% for its other goal metrics)")
    c.add_argument("--k", type=float, default=None,
                   help="noise band width in standard deviations (default 2)")
    c.add_argument("--json", action="store_true", help="the verdicts as JSON")
    c.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    from ..read.check import check_run

    try:
        result = check_run(args.run, args.dir, baseline=args.baseline, rules=args.rule,
                           k=args.k)
    except ValueError as exc:  # store/rules.RuleError, BaselineError
        return _cannot(str(exc))
    except Exception as exc:  # noqa: BLE001 - unreadable data: one line, never a traceback
        return _cannot(f"cannot read the runs ({type(exc).__name__}: {exc})")
    if args.json:
        sys.stdout.write(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode()
                         + "\n")
    else:
        sys.stdout.write(result.markdown())
    return result.exit_code


def _cannot(message: str) -> int:
    text = " ".join(message.split())  # one line
    print(f"steadyrun check: cannot check: {text}", file=sys.stderr)
    return EXIT_CANNOT
