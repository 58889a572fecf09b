"""The import's row writer: a W&B row -> steadyrun row, media and event records
(`Rows`, the scan's `on_row`), and what it counted. importer/batch.py writes most rows
past it a batch at a time; importer/parallel.py runs one in each process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store.values import Rejected, check_key
from .media import media_record
from .steps import StepRule, row_x
from .write import SegmentOut

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

    def add(self, other: Counts) -> None:
        for f in ("wandb_rows", "rows", "images", "tables", "histograms", "files", "events",
                  "torn"):
            setattr(self, f, getattr(self, f) + getattr(other, f))


class Rows:
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
        self.first_metrics: dict[str, dict[str, Any]] = {}  # the rule's start (parallel.py)

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

    good = _good_safe

    def join(self, counts: Counts, t: float, seen: list[str]) -> None:
        """What another process wrote for the rows after these (importer/parallel.py)."""
        if counts.wandb_rows:
            self.t = t
        self.counts.add(counts)
        for key in seen:
            self.seen.setdefault(key, None)

    def took(self, n: int, t: float) -> None:
        """n rows were written by importer/batch.py; `t` the last one's time."""
        self.counts.wandb_rows += n
        self.counts.rows += n
        self.t = t


def set_rule(rows: Rows, metrics: dict[str, dict[str, Any]]) -> None:
    rows.rule = StepRule(metrics)
