"""`steadyrun show RUN [--json]`: one run, read whole: namespaces and their last values,
summary, config, anomalies, where its W&B files are and how to look at them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from ..store.layout import sync_command
from .runs import locate_run, run_row, state_text


def register(sub: Any) -> None:
    s = sub.add_parser("show", help="print one run")
    s.add_argument("run")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_show)


def show_dict(data: Any) -> dict[str, Any]:
    hist = {ns or "<root>": len(data.history(ns)) for ns in data.namespaces}
    return {**run_row(data), "manifest": data.manifest, "namespaces": hist,
            "summary": data.summary, "config": data.config, "events": data.events,
            "anomalies": data.anomalies, "torn": data.torn, "segments": data.segments,
            "tables": [t["key"] for t in data.tables], "images": [i["path"] for i in data.images],
            "histograms": sorted({k for h in data.histograms for k in h["v"]}),
            "files": [f["path"] for f in data.files], "alerts": data.alerts,
            "baseline": data.manifest.get("baseline"),
            "regressions": [e for e in data.events if e.get("type") == "regression"],
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

    data = open_run(locate_run(args.run, args.dir))
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
              f"state={state_text(info)}  rows={info['rows']}  last step={info['last_step']}")
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
    for a in info["alerts"]:
        text = f": {a['text']}" if a.get("text") and a["text"] != a["title"] else ""
        con.print(f"[red]alert[/] {a.get('level', 'WARN')} {a['title']}{text}", markup=True,
                  highlight=False, soft_wrap=True)
    if isinstance(info["baseline"], dict) and info["baseline"].get("ref"):
        con.print(f"baseline: {_fmt_baseline(info['baseline'])}", markup=False,
                  highlight=False, soft_wrap=True)
    for r in info["regressions"]:
        from rich.markup import escape

        con.print(f"[red]regression[/] {escape(_fmt_regression(r))}", markup=True,
                  highlight=False, soft_wrap=True)
    for a in info["anomalies"]:
        con.print(f"[yellow]anomaly[/] {_fmt_event(a)}")
    if data.wandb.get("url"):
        con.print(f"W&B run: {data.wandb['url']}", soft_wrap=True)
    for d in info["wandb_dirs"]:
        con.print(f"W&B files: {d}\n  view offline: wandb leet {d}\n  upload: "
                  f"{sync_command(data.dir)}  (or: wandb sync {d})", soft_wrap=True)
    return 0


def _fmt(v: Any) -> str:
    return f"{v:.6g}" if isinstance(v, float) else str(v)


def _fmt_baseline(b: dict[str, Any]) -> str:
    runs = ", ".join(str(r) for r in b.get("runs") or [])
    rules = ", ".join(str(r) for r in b.get("rules") or []) or "1% for metrics with a goal"
    return f"{b.get('ref')} ({runs}); rules: {rules}; k={b.get('k')}"


def _fmt_regression(e: dict[str, Any]) -> str:
    """`val/acc = 0.7 at val/step 30 vs baseline 0.8 ± 0.01 (n=3), band 0.78, rule ...`."""
    where = (f" at {e.get('step_metric')} {e.get('step')}" if e.get("phase") == "live"
             else f" ({e.get('source')} value, at finish)")
    std = f" ± {_fmt(e['std'])}" if isinstance(e.get("std"), float) else ""
    band = f", band {_fmt(e['band'])}" if isinstance(e.get("band"), float) else ""
    return (f"{e.get('key')} = {_fmt(e.get('value'))}{where} vs baseline "
            f"{_fmt(e.get('baseline'))}{std} (n={e.get('n')}){band}, rule {e.get('rule')}")


def _fmt_event(e: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in e.items() if k not in ("k", "t", "_seg"))
