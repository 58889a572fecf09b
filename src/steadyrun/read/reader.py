"""The public reader: `steadyrun.open_run(id_or_path)` gives back everything a run holds.

History per namespace, summary, config, events and anomalies, merged over all segments
of the run (owner, children, ranks) in time order. Works on a run that is still being
written or whose writer was killed: torn lines are counted in `torn`, never fatal.
"""

from __future__ import annotations

import os
import time
from functools import cached_property
from operator import itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from ..store.layout import hostname, owner_heartbeats, read_sink_status, runs_dir
from ..store.liveness import STALE_AFTER, pid_alive
from ..store.manifest import manifest_of, resolve_run
from ..store.segment_reader import gc_paused, list_segments, read_from
from ..store.steps import is_step_metric, namespace_of_step, step_metric_of
from ..store.values import restore_values
from .frames import Column, History


class RunData:
    """A run's contents. Made cheaply by `open_run`: the segments are parsed on the first
    use of what needs their records (rows, summary, events...), and not at all by a
    `history(ns).to_pandas()` served from the columnar cache (read/frames.py)."""

    def __init__(self, id: str, dir: Path, manifest: dict[str, Any],
                 records: list[dict[str, Any]] | None = None, torn: int = 0,
                 segments: dict[str, dict[str, Any]] | None = None,
                 by_segment: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.id = id
        self.dir = dir
        self.manifest = manifest
        if records is not None:  # given (steadyrun runs' overview): nothing to load
            self.__dict__["_loaded"] = _Loaded(records, torn, segments or {}, by_segment or {})

    def __repr__(self) -> str:
        return f"RunData(id={self.id!r}, dir={str(self.dir)!r})"

    @cached_property
    def _loaded(self) -> _Loaded:
        return load_segments(self.dir)

    @property
    def records(self) -> list[dict[str, Any]]:
        """Every record of every segment, in time order."""
        return self._loaded.records

    @property
    def torn(self) -> int:
        """Lines that were not whole records (a killed writer's last line)."""
        return self._loaded.torn

    @property
    def segments(self) -> dict[str, dict[str, Any]]:
        """Per segment: its record and torn counts, who wrote it, how it ended."""
        return self._loaded.segments

    @property
    def by_segment(self) -> dict[str, list[dict[str, Any]]]:
        """Each segment's records in its own order (rows are not tagged with their
        segment: 1 M tags cost a loaded 1 M-row run ~5 % of its load time)."""
        return self._loaded.by_segment

    def _segment_paths(self) -> list[Path]:
        return list_segments(self.dir)

    # ------------------------------------------------------------------ history
    @cached_property
    def rows(self) -> list[dict[str, Any]]:
        """Every row, values restored (NaN and inf included), with `_x` its step."""
        out = []
        append = out.append
        with gc_paused():
            for rec in self.records:
                if rec["k"] == "row":
                    row = restore_values(rec) if "nf" in rec else rec["v"]
                    row["_x"] = rec["x"]
                    append(row)
        return out

    @cached_property
    def namespaces(self) -> list[str]:
        seen: dict[str, None] = {}
        done: set[tuple[str, ...]] = set()
        for row in self.rows:
            keys = tuple(row)
            if keys in done:
                continue
            done.add(keys)
            for k in keys:
                if k != "_x":
                    seen[namespace_of_step(step_metric_of(k))] = None
        return list(seen)

    def history(self, namespace: str | None = None) -> History:
        """Rows of one namespace ("" is the root), each with only that namespace's keys.

        With no namespace, every row whole. A list when used as one; `.to_pandas()`,
        `.to_polars()`, `.to_arrow()` read only this namespace's columns (read/frames.py).
        """
        return History(namespace, lambda: self._history_list(namespace), self._segment_paths)

    def _history_list(self, namespace: str | None) -> list[dict[str, Any]]:
        out = []
        append = out.append
        if namespace is None:
            with gc_paused():
                for r in self.rows:
                    part = r.copy()
                    del part["_x"]
                    append(part)
            return out
        ns = namespace.rstrip("/")
        step_key = f"{ns}/step" if ns else "step"
        plans: dict[tuple[str, ...], tuple[str, ...]] = {}  # key set -> its keys in `ns`
        with gc_paused():
            for row in self.rows:
                keys = tuple(row)
                plan = plans.get(keys)
                if plan is None:
                    plan = plans[keys] = tuple(k for k in keys if k != "_x"
                                               and step_metric_of(k) == step_key)
                if plan:
                    append({k: row[k] for k in plan})
        return out

    def column(self, key: str) -> Column:
        """(step, value) pairs of one key, the step read from its namespace's step metric;
        `.to_pandas()` etc. give the two as columns named by their keys."""
        sk = step_metric_of(key)
        return Column(key, lambda: [(r.get(sk), r[key]) for r in self.rows if key in r],
                      self._segment_paths)

    # ------------------------------------------------------------------ other kinds
    def _of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["k"] == kind]

    @cached_property
    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for rec in self._of("summary"):
            out.update(restore_values(rec))
        return out

    @cached_property
    def config(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for rec in self._of("config"):
            out.update(rec["v"])
        return out

    @property
    def metadata(self) -> dict[str, Any]:
        """What `init(metadata=True)` recorded: git, host, command line, seeds, versions."""
        return self.config.get("steadyrun") or {}

    @property
    def events(self) -> list[dict[str, Any]]:
        return self._of("event")

    @property
    def tables(self) -> list[dict[str, Any]]:
        return self._of("table")

    @property
    def histograms(self) -> list[dict[str, Any]]:
        """Histogram records: `x` (the step) and `v`, key -> counts, edges, nonfinite."""
        return self._of("histogram")

    @property
    def images(self) -> list[dict[str, Any]]:
        return self._of("image")

    @property
    def files(self) -> list[dict[str, Any]]:
        return self._of("file")

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        return self._of("artifact")

    @property
    def alerts(self) -> list[dict[str, Any]]:
        return self._of("alert")

    @property
    def metrics(self) -> dict[str, dict[str, Any]]:
        return {r["key"]: r for r in self._of("metric")}

    @cached_property
    def anomalies(self) -> list[dict[str, Any]]:
        """Non-finite values, step regressions, rejected input and values replaced in a
        pending row: what deserves a look."""
        out: list[dict[str, Any]] = []
        for rec in self.records:
            if rec["k"] == "row" and rec.get("nf"):
                for k, tag in rec["nf"].items():
                    out.append({"type": "nonfinite", "key": k, "value": tag, "x": rec["x"]})
            elif rec["k"] == "event" and rec["type"] in ("step_regression", "rejected",
                                                         "overwritten"):
                out.append(rec)
        if self.torn:
            out.append({"type": "torn", "count": self.torn})
        return out

    # ------------------------------------------------------------------ state
    @property
    def last_steps(self) -> dict[str, Any]:
        last: dict[str, Any] = {}
        plans: dict[tuple[str, ...], tuple[str, ...]] = {}  # key set -> its step metrics
        for row in self.rows:
            keys = tuple(row)
            plan = plans.get(keys)
            if plan is None:
                plan = plans[keys] = tuple(k for k in keys if k != "_x" and is_step_metric(k))
            for k in plan:
                v = row[k]
                if v is not None:
                    last[k] = v
        return last

    @property
    def next_global_step(self) -> int:
        """Where the owner's auto step resumes: run.json's record, else its last row + 1."""
        saved = self.manifest.get("global_step")
        if isinstance(saved, int):
            return saved
        xs = [r["x"] for stem, recs in self.by_segment.items()
              if self.segments[stem].get("role") == "owner" for r in recs if r["k"] == "row"]
        return max(xs) + 1 if xs else 0

    @property
    def state(self) -> str:
        """finished / failed from run.json; running unless its owner is gone: crashed."""
        state = self.manifest.get("state", "unknown")
        if state == "unknown":
            return self._state_from_segments()
        if state != "running":
            return state
        owner = self.manifest.get("owner") or {}
        if owner.get("host") == hostname() and isinstance(owner.get("pid"), int):
            # Same host: the pid decides. A live process whose heartbeat is late (a long
            # C call holding the GIL) is still running.
            return "running" if pid_alive(owner["pid"]) else "crashed"
        beats = [p.stat().st_mtime for p in owner_heartbeats(self.dir)]
        if beats and time.time() - max(beats) > STALE_AFTER:
            return "crashed"
        return "running"

    def _state_from_segments(self) -> str:
        """run.json unreadable: the owner segments' open and close records tell the state."""
        owners = [info for info in self.segments.values() if info.get("role") == "owner"]
        if not owners:
            return "unknown"
        last = max(owners, key=lambda info: info.get("opened_at") or 0.0)
        if last.get("close"):
            return str(last["close"].get("state") or "finished")
        pid, host = last.get("pid"), last.get("host")
        if host == hostname() and isinstance(pid, int):
            return "running" if pid_alive(pid) else "crashed"
        return "unknown"

    @cached_property
    def wandb(self) -> dict[str, Any]:
        """The W&B sink's status (mode, run_dirs, state), written by the sidecar."""
        return read_sink_status(self.dir, "wandb")

    @property
    def last_step(self) -> Any:
        """The step of the owner's latest row; a run whose owner logs no rows (a pipeline
        of stages that each restart at 0) shows the furthest step any writer reached."""
        owner = [rec for stem, recs in self.by_segment.items()
                 if self.segments[stem].get("role") == "owner"
                 for rec in recs if rec["k"] == "row"]
        if owner:
            return max(owner, key=lambda rec: rec.get("t", 0.0))["x"]
        xs = [r["_x"] for r in self.rows if isinstance(r["_x"], int)]
        return max(xs) if xs else None


def segment_info(first: dict[str, Any], last: dict[str, Any] | None) -> dict[str, Any]:
    """Who wrote a segment (its `open` record) and how it ended (a last `close` record)."""
    closed = last is not None and last.get("k") == "close"
    return {"role": first.get("role"), "pid": first.get("pid"), "host": first.get("host"),
            "opened_at": first.get("t"), "closed": closed,
            "close": {k: last.get(k) for k in ("state", "exit_code")}
            if closed and last is not None else None}


class _Loaded(NamedTuple):
    records: list[dict[str, Any]]
    torn: int
    segments: dict[str, dict[str, Any]]
    by_segment: dict[str, list[dict[str, Any]]]


def load_segments(rdir: Path) -> _Loaded:
    """Every segment parsed, records merged in time order."""
    records: list[dict[str, Any]] = []
    torn = 0
    segments: dict[str, dict[str, Any]] = {}
    by_segment: dict[str, list[dict[str, Any]]] = {}
    for path in list_segments(rdir):
        stem = path.stem
        chunk = read_from(path)
        bad = chunk.bad_lines + (1 if chunk.tail_bytes else 0)
        torn += bad
        recs = chunk.records
        segments[stem] = {"records": len(recs), "torn": bad,
                          **segment_info(recs[0] if recs else {}, recs[-1] if recs else None)}
        for rec in chunk.records:
            if rec.get("k") != "row":  # events, opens, closes: say which writer wrote them
                rec["_seg"] = stem
        by_segment[stem] = chunk.records
        records.extend(chunk.records)
    # Sorted even for one segment: a deferred tensor's row is written when it settles,
    # after rows logged later, and keeps the time of its call.
    try:  # every record has a time; a hand-made line might not
        records.sort(key=itemgetter("t"))
    except KeyError:
        records.sort(key=lambda r: r.get("t", 0.0))
    return _Loaded(records, torn, segments, by_segment)


def open_run(ref: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> RunData:
    """Find a run by id, id prefix or folder path; its segments are read on first use."""
    rdir = resolve_run(ref, root)
    manifest = manifest_of(rdir)
    return RunData(id=manifest.get("id", rdir.name), dir=rdir, manifest=manifest)


def list_runs(root: str | os.PathLike[str] | None = None) -> list[Path]:
    runs = runs_dir(root)
    if not runs.is_dir():
        return []
    return sorted((d for d in runs.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
