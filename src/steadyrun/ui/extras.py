"""The Media and Anomalies views of a run: tables, images, histograms, alerts, files,
checkpoints; and what deserves a look (step regressions, rejected values, NaN and
infinities, dropped rows, torn lines), each with the step it happened at and the line
of the training script that caused it.

Anomalies are what no peer's dashboard shows and what our users came for (the seeds'
silently dropped rows and empty charts), so each one is placed on its chart's x axis:
the namespace's own step, as the chart draws it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..store.steps import step_metric_of
from .model import RunView, plain

MAX_PER_KEY = 200  # non-finite values listed per key (the rest counted)


def media(view: RunView, url_of: Callable[[str], str | None]) -> dict[str, Any]:
    """Everything but rows that a run holds, in time order; `url_of` turns a file's path
    in the run folder into what the page loads (a server URL, or a data: URI)."""
    recs = view.records()
    tables, images, alerts, files, artifacts = [], [], [], [], []
    hists: dict[str, list[dict[str, Any]]] = {}
    for rec in recs:
        k = rec.get("k")
        if k == "table":
            tables.append({f: rec.get(f) for f in ("key", "columns", "rows", "x", "t")})
        elif k == "image" and isinstance(rec.get("path"), str):
            images.append({"key": rec.get("key"), "caption": rec.get("caption"),
                           "x": rec.get("x"), "t": rec.get("t"), "path": rec["path"],
                           "url": url_of(rec["path"])})
        elif k == "histogram" and isinstance(rec.get("v"), dict):
            for key, h in rec["v"].items():
                if isinstance(h, dict):
                    hists.setdefault(key, []).append(
                        {"x": rec.get("x"), "counts": h.get("counts"), "edges": h.get("edges"),
                         "nonfinite": h.get("nonfinite")})
        elif k == "alert":
            alerts.append({f: rec.get(f) for f in ("title", "text", "level", "t")})
        elif k == "file" and isinstance(rec.get("path"), str):
            files.append({"path": rec["path"], "name": rec.get("name"), "t": rec.get("t"),
                          "url": url_of(rec["path"])})
        elif k == "artifact":
            artifacts.append({f: rec.get(f) for f in ("name", "type", "path", "size",
                                                      "aliases", "x", "t", "metadata",
                                                      "files")})
    # `best` moves to each new best checkpoint (as W&B moves the alias): only the last
    # holder of it per artifact name is the best one.
    holder: dict[Any, int] = {}
    for i, a in enumerate(artifacts):
        a["best"] = False
        if "best" in (a.get("aliases") or []):
            holder[a.get("name")] = i
    for i in holder.values():
        artifacts[i]["best"] = True
    return {"tables": tables, "images": images, "histograms": hists, "alerts": alerts,
            "files": files, "artifacts": artifacts}


def _x_at(view: RunView, key: str, t: Any, cache: dict[str, Any]) -> Any:
    """The step a key was at, at time t (for events that record a time, not a step)."""
    if not isinstance(t, (int, float)):
        return None
    if key not in cache:
        cache[key] = view.columns(key)
    cols = cache[key]
    if cols is None or not len(cols["t"]):
        return None
    i = int(np.searchsorted(cols["t"], t, side="left"))
    return plain(float(cols["x"][min(i, len(cols["x"]) - 1)]))


def anomalies(view: RunView, keys: list[str] | None = None) -> list[dict[str, Any]]:
    """Every anomaly of the run, in time order, each placed on its chart where it can be."""
    out: list[dict[str, Any]] = []
    cols_cache: dict[str, Any] = {}
    for rec in view.records():
        if rec.get("k") != "event":
            continue
        kind = rec.get("type")
        site = rec.get("site")
        if kind == "step_regression":
            ns = rec.get("namespace")
            out.append({"type": kind, "namespace": ns, "step_metric": rec.get("step_metric"),
                        "x": rec.get("step"), "t": rec.get("t"), "site": site,
                        "message": f"step of namespace {ns!r} went back from "
                                   f"{rec.get('previous')} to {rec.get('step')}"})
        elif kind == "rejected":
            key = str(rec.get("key"))
            # placed on its namespace's axis even when no value of the key was kept
            x = _x_at(view, key, rec.get("t"), cols_cache)
            if x is None:
                x = _x_at(view, step_metric_of(key), rec.get("t"), cols_cache)
            out.append({"type": kind, "key": key, "t": rec.get("t"), "site": site, "x": x,
                        "message": f"{key!r} ({rec.get('value_type')}) refused: "
                                   f"{rec.get('reason')}"})
        elif kind == "regression":
            key = str(rec.get("key"))
            base = rec.get("baseline")
            message = f"{key} = {rec.get('value')}: worse than the baseline " \
                f"{rec.get('baseline_ref')}"
            if isinstance(base, (int, float)):
                message += f" ({base:.6g}; rule {rec.get('rule')})"
            if rec.get("phase") == "final":
                message += ", at the end of the run"
            out.append({"type": kind, "key": key, "t": rec.get("t"), "site": None,
                        "x": rec.get("step"), "step_metric": rec.get("step_metric"),
                        "message": message})
        elif kind in ("rejected_count", "overwritten_count"):
            out.append({"type": kind, "key": rec.get("key"), "t": rec.get("t"),
                        "count": rec.get("count"),
                        "message": f"{rec.get('key')!r}: {rec.get('count')} times in all"})
        elif kind == "overwritten":
            key = str(rec.get("key"))
            out.append({"type": kind, "key": key, "t": rec.get("t"), "site": site,
                        "x": _x_at(view, key, rec.get("t"), cols_cache),
                        "message": f"{key!r} logged again before its pending row was "
                                   "committed: only the last value was kept"})
    for key in keys if keys is not None else view.row_keys():
        cols = cols_cache.get(key) or view.columns(key)
        if cols is None:
            continue
        bad = np.flatnonzero(~np.isfinite(cols["y"]))
        for i in bad[:MAX_PER_KEY]:
            v = plain(float(cols["y"][i]))
            out.append({"type": "nonfinite", "key": key, "x": plain(float(cols["x"][i])),
                        "t": float(cols["t"][i]), "value": v,
                        "step_metric": step_metric_of(key), "message": f"{key} = {v}"})
        if len(bad) > MAX_PER_KEY:
            out.append({"type": "nonfinite_count", "key": key, "count": int(len(bad)),
                        "message": f"{key}: {len(bad)} non-finite values in all"})
    row = view.summary_row()
    if row.get("dropped_rows"):
        out.append({"type": "dropped", "count": row["dropped_rows"],
                    "message": f"{row['dropped_rows']} rows dropped: the disk refused them"})
    bad_lines = view.bad_lines()
    if bad_lines:
        out.append({"type": "torn", "count": bad_lines,
                    "message": f"{bad_lines} torn line(s) in the segments (a killed writer)"})
    out.sort(key=lambda a: a.get("t") if isinstance(a.get("t"), (int, float)) else float("inf"))
    return out


LOG_LINES = 5000  # the last lines a page shows of a run's console


def logs(view: RunView, tail: int = LOG_LINES) -> dict[str, Any]:
    """The run's captured console (log/console.py): its last `tail` lines in time order,
    each `{t, s, l, w}` (w: the writer, `owner-1234`), and how many there are."""
    from collections import deque

    from ..read.console import console_files, console_lines
    from ..store.console_file import short_writer

    writers = list(console_files(view.dir))
    total = 0
    last: deque[dict[str, Any]] = deque(maxlen=max(0, tail))
    for rec in console_lines(view.dir):
        total += 1
        last.append({"t": rec.get("t"), "s": rec.get("s"), "l": rec["l"],
                     "w": short_writer(rec["writer"])})
    return {"lines": list(last), "total": total, "writers": [short_writer(w) for w in writers]}
