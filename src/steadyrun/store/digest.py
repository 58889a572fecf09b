"""A segment's records folded into a small digest: per key its count, last, min and max
(each with its step), the summary, the config, the metric definitions, the steps
reached, event counts, and how the segment opened and closed.

Why: comparing, ranking and checking runs (compare, leaderboard, check) needs each
run's summary and the best and final value of its metrics. Parsing every row of 1,000
runs would take minutes. A writer keeps its segment's digest on disk every few seconds
(log/digest_keeper.py) with the byte offset it covers; a reader loads it and folds only
the records written after that offset (read/digest.py). So a digest can be stale (a
killed writer) but never wrong.

Pure functions of records: the same fold runs in the writer and in the reader.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .records import GOALS
from .steps import is_step_metric, step_metric_of
from .values import plain, restore_values

VERSION = 1


def new() -> dict[str, Any]:
    return {"v": VERSION, "offset": 0, "rows": 0, "keys": {}, "summary": {}, "config": {},
            "metrics": {}, "steps": {}, "events": {}, "alerts": 0, "open": None,
            "close": None}


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# Per key, its step metric, or None for a step metric itself: the same few keys come in
# every row, and working it out again for each (a string split and a suffix test) was
# most of the fold's cost, paid on the writer thread for every row logged.
_AXES: dict[str, str | None] = {}
_AXES_MAX = 100_000


def _axis(key: str) -> str | None:
    axis = None if is_step_metric(key) else step_metric_of(key)
    if len(_AXES) < _AXES_MAX:
        _AXES[key] = axis
    return axis


def _entry() -> dict[str, Any]:
    return {"n": 0, "nonfinite": 0, "last": None, "last_step": None, "last_t": None,
            "min": None, "min_step": None, "max": None, "max_step": None}


def _fold_row(d: dict[str, Any], rec: dict[str, Any]) -> None:
    values = rec.get("v")
    if not isinstance(values, dict):
        return
    d["rows"] += 1
    nf = rec.get("nf") or {}
    t = rec.get("t")
    x = rec.get("x")
    keys = d["keys"]
    steps = d["steps"]
    axes = _AXES
    for k, v in values.items():
        sk = axes.get(k, k)  # k: not known yet (no step metric is named like its key)
        if sk is k:
            sk = _axis(k)
        # A plain int or float (orjson's), else the full test (a bool is no number).
        number = type(v) is float or type(v) is int or _number(v)
        if sk is None:
            if number:
                steps[k] = v
            continue
        s = values.get(sk, x)
        entry = keys.get(k)
        if entry is None:
            entry = keys[k] = _entry()
        entry["n"] += 1
        if nf and k in nf:
            entry["nonfinite"] += 1
            entry["last"], entry["last_step"], entry["last_t"] = nf[k], s, t
            continue
        if not number:
            continue
        entry["last"], entry["last_step"], entry["last_t"] = v, s, t
        low = entry["min"]
        if low is None or v < low:
            entry["min"], entry["min_step"] = v, s
        high = entry["max"]
        if high is None or v > high:
            entry["max"], entry["max_step"] = v, s


def fold_columns(d: dict[str, Any], columns: dict[str, Sequence[Any]],
                 xs: Sequence[int], ts: Sequence[Any]) -> dict[str, Any]:
    """Fold n rows given as columns (every row holds every key, with a plain int or
    float, no bool, no non-finite value; row i's `x` is xs[i], its `t` ts[i]): the same
    digest as folding those rows one by one (tests/test_digest.py), at C speed
    (min, max and index over a column). `steadyrun import` writes a million W&B rows so."""
    n = len(xs)
    if not n:
        return d
    d["rows"] += n
    keys, steps = d["keys"], d["steps"]
    t = ts[-1]
    for k, col in columns.items():
        sk = _AXES.get(k, k)
        if sk is k:
            sk = _axis(k)
        if sk is None:
            steps[k] = col[-1]
            continue
        s = columns.get(sk, xs)
        entry = keys.get(k)
        if entry is None:
            entry = keys[k] = _entry()
        entry["n"] += n
        entry["last"], entry["last_step"], entry["last_t"] = col[-1], s[-1], t
        low = min(col)  # the first of equal least values, as the row-wise `<` keeps
        if entry["min"] is None or low < entry["min"]:
            entry["min"], entry["min_step"] = low, s[col.index(low)]
        high = max(col)
        if entry["max"] is None or high > entry["max"]:
            entry["max"], entry["max_step"] = high, s[col.index(high)]
    return d


def extend(d: dict[str, Any], later: dict[str, Any]) -> dict[str, Any]:
    """Add to `d` the digest of records written after d's, by the same writer (a
    segment folded in pieces at once: importer/parallel.py): the same digest as
    folding all the records in order. Unlike `merge` (several writers, ordered by
    time), the later piece's last values always win."""
    for f in ("rows", "alerts"):
        d[f] += later[f]
    for kind, n in later["events"].items():
        d["events"][kind] = d["events"].get(kind, 0) + n
    d["steps"].update(later["steps"])
    for f in ("summary", "config"):
        d[f].update(later[f])
    for key, spec in later["metrics"].items():
        d["metrics"][key] = spec
    for f in ("open", "close"):
        if later[f] is not None:
            d[f] = later[f]
    keys = d["keys"]
    for key, e in later["keys"].items():
        o = keys.get(key)
        if o is None:
            keys[key] = dict(e)
            continue
        o["n"] += e["n"]
        o["nonfinite"] += e["nonfinite"]
        if e["last_step"] is not None or e["last"] is not None:  # set by a later row
            o["last"], o["last_step"], o["last_t"] = e["last"], e["last_step"], e["last_t"]
        if e["min"] is not None and (o["min"] is None or e["min"] < o["min"]):
            o["min"], o["min_step"] = e["min"], e["min_step"]
        if e["max"] is not None and (o["max"] is None or e["max"] > o["max"]):
            o["max"], o["max_step"] = e["max"], e["max_step"]
    return d


def fold(d: dict[str, Any], records: list[dict[str, Any]]) -> dict[str, Any]:
    """Add records (in the order written) to a digest; returns it."""
    for rec in records:
        k = rec.get("k")
        if k == "row":
            _fold_row(d, rec)
        elif k == "summary" and isinstance(rec.get("v"), dict):
            t = rec.get("t")
            for key, v in restore_values(rec).items():
                d["summary"][key] = [t, plain(v)]
        elif k == "config" and isinstance(rec.get("v"), dict):
            t = rec.get("t")
            for key, v in rec["v"].items():
                d["config"][key] = [t, v]
        elif k == "metric" and isinstance(rec.get("key"), str):
            d["metrics"][rec["key"]] = {f: rec[f] for f in ("step_metric", "goal", "summary",
                                                           "hidden") if f in rec}
        elif k == "event":
            kind = str(rec.get("type"))
            d["events"][kind] = d["events"].get(kind, 0) + 1
        elif k == "alert":
            d["alerts"] += 1
        elif k == "open":
            d["open"] = {f: rec.get(f) for f in ("role", "pid", "host", "t", "job_type")}
        elif k == "close":
            d["close"] = {f: rec.get(f) for f in ("state", "exit_code", "t")}
    return d


def goal_of(spec: dict[str, Any] | None) -> str | None:
    """"min" or "max" from a metric definition's goal (or its min/max summary)."""
    if not spec:
        return None
    return GOALS.get(spec.get("goal") or spec.get("summary") or "")


def goals_of(digests: Iterable[dict[str, Any]]) -> dict[str, str]:
    """key -> "min" / "max" over runs' metric definitions; the first run that defines a
    goal for a key decides (compare, leaderboard, baselines, check)."""
    out: dict[str, str] = {}
    for d in digests:
        for key, spec in (d.get("metrics") or {}).items():
            goal = goal_of(spec)
            if goal is not None:
                out.setdefault(key, goal)
    return out


def merge(digests: list[dict[str, Any]]) -> dict[str, Any]:
    """Several writers' digests as one run's: counts added, extremes of extremes, the
    latest last value, summary and config values by their time."""
    out = new()
    for d in digests:
        out["rows"] += d["rows"]
        out["alerts"] += d["alerts"]
        for kind, n in d["events"].items():
            out["events"][kind] = out["events"].get(kind, 0) + n
        for key, spec in d["metrics"].items():
            out["metrics"].setdefault(key, {}).update(spec)
        for field in ("summary", "config"):
            for key, tv in d[field].items():
                old = out[field].get(key)
                if old is None or (tv[0] or 0) >= (old[0] or 0):
                    out[field][key] = tv
        for sk, v in d["steps"].items():
            old = out["steps"].get(sk)
            out["steps"][sk] = v if old is None else max(old, v)
        for key, e in d["keys"].items():
            o = out["keys"].get(key)
            if o is None:
                out["keys"][key] = dict(e)
                continue
            o["n"] += e["n"]
            o["nonfinite"] += e["nonfinite"]
            if e["last_t"] is not None and (o["last_t"] is None or e["last_t"] >= o["last_t"]):
                o["last"], o["last_step"], o["last_t"] = e["last"], e["last_step"], e["last_t"]
            if e["min"] is not None and (o["min"] is None or e["min"] < o["min"]):
                o["min"], o["min_step"] = e["min"], e["min_step"]
            if e["max"] is not None and (o["max"] is None or e["max"] > o["max"]):
                o["max"], o["max_step"] = e["max"], e["max_step"]
    return out
