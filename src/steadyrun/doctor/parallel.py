"""A big W&B log read by several processes for the doctor, each a range of its
blocks (ship/wandb/txlog/ranges.py), with the result of one pass.

What a range's process hands back: its rows' shapes (counts, first and last row and
`_step`), the keys' kinds, the step-like keys' tracks, and the records other than rows
(run, config, metric definitions, console output, ...), which are replayed here in
order: console lines may run across ranges, and drops are numbered by line. A process
starts from the step metrics the log's first records define; a range whose process
guessed them wrong (a definition after rows) and all after it are read here instead.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..ship.wandb.txlog.ranges import read_in_ranges
from .wandb_records import StepTrack


def stream_parallel(sc: Any, path: Path, procs: int, kit: dict[str, Any]) -> None:
    """Read `path` into the scanner `sc` (wandb_scan._Scanner) with `procs` processes.
    `kit`: wandb_scan's `stream`, `scanner` and `shape` (passed in, so that this module
    does not import the one that calls it) and its `skip_tags`."""
    stream = kit["stream"]
    read_in_ranges(
        path, procs, kit["skip_tags"],
        job=lambda i, first, stop, prefix: {"target": sc.out.target, "path": path,
                                            "first": first, "stop": stop,
                                            "prefix": prefix, "kit": kit},
        worker=read_part, state=lambda: _state(sc.out),
        feed=lambda first, stop: stream(sc, path, first_block=first, stop_block=stop),
        join=lambda part: _join(sc, part, kit["shape"]))


def read_part(job: dict[str, Any]) -> dict[str, Any]:
    """A worker: the records that start in blocks [first, stop)."""
    kit = job["kit"]
    sc = kit["scanner"](job["target"])
    for payload in job["prefix"]:
        rec = sc.pb.Record()
        rec.ParseFromString(payload)
        sc.record(rec)
    state = _state(sc.out)
    controls: list[bytes] = []
    kit["stream"](sc, job["path"], first_block=job["first"], stop_block=job["stop"],
            controls=controls)
    sc.resolve_pending()
    out = sc.out
    last_time = None
    if sc.last is not None and sc.last[0].time_i >= 0:
        last_time = sc.last_time()
    return {"state": state, "controls": controls, "rows": out.rows,
            "shapes": {k: (s.count, s.first_row, s.last_row, s.first_raw, s.last_raw)
                       for k, s in out.shapes.items() if s.count},
            "kinds": out.kinds, "steps": {k: (t.first, t.changed) for k, t in out.steps.items()},
            "last_time": last_time, "stats": out.stats}


def _state(out: Any) -> list[str]:
    """What decides which keys a row's values are followed for, besides their names:
    the step metrics the metric definitions name."""
    return sorted({m["step_metric"] for m in out.metrics.values() if m.get("step_metric")})


def _join(sc: Any, part: dict[str, Any], Shape: type) -> None:  # noqa: N803 - a class
    out = sc.out
    for payload in part["controls"]:
        rec = sc.pb.Record()
        rec.ParseFromString(payload)
        sc.record(rec)
    offset = out.rows
    for key, (count, first_row, last_row, first_raw, last_raw) in part["shapes"].items():
        shape = out.shapes.get(key)
        if shape is None:
            shape = out.shapes[key] = Shape()
        if not shape.count:
            shape.first_row, shape.first_raw = offset + first_row, first_raw
        shape.count += count
        shape.last_row, shape.last_raw, shape.pending = offset + last_row, last_raw, None
    for key, kind in part["kinds"].items():
        out.kinds.setdefault(key, kind)
    for key, (first, changed) in part["steps"].items():
        track = out.steps.setdefault(key, StepTrack())
        if track.first is None:
            track.first, track.changed = first, changed
        else:
            track.changed = track.changed or changed or (
                first is not None and first != track.first)
    out.rows += part["rows"]
    if part["rows"]:
        sc.last = None
        out.last_time = part["last_time"]
    out.stats.absorb(part["stats"])
