"""`steadyrun compare A B [C...] [--json]`: runs side by side (read/compare.py).

Each reference is a run id, an id prefix, `latest`, or `tag:NAME` / `group:NAME` (several
runs as one column, mean ± std with n). Every column after the first gets deltas
against the first, marked better/worse by the metric's goal. Read from the runs'
digests, never their rows.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson


def register(sub: Any) -> None:
    c = sub.add_parser("compare", help="runs side by side: metrics with deltas, config and "
                                       "metadata that differ, namespaces")
    c.add_argument("runs", nargs="+", metavar="RUN",
                   help="a run id or prefix, latest, tag:NAME or group:NAME; the first is "
                        "the reference")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=cmd_compare)


MARKS = {"better": "[green]better[/]", "worse": "[red]worse[/]", "same": "same"}


def cmd_compare(args: argparse.Namespace) -> int:
    from ..read.compare import compare

    if len(args.runs) < 2:
        print("steadyrun: compare needs at least two runs (ids, prefixes, latest, tag:NAME "
              "or group:NAME)", file=sys.stderr)
        return 2
    result = compare(args.runs, args.dir)
    if args.json:
        sys.stdout.write(orjson.dumps(result, option=orjson.OPT_INDENT_2, default=str).decode()
                         + "\n")
        return 0
    print_text(result)
    return 0


def _header(col: dict[str, Any]) -> str:
    if col["many"]:
        return f"{col['label']} (n={col['n']})"
    name = col.get("name")
    return col["label"] if not name or name == col["label"] else f"{col['label']}\n{name}"


def print_text(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from ..read.compare import fmt_cell, fmt_delta

    con = Console()
    cols = result["columns"]
    heads = [_header(c) for c in cols]

    def table(title: str, first: str, extra: tuple[str, ...] = ()) -> Table:
        t = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
        t.add_column(first, no_wrap=True)
        for name in extra:
            t.add_column(name)
        for i, h in enumerate(heads):
            t.add_column(escape(h) + (" (reference)" if i == 0 else ""), justify="right")
        return t

    runs = table("runs", "column")
    for field in ("runs", "state"):
        cells = []
        for c in cols:
            if field == "runs":
                cells.append(", ".join(c["runs"]) if c["many"] else c["runs"][0])
            else:
                cells.append(", ".join(c["states"]) if c["many"] else str(c.get("state")))
        runs.add_row(field, *map(escape, cells))
    con.print(runs)

    metrics = table("metrics (summary, and the best value of each metric with a goal)",
                    "metric", ("goal",))
    for m in result["metrics"]:
        cells = [escape(fmt_cell(m["values"][0]))]
        for v, d, r, k in zip(m["values"][1:], m["delta"][1:], m["rel"][1:], m["mark"][1:],
                              strict=True):
            text = escape(fmt_cell(v))
            delta = fmt_delta(d, r)
            if delta:
                text += f"  {escape(delta)}"
            if k:
                text += f" {MARKS[k]}"
            cells.append(text)
        goal = m["goal"] or ""
        label = m["key"] + (" (best)" if m["source"] == "best" else "")
        metrics.add_row(escape(label), goal, *cells)
    if result["metrics"]:
        con.print(metrics)
    else:
        print("no summary metrics in these runs")

    for field, title in (("config", "config that differs"),
                         ("metadata", "metadata that differs")):
        rows = result[field]
        if not rows:
            print(f"{title}: none")
            continue
        t = table(title, "key")
        for r in rows:
            t.add_row(escape(r["key"]), *(escape(fmt_cell(v)) for v in r["values"]))
        con.print(t)

    if result["namespaces"]:
        t = table("namespaces: the step reached, final and best values", "namespace / key",
                  ("",))
        for ns in result["namespaces"]:
            t.add_row(escape(ns["namespace"] or "<root>"), escape(ns["step_metric"]),
                      *(escape(fmt_cell(v)) for v in ns["step"]), end_section=not ns["keys"])
            for i, k in enumerate(ns["keys"]):
                last = i == len(ns["keys"]) - 1
                t.add_row("  " + escape(k["key"]), "final",
                          *(escape(fmt_cell(v)) for v in k["final"]),
                          end_section=last and "best" not in k)
                if "best" in k:
                    t.add_row("", f"best ({k['goal']})",
                              *(escape(fmt_cell(v)) for v in k["best"]), end_section=last)
        con.print(t)
