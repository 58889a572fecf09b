"""Pure builders for the records of a segment: one JSON object per line.

Every record has `k` (its kind) and `t` (wall time). The reader and the sinks switch
on `k`; nothing else in a record is positional, so new fields never break old readers.

Kinds: open, row, summary, config, metric, table, histogram, image, file, artifact,
alert, event, close. Rows carry `x` (the row's step) and `v` (values, step metrics included); a
non-finite float is written as null in `v` and named in `nf`, since JSON has no NaN.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

_dumps = orjson.dumps
_NL = b"\n"


def encode(record: dict[str, Any]) -> bytes:
    return _dumps(record) + _NL


def opened(writer: str, role: str, pid: int, host: str, **extra: Any) -> dict[str, Any]:
    return {"k": "open", "t": time.time(), "writer": writer, "role": role, "pid": pid,
            "host": host, **extra}


def row(x: int, t: float, values: dict[str, Any],
        nonfinite: dict[str, str] | None = None) -> dict[str, Any]:
    """The one shape of a row: the training thread's slow path and the deferred tensor
    rows build it here; `Run.log`'s fast path writes the same keys in the same order as
    bytes (one orjson call, the step metrics spliced in, log/run.py). `t` is the time of
    the `log` call, which a deferred row keeps though it is written later."""
    rec: dict[str, Any] = {"k": "row", "t": t, "x": x, "v": values}
    if nonfinite:
        rec["nf"] = nonfinite
    return rec


def summary(values: dict[str, Any], nonfinite: dict[str, str] | None = None) -> dict[str, Any]:
    rec = {"k": "summary", "t": time.time(), "v": values}
    if nonfinite:
        rec["nf"] = nonfinite
    return rec


def config(values: dict[str, Any]) -> dict[str, Any]:
    return {"k": "config", "t": time.time(), "v": values}


# The kinds that are a point on a step axis (they carry `x`): each is one history row in
# a sink that keeps history, numbered in order (W&B's `_step`).
STEPPED_KINDS = frozenset(("row", "table", "image", "histogram"))

# A metric's goal or min/max summary as the side of its best: one table for the Run's
# check, the W&B sink's summary and the row budget's protected bests.
GOALS = {"minimize": "min", "maximize": "max", "min": "min", "max": "max"}


def metric(key: str, step_metric: str | None, goal: str | None, summary: str | None,
           hidden: bool) -> dict[str, Any]:
    rec: dict[str, Any] = {"k": "metric", "t": time.time(), "key": key}
    if step_metric:
        rec["step_metric"] = step_metric
    if goal:
        rec["goal"] = goal
    if summary:
        rec["summary"] = summary
    if hidden:
        rec["hidden"] = True
    return rec


def table(key: str, columns: list[str], rows: list[list[Any]], x: int) -> dict[str, Any]:
    return {"k": "table", "t": time.time(), "key": key, "columns": columns, "rows": rows, "x": x}


def histogram(values: dict[str, dict[str, Any]], x: int) -> dict[str, Any]:
    """Histograms of one or more keys at one point of the axis: one W&B history row."""
    return {"k": "histogram", "t": time.time(), "x": x, "v": values}


def image(key: str, path: str, caption: str | None, x: int) -> dict[str, Any]:
    return {"k": "image", "t": time.time(), "key": key, "path": path, "caption": caption, "x": x}


def file(path: str, name: str) -> dict[str, Any]:
    return {"k": "file", "t": time.time(), "path": path, "name": name}


def artifact(name: str, type_: str, path: str, size: int, aliases: list[str], x: int,
             upload: bool, files: list[str]) -> dict[str, Any]:
    return {"k": "artifact", "t": time.time(), "name": name, "type": type_, "path": path,
            "size": size, "aliases": aliases, "x": x, "upload": upload, "files": files}


def alert(title: str, text: str, level: str) -> dict[str, Any]:
    return {"k": "alert", "t": time.time(), "title": title, "text": text, "level": level}


def event(type_: str, **fields: Any) -> dict[str, Any]:
    return {"k": "event", "t": time.time(), "type": type_, **fields}


def closed(exit_code: int, state: str) -> dict[str, Any]:
    return {"k": "close", "t": time.time(), "exit_code": exit_code, "state": state}
