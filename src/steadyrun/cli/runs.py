"""`steadyrun runs [--json]`: every run under the root, one line each.

Read from an overview of each run (read/overview.py), not every row, so a folder of
large runs lists in a fraction of a second per run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import orjson


def register(sub: Any) -> None:
    r = sub.add_parser("runs", help="list runs")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_runs)


def _age(ts: float | None) -> str:
    if not ts:
        return "?"
    s = max(0, time.time() - ts)
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n:
            return f"{int(s // n)}{unit}"
    return f"{int(s)}s"


def run_row(data: Any, rows: int | None = None, last_step: Any = None) -> dict[str, Any]:
    m = data.manifest
    if rows is None:
        rows, last_step = len(data.rows), data.last_step
    out = {"id": data.id, "name": m.get("name"), "project": m.get("project"),
           "state": data.state, "rows": rows, "last_step": last_step,
           "age": _age(m.get("created_at")), "dir": str(data.dir)}
    if isinstance(m.get("dropped_rows"), int) and m["dropped_rows"]:
        out["dropped_rows"] = m["dropped_rows"]
    if isinstance(m.get("error"), dict) and data.state == "failed":
        out["error"] = m["error"]
    return out


def state_text(row: dict[str, Any]) -> str:
    """`finished`, `finished, 47570 rows dropped (disk full)`, or `failed (ValueError:
    lr must be positive)`."""
    n = row.get("dropped_rows")
    text = f"{row['state']}, {n} rows dropped (disk full)" if n else row["state"]
    err = row.get("error")
    if isinstance(err, dict) and err.get("type"):
        why = f"{err['type']}: {err.get('message') or ''}".rstrip(": ")
        text += f" ({why[:80]})"
    return text


def locate_run(ref: str, root: str | None) -> Path:
    """The run `ref` names, under the root or, said on stderr, in a fallback root."""
    from ..store.manifest import find_run

    rdir, fallback = find_run(ref, root)
    if fallback is not None:
        print(f"steadyrun: run {rdir.name} is in the fallback root {fallback} (its own root "
              f"could not be written when it started)", file=sys.stderr)
    return rdir


def fallback_runs(root: str | None) -> list[Path]:
    """Runs in the fallback roots (other than `root`): where a run went whose root could
    not be written."""
    from ..read.reader import list_runs
    from ..store.layout import fallback_roots, runs_dir

    here = runs_dir(root).parent.resolve()
    return [d for fb in fallback_roots() if fb.resolve() != here for d in list_runs(fb)]


def no_runs_line(root: str | None) -> str:
    """What `runs` and `sync --all` say of an empty root: where they looked, and how the
    root is found (a wrong folder must not look like a root whose runs are all done)."""
    from ..store.layout import runs_dir

    where = runs_dir(root).absolute()
    why = "" if where.is_dir() else " (the folder does not exist)"
    return f"no runs under {where}{why}; the root is --dir, else $STEADYRUN_DIR, else ./steadyrun"


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..read.overview import overview
    from ..read.reader import list_runs
    from ..store.layout import runs_dir

    rows = [run_row(*overview(d)) for d in list_runs(args.dir)]
    elsewhere = [run_row(*overview(d)) for d in fallback_runs(args.dir)]
    for r in elsewhere:
        r["fallback_root"] = str(Path(r["dir"]).parent.parent)
    rows += elsewhere
    if args.json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if not rows:
        print(no_runs_line(args.dir))
        return 0
    table = Table(title=f"steadyrun runs in {runs_dir(args.dir)}", show_edge=False,
                  collapse_padding=True, pad_edge=False)
    # The id is what every other command takes: it is never cut, whatever the width.
    table.add_column("id", no_wrap=True, min_width=max(len(r["id"]) for r in rows))
    table.add_column("name")
    table.add_column("project")
    # The state is read at a glance: a narrow terminal squeezes name and project first.
    table.add_column("state", min_width=max(len(r["state"]) for r in rows))
    for col in ("rows", "last step", "age"):
        table.add_column(col, justify="right")
    colors = {"running": "cyan", "finished": "green", "failed": "red", "crashed": "red"}
    for r in rows:
        state = f"[{colors.get(r['state'], 'white')}]{state_text(r)}[/]"
        table.add_row(r["id"], str(r["name"]), str(r["project"]), state, str(r["rows"]),
                      str(r["last_step"]), r["age"])
    Console().print(table)
    for root in sorted({r["fallback_root"] for r in elsewhere}):
        ids = ", ".join(r["id"] for r in elsewhere if r["fallback_root"] == root)
        print(f"in the fallback root {root} (their own root could not be written): {ids}; "
              f"read them with `steadyrun --dir {root} show ID`")
    return 0
