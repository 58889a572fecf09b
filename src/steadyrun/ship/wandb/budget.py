"""An opt-in row budget for W&B: at most N history rows per minute of each kind of row.

Why: W&B's guidance for a run at scale is about 1,000 logged rows per minute; a loop that
logs every step at 1,000 steps/s sends 60,000. Logging less in the training script loses
resolution for good. The budget thins only what W&B receives: the local log keeps every
row, and `steadyrun show` / `open_run` read them all.

The rule is a pure function of the rows in order, each with the time it was logged (no
clock is read here: the shipper may judge a row long after it was logged):
- rows are grouped by their kind (the set of step metrics they carry: `train/step`,
  `val/step`, ...), and time is cut in windows of 60 / N seconds of logging time;
- the first row of a kind in each window is shipped, the others are not;
- a row that brings a key W&B has not seen yet is always shipped (no chart is empty);
- a row that improves the best value of a metric with a goal or a min/max summary is
  always shipped (W&B's best is the true best);
- at the end, a key whose last value was not shipped gets it in the W&B summary, so the
  summary shows the true last value, as without a budget.

A sidecar killed mid-run loses what its budget held back. The next pass (the restarted
sidecar, a later `sync`) is first handed every row the earlier one judged, to judge again
without shipping (RowBudget.replay, Shipper._replay), so it holds back, counts and
summarises the rest as one uninterrupted pass would (tests/test_wandb_budget.py).

Off by default: `init(wandb_rows_per_min=N)` or `STEADYRUN_WANDB_ROWS_PER_MIN=N` turns it
on; it is kept in run.json so the sidecar and any later `steadyrun sync` agree.
"""

from __future__ import annotations

import math
import mmap
import os
from pathlib import Path
from typing import Any

import orjson

from ...store.records import GOALS
from ...store.segment_reader import list_segments
from ...store.steps import is_step_metric
from ...store.values import restore_values

METRIC_LINE = b'\n{"k":"metric",'


class RowBudget:
    def __init__(self, rows_per_min: float) -> None:
        if not rows_per_min > 0:
            raise ValueError(f"wandb_rows_per_min must be > 0, got {rows_per_min!r}")
        self.window = 60.0 / rows_per_min
        self.sampled_out = 0
        self.last_unshipped: dict[str, Any] = {}
        self._rules: dict[str, frozenset[str]] = {}  # key or `prefix*` -> summary rules
        self._rule_of: dict[str, frozenset[str] | None] = {}  # per key, resolved
        self._window_of: dict[tuple[str, ...], int] = {}
        self._seen: set[str] = set()
        self._best: dict[tuple[str, str], float] = {}

    def watch_best(self, key: str, goal: str | None, summary: str | None) -> None:
        """A metric definition (a key or a `prefix*` glob): rows that set a new min or max
        it summarises are always shipped, and W&B's own summary of it is left alone."""
        rules = {part.strip() for part in (summary or "").split(",") if part.strip()}
        if goal in GOALS:
            rules.add(GOALS[goal])
        if rules:
            self._rules[key] = frozenset(rules)
            self._rule_of.clear()

    def _rule(self, key: str) -> frozenset[str] | None:
        if key not in self._rule_of:
            rule = self._rules.get(key)
            if rule is None:  # the longest matching glob, as W&B picks it
                globs = [g for g in self._rules if g.endswith("*") and key.startswith(g[:-1])]
                rule = self._rules[max(globs, key=len)] if globs else None
            self._rule_of[key] = rule
        return self._rule_of[key]

    def keep(self, t: float, values: dict[str, Any]) -> bool:
        """Whether this row goes to W&B; bookkeeping for the summary either way."""
        kind = tuple(sorted(k for k in values if is_step_metric(k)))
        window = int(t // self.window)
        improved = False
        if self._rules:
            for key, value in values.items():
                rule = self._rule(key)
                if rule:
                    improved |= self._improves(key, value, rule)
        keep = (improved or self._window_of.get(kind) != window
                or not self._seen.issuperset(values))
        if keep:
            self._window_of[kind] = window
            self._seen.update(values)
            for key in values:
                self.last_unshipped.pop(key, None)
        else:
            self.sampled_out += 1
            self.last_unshipped.update(values)
        return keep

    def replay(self, rec: dict[str, Any]) -> None:
        """A record an earlier pass (a killed sidecar) handled, given again by the shipper
        of the next pass and shipped by no one: judged as that pass's budget judged it,
        so this one holds back, counts and summarises the rest as that one would have."""
        kind = rec["k"]
        if kind == "row":
            self.keep(rec.get("t", 0.0), restore_values(rec))
        elif kind == "summary":
            self.summary_set(restore_values(rec))
        elif kind == "metric":
            self.watch_best(rec["key"], rec.get("goal"), rec.get("summary"))

    def summary_set(self, keys: Any) -> None:
        """An explicit summary update is newer than any unshipped row value of its keys."""
        for key in keys:
            self.last_unshipped.pop(key, None)

    def final_summary(self) -> dict[str, Any]:
        """True last values of keys whose last row was not shipped; keys with a summary
        rule (min, max, mean...) are left to W&B's own summary of them."""
        return {k: v for k, v in self.last_unshipped.items() if not self._rule(k)}

    def _improves(self, key: str, value: Any, rule: frozenset[str]) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            return False
        better = False
        for side in ("min", "max"):
            if side not in rule:
                continue
            best = self._best.get((key, side))
            if best is None or (value < best if side == "min" else value > best):
                self._best[(key, side)] = value
                better = True
        return better


def defined_metrics(rdir: Path) -> list[dict[str, Any]]:
    """Every metric definition of the run, found without parsing its rows: a sidecar that
    starts again mid-run must know which keys have a best before it judges any row, and
    a new W&B piece of the run must be told the definitions an earlier piece was told.

    Each segment is searched through a read-only map, so a segment of any size costs
    page cache, not memory.
    """
    out: list[dict[str, Any]] = []
    first = METRIC_LINE[1:]
    for path in list_segments(rdir):
        try:
            with path.open("rb") as fh:
                if os.fstat(fh.fileno()).st_size == 0:
                    continue
                data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            continue
        with data:
            # `start`: where a metric line begins (the file's first line has no '\n' before
            # it), -1 when there is none further on.
            start = 0 if data[:len(first)] == first else data.find(METRIC_LINE) + 1 or -1
            while start >= 0:
                end = data.find(b"\n", start)
                if end < 0:
                    break  # a torn last line
                try:
                    rec = orjson.loads(data[start:end])
                except orjson.JSONDecodeError:
                    rec = None
                if isinstance(rec, dict):
                    out.append(rec)
                start = data.find(METRIC_LINE, end) + 1 or -1
    return out
