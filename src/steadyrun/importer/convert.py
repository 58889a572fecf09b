"""A W&B run converted: the rows split by x (steps.py), media and other values kept,
then the metric definitions, files, alerts, config, summary and the close record.

Streamed: each W&B row is written as it is read (scan.py), so memory stays flat
whatever the run's length. Only the summary ops (one per key), the metric definitions
and the keys seen are held.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store.layout import hostname
from ..store.values import Rejected, check_key
from .media import copy_files, media_record
from .scan import Scan, scan
from .source import Source, steadyrun_id
from .steps import StepRule, row_x
from .write import SegmentOut, clean_summary, new_run_dir, put_in_place

_W_SKIP = ("_step", "_timestamp", "_runtime")  # x, t, and t - start: nothing is lost


@dataclass
class Counts:
    wandb_rows: int = 0
    rows: int = 0
    images: int = 0
    tables: int = 0
    histograms: int = 0
    files: int = 0
    events: int = 0
    torn: int = 0
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


class _Rows:
    """The on_row callback: a W&B row -> steadyrun row, media and event records."""

    def __init__(self, out: SegmentOut, rdir: Path, counts: Counts, start: float) -> None:
        self.out = out
        self.rdir = rdir
        self.counts = counts
        self.rule: StepRule | None = None  # set once the metric definitions are known
        self.t = start
        self.start = start
        self.good_keys: set[str] = set()
        self.seen: dict[str, None] = {}

    def __call__(self, row: dict[str, Any], step: int) -> None:
        put = self.out.put
        counts = self.counts
        counts.wandb_rows += 1
        t = row.get("_timestamp")
        if type(t) is not float:
            rt = row.get("_runtime")
            t = float(t) if isinstance(t, int) else (
                self.start + rt if isinstance(rt, (int, float)) else self.t)
        self.t = t
        numbers: dict[str, Any] = {}
        others: list[tuple[str, Any]] | None = None
        good = self.good_keys
        for k, v in row.items():
            tv = type(v)
            if k not in good:
                if k in _W_SKIP:
                    continue
                if not self._good(k):
                    others = others or []
                    others.append((k, v))
                    continue
            if tv is float or tv is int or tv is bool:
                numbers[k] = v
            else:
                others = others or []
                others.append((k, v))
        rule = self.rule
        if numbers:
            for axis, vals in rule.split(numbers, step):  # type: ignore[union-attr]
                put({"k": "row", "t": t, "x": row_x(axis, step), "v": vals, "ws": step})
                counts.rows += 1
        if others:
            for k, v in others:
                self._other(k, v, step, t, numbers)

    def _good(self, key: str) -> bool:
        try:
            check_key(key)
        except Rejected:
            return False
        if len(self.good_keys) < 100_000:
            self.good_keys.add(key)
        self.seen[key] = None
        return True

    def _other(self, key: str, value: Any, step: int, t: float, numbers: dict[str, Any]
               ) -> None:
        """A value that is not a number: media, a nested dict (flattened with "." as
        W&B's charts name it), or anything else kept as an `imported_value` event."""
        counts = self.counts
        if isinstance(value, dict) and "_type" not in value and self._good_safe(key):
            flat = {f"{key}.{k}": v for k, v in value.items()}
            nums = {k: v for k, v in flat.items()
                    if type(v) in (int, float, bool) and self._good_safe(k)}
            if nums:
                for axis, vals in self.rule.split(nums, step):  # type: ignore[union-attr]
                    self.out.put({"k": "row", "t": t, "x": row_x(axis, step), "v": vals,
                                  "ws": step})
                    counts.rows += 1
            for k, v in flat.items():
                if k not in nums:
                    self._other(k, v, step, t, numbers)
            return
        axis_key = self.rule.axis_of(key) if self.rule is not None else None  # type: ignore[union-attr]
        axis = numbers.get(axis_key) if axis_key else None
        x = row_x(axis if isinstance(axis, (int, float)) else step, step)
        if isinstance(value, dict) and self._good_safe(key):
            rec = media_record(key, value, x, t, self.rdir)
            if rec is not None:
                self.out.put(rec)
                kind = rec["k"]
                if kind == "image":
                    counts.images += 1
                elif kind == "table":
                    counts.tables += 1
                else:
                    counts.histograms += 1
                return
        self.out.put({"k": "event", "t": t, "type": "imported_value", "key": key, "x": x,
                      "ws": step, "value": value})
        counts.events += 1

    def _good_safe(self, key: str) -> bool:
        return key in self.good_keys or self._good(key)


def convert(src: Source, runs: Path, rdir: Path, *, partial: bool, fingerprint: str,
            resumes: int) -> Counts:
    """Write the steadyrun run of `src` at `rdir` (through a temp folder)."""
    from .scan import first_run_fields

    started = time.perf_counter()
    counts = Counts()
    run_id = rdir.name
    first = first_run_fields(src.logs[0])
    start = first.get("start_time") or src.logs[0].stat().st_mtime
    tmp = new_run_dir(runs, run_id)
    try:
        counts.files = len(saved := copy_files(src.run_dirs, tmp))
        writer = f"import-{fingerprint[:8]}"
        out = SegmentOut(tmp, writer)
        out.put({"k": "open", "t": start, "writer": writer, "role": "owner", "pid": None,
                 "host": first.get("host") or None, "name": first.get("display_name") or None,
                 "job_type": first.get("job_type") or None, "argv": None,
                 "imported_from": src.wandb_id})
        rows = _Rows(out, tmp, counts, start)
        rows.rule = StepRule(first.get("metrics") or {})
        result = scan(src.logs, rows, verify_crc=True, rule_for=lambda m: _set_rule(rows, m))
        log = result.log
        counts.torn = log.torn
        if log.torn and not partial:
            raise TornLog(log.torn, log.problems[:1])
        end = rows.t
        _tail(out, log, rows, saved, start, end, partial)
        out.close()
        counts.seconds = time.perf_counter() - started
        manifest = _manifest(src, run_id, log, result, start, end, fingerprint, resumes,
                             counts)
        put_in_place(tmp, rdir, manifest)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts


class TornLog(ValueError):
    def __init__(self, n: int, problems: list[str]) -> None:
        where = f" (first: {problems[0]})" if problems else ""
        super().__init__(f"{n} record(s) of the W&B log cannot be read: the log is "
                         f"truncated or damaged{where}; --partial imports what can be read")
        self.n = n


def _set_rule(rows: _Rows, metrics: dict[str, dict[str, Any]]) -> None:
    rows.rule = StepRule(metrics)


def _tail(out: SegmentOut, log: Any, rows: _Rows, saved: list[tuple[str, str]],
          start: float, end: float, partial: bool) -> None:
    put = out.put
    rule = StepRule(log.metrics)
    for key in _metric_keys(log.metrics, rows.seen, rule):
        m = log.metrics.get(key) or next(
            (log.metrics[name] for name, _ in rule.globs if _match(key, name)), {})
        ops = set(m.get("summary") or ())
        goal = m.get("goal") or ("minimize" if "min" in ops and "max" not in ops else
                                 "maximize" if "max" in ops and "min" not in ops else None)
        rec: dict[str, Any] = {"k": "metric", "t": start, "key": key}
        if goal:
            rec["goal"] = goal
        if m.get("hidden"):
            rec["hidden"] = True
        if m.get("step_metric"):
            rec["wandb_step_metric"] = m["step_metric"]
        put(rec)
    for path, name in saved:
        put({"k": "file", "t": start, "path": path, "name": name})
    for a in log.alerts:
        put({"k": "alert", "t": end, "title": a["title"], "text": a["text"],
             "level": a.get("level") or "WARN"})
    put({"k": "config", "t": start, "v": log.config})
    summary, nf = clean_summary(log.summary)
    rec = {"k": "summary", "t": end, "v": summary}
    if nf:
        rec["nf"] = nf
    put(rec)
    if log.torn:
        put({"k": "event", "t": end, "type": "imported_torn", "count": log.torn})
    code = log.exit_code
    state = "crashed" if code is None else ("finished" if code == 0 else "failed")
    put({"k": "close", "t": end, "exit_code": 255 if code is None else code, "state": state})


def _match(key: str, pattern: str) -> bool:
    from fnmatch import fnmatchcase

    return fnmatchcase(key, pattern)


def _metric_keys(metrics: dict[str, dict[str, Any]], seen: dict[str, None],
                 rule: StepRule) -> list[str]:
    """Exact definitions, then the logged keys a glob defines (W&B expands them too)."""
    keys = [k for k, m in metrics.items() if not m.get("glob") and _valid(k)]
    for key in seen:
        if key not in metrics and any(_match(key, p) for p, _ in rule.globs):
            keys.append(key)
    return keys


def _valid(key: str) -> bool:
    try:
        check_key(key)
    except Rejected:
        return False
    return True


def _manifest(src: Source, run_id: str, log: Any, result: Scan, start: float, end: float,
              fingerprint: str, resumes: int, counts: Counts) -> dict[str, Any]:
    run = log.run
    logs = src.describe()
    code = log.exit_code
    return {
        "id": run_id, "format": 1,
        "project": run.get("project") or "steadyrun", "entity": run.get("entity") or None,
        "name": run.get("display_name") or run_id, "group": run.get("group") or None,
        "job_type": run.get("job_type") or None, "notes": run.get("notes") or None,
        "tags": list(run.get("tags") or []), "mode": "local",
        "state": "crashed" if code is None else ("finished" if code == 0 else "failed"),
        "exit_code": 255 if code is None else code,
        "created_at": start, "finished_at": end,
        "owner": {"pid": None, "host": run.get("host") or hostname(), "started_at": start},
        "resumes": resumes,
        "imported_from": {
            "wandb_run_id": src.wandb_id, "path": str(src.run_dirs[0]),
            "size": sum(int(x["size"]) for x in logs),
            "mtime": max(int(x["mtime_ns"]) for x in logs) / 1e9,
            "logs": logs, "fingerprint": fingerprint, "wandb_rows": counts.wandb_rows,
            "torn": counts.torn, "complete": code is not None,
            "importer_pid": os.getpid(), "imported_at": time.time(),
        },
    }


__all__ = ["Counts", "TornLog", "convert", "steadyrun_id"]
