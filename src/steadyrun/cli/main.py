"""The `steadyrun` command: demo, runs, show, sync.

argparse for the grammar and rich for tables and progress, both imported only by the
command that needs them.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import orjson


def _age(ts: float | None) -> str:
    if not ts:
        return "?"
    s = max(0, time.time() - ts)
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n:
            return f"{int(s // n)}{unit}"
    return f"{int(s)}s"


def _run_row(data: Any, rows: int | None = None, last_step: Any = None) -> dict[str, Any]:
    m = data.manifest
    if rows is None:
        rows, last_step = len(data.rows), data.last_step
    return {"id": data.id, "name": m.get("name"), "project": m.get("project"),
            "state": data.state, "rows": rows, "last_step": last_step,
            "age": _age(m.get("created_at")), "dir": str(data.dir)}


def cmd_runs(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from ..read.overview import overview
    from ..read.reader import list_runs

    rows = [_run_row(*overview(d)) for d in list_runs(args.dir)]
    if args.json:
        sys.stdout.write(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    if not rows:
        print(f"no runs under {args.dir or 'STEADYRUN_DIR or ./steadyrun'}")
        return 0
    table = Table(title="steadyrun runs")
    for col in ("id", "name", "project", "state", "rows", "last step", "age"):
        table.add_column(col, justify="right" if col in ("rows", "last step", "age") else "left")
    colors = {"running": "cyan", "finished": "green", "failed": "red", "crashed": "red"}
    for r in rows:
        state = f"[{colors.get(r['state'], 'white')}]{r['state']}[/]"
        table.add_row(r["id"], str(r["name"]), str(r["project"]), state, str(r["rows"]),
                      str(r["last_step"]), r["age"])
    Console().print(table)
    return 0


def show_dict(data: Any) -> dict[str, Any]:
    hist = {ns or "<root>": len(data.history(ns)) for ns in data.namespaces}
    return {**_run_row(data), "manifest": data.manifest, "namespaces": hist,
            "summary": data.summary, "config": data.config, "events": data.events,
            "anomalies": data.anomalies, "torn": data.torn, "segments": data.segments,
            "tables": [t["key"] for t in data.tables], "images": [i["path"] for i in data.images],
            "histograms": sorted({k for h in data.histograms for k in h["v"]}),
            "files": [f["path"] for f in data.files], "alerts": data.alerts,
            "wandb_dirs": [str(p) for p in wandb_run_dirs(data)],
            "wandb_url": data.wandb.get("url")}


def wandb_run_dirs(data: Any) -> list[Any]:
    from pathlib import Path

    out = []
    for p in data.wandb.get("run_dirs", []):
        if Path(p).exists():
            out.append(Path(p))
    return out


def cmd_show(args: argparse.Namespace) -> int:
    from ..read.reader import open_run

    data = open_run(args.run, args.dir)
    info = show_dict(data)
    if args.json:
        for ev in info["events"]:
            ev.pop("_seg", None)
        sys.stdout.write(orjson.dumps(info, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS,
                                      default=str).decode() + "\n")
        return 0
    from rich.console import Console
    from rich.table import Table

    con = Console()
    con.print(f"[bold]run {info['id']}[/] {info['name']}  project={info['project']}  "
              f"state={info['state']}  rows={info['rows']}  last step={info['last_step']}")
    # Paths and messages are printed whole (soft_wrap): a path folded by rich at the
    # terminal width cannot be copied or grepped.
    con.print(f"folder: {info['dir']}", soft_wrap=True)
    if data.manifest.get("manifest_error"):
        # run.json is damaged: say so, and that the rows come from the intact segments.
        con.print(f"[yellow]warning[/] {data.manifest['manifest_error']}; the state and "
                  f"rows shown come from the segments", markup=True, highlight=False,
                  soft_wrap=True)
    t = Table(title="history")
    t.add_column("namespace")
    t.add_column("rows", justify="right")
    t.add_column("last", overflow="fold")
    for ns in data.namespaces:
        h = data.history(ns)
        last = ", ".join(f"{k}={_fmt(v)}" for k, v in h[-1].items()) if h else ""
        t.add_row(ns or "<root>", str(len(h)), last)
    con.print(t)
    if info["summary"]:
        s = Table(title="summary")
        s.add_column("key")
        s.add_column("value", justify="right")
        for k, v in info["summary"].items():
            s.add_row(k, _fmt(v))
        con.print(s)
    if info["config"]:
        con.print("config:", orjson.dumps(info["config"]).decode())
    for name in ("tables", "images", "histograms", "files"):
        if info[name]:
            con.print(f"{name}: {', '.join(info[name])}", soft_wrap=True)
    for a in info["anomalies"]:
        con.print(f"[yellow]anomaly[/] {_fmt_event(a)}")
    if data.wandb.get("url"):
        con.print(f"W&B run: {data.wandb['url']}", soft_wrap=True)
    for d in info["wandb_dirs"]:
        con.print(f"W&B files: {d}\n  view offline: wandb leet {d}\n  upload: steadyrun sync "
                  f"{info['id']}  (or: wandb sync {d})", soft_wrap=True)
    return 0


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _fmt_event(e: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in e.items() if k not in ("k", "t", "_seg"))


def cmd_sync(args: argparse.Namespace) -> int:
    from .sync import sync_command

    return sync_command(args)


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import main as demo_main

    return demo_main(args)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="steadyrun", description=__doc__.splitlines()[0])
    p.add_argument("--dir", default=None, help="root folder (default: $STEADYRUN_DIR or ./steadyrun)")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="train a small model, tracked end to end")
    d.add_argument("--epochs", type=int, default=None)
    d.add_argument("--mode", default=None, help="auto, online, offline, local")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--preset", default="digits", help="experiment preset: digits, digits-wide")
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("runs", help="list runs")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=cmd_runs)

    s = sub.add_parser("show", help="print one run")
    s.add_argument("run")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_show)

    y = sub.add_parser("sync", help="ship runs to W&B (idempotent)")
    y.add_argument("run", nargs="?")
    y.add_argument("--all", action="store_true")
    y.add_argument("--follow", action="store_true", help="tail the run until its writers end")
    y.add_argument("--mode", default=None, help="online or offline (default: auto)")
    y.add_argument("--owner-pid", type=int, default=None, help=argparse.SUPPRESS)
    y.add_argument("--quiet", action="store_true")
    y.set_defaults(func=cmd_sync)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..store.layout import ManifestError

    try:
        return int(args.func(args) or 0)
    except ManifestError as exc:
        print(f"steadyrun: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
