"""`steadyrun leaderboard [--project P] [--group G] [--tag T] [--metric KEY] [--goal G]
[--top N] [--json|--csv|--markdown] [--to-run RUN [--key KEY]]`: runs ranked by a goal
metric (read/leaderboard.py has every rule), read from their digests.

`--to-run RUN` also puts the table into RUN as a table record (W&B: a `wandb.Table`).
The run may have finished: this process joins it with `steadyrun.attach`, as a writer
of its own segment (open, the table, close), the way any process adds to an existing
run. run.json, the run's state and its own segments are left as they were; a run that
ships to W&B gets a sidecar for that segment, so the table reaches its W&B run.
"""

from __future__ import annotations

import argparse
import csv
import sys
from typing import Any

import orjson


def register(sub: Any) -> None:
    b = sub.add_parser("leaderboard", help="runs ranked by a goal metric")
    b.add_argument("--project")
    b.add_argument("--group")
    b.add_argument("--tag")
    b.add_argument("--metric", help="the key to rank by (default: the one key with a goal)")
    b.add_argument("--goal", choices=("minimize", "maximize", "min", "max"),
                   help="for a metric the runs define no goal for")
    b.add_argument("--top", type=int, help="the first N lines (ranked runs first)")
    fmt = b.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true")
    fmt.add_argument("--csv", action="store_true")
    fmt.add_argument("--markdown", action="store_true")
    b.add_argument("--to-run", metavar="RUN",
                   help="also log the table into this run (id or prefix) as a table record")
    b.add_argument("--key", default="leaderboard", help="the table's key with --to-run")
    b.set_defaults(func=cmd_leaderboard)


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        from ..read.compare import fmt_number

        return fmt_number(v)
    return str(v)


def markdown(columns: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return _text(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(c) for c in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from ..read.leaderboard import LeaderboardError, leaderboard, table

    if args.top is not None and args.top < 1:
        print("steadyrun: --top takes a number >= 1", file=sys.stderr)
        return 2
    target = None
    if args.to_run is not None:
        from .runs import locate_run

        target = locate_run(args.to_run, args.dir)  # before the work: a bad id fails fast
    try:
        board = leaderboard(args.dir, project=args.project, group=args.group, tag=args.tag,
                            metric=args.metric, goal=args.goal, top=args.top)
    except LeaderboardError as exc:
        print(f"steadyrun: leaderboard: {exc}", file=sys.stderr)
        return 2
    columns, rows = table(board)
    if args.json:
        sys.stdout.write(orjson.dumps({**board, "columns": columns},
                                      option=orjson.OPT_INDENT_2, default=str).decode() + "\n")
    elif args.csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(columns)
        w.writerows([["" if v is None else v for v in r] for r in rows])
    elif args.markdown:
        sys.stdout.write(markdown(columns, rows))
    else:
        print_text(board, columns, rows)
    if target is not None:
        return to_run(target, args.key, columns, rows)
    return 0


def print_text(board: dict[str, Any], columns: list[str], rows: list[list[Any]]) -> None:
    """Aligned plain columns, not a rich Table: rich lays out a table of 1,000 runs in
    about 3 s (measured: cProfile, bench_compare l1), this in a few ms. Numbers are
    right-aligned; nothing is cut, whatever the terminal's width."""
    filters = ", ".join(f"{k} {v}" for k, v in board["filters"].items() if v is not None)
    title = (f"{board['metric']} ({board['goal']}): {board['ranked']} ranked"
             + (f", {board['unranked']} without it (listed last)" if board["unranked"] else "")
             + (f"; {filters}" if filters else "")
             + (f"; first {board['listed']} of {board['of']}" if board["listed"] < board["of"]
                else ""))
    cells = [["—" if v is None else _text(v) for v in r] for r in rows]
    right = [all(isinstance(r[i], (int, float)) or r[i] is None for r in rows)
             and any(r[i] is not None for r in rows) for i in range(len(columns))]
    right[0] = True
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]

    def line(values: list[str]) -> str:
        return "  ".join(v.rjust(w) if r else v.ljust(w)
                         for v, w, r in zip(values, widths, right, strict=True)).rstrip()

    out = [title, line(columns), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    sys.stdout.write("\n".join(out) + "\n")


def to_run(rdir: Any, key: str, columns: list[str], rows: list[list[Any]]) -> int:
    """The table into the run at `rdir` as a writer of its own (`steadyrun.attach`)."""
    import warnings

    from ..api import attach
    from ..store.values import SteadyrunWarning

    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always", SteadyrunWarning)
        run = attach(rdir.name, dir=rdir.parent.parent, job_type="leaderboard")
        try:
            run.log_table(key, columns, rows)
        finally:
            run.finish()
    refused = [str(w.message) for w in said if issubclass(w.category, SteadyrunWarning)]
    if refused:
        print(f"steadyrun: leaderboard: run {rdir.name} did not take the table: {refused[0]}",
              file=sys.stderr)
        return 2
    print(f"steadyrun: the leaderboard is in run {rdir.name} as the table {key!r} "
          f"({len(rows)} rows)", file=sys.stderr)
    return 0
