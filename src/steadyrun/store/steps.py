"""The step rules of DESIGN.md section 3, in one place.

Every key belongs to a namespace (`a/b/name` -> `a/b`, `name` -> root) whose x-axis is
the step metric `a/b/step` (root: `step`). `stamp` writes each touched namespace's step
into the row as data, unless the user logged it, and reports a namespace whose step went
back. The per-key-set cache keeps this at one dict lookup per call on the hot path.
"""

from __future__ import annotations

from typing import Any

ROOT_STEP = "step"


def step_metric_of(key: str) -> str:
    ns, sep, name = key.rpartition("/")
    if not sep:
        return ROOT_STEP
    return key if name == "step" else f"{ns}/step"


def is_step_metric(key: str) -> bool:
    return key == ROOT_STEP or key.endswith("/step")


def namespace_of_step(step_key: str) -> str:
    return "" if step_key == ROOT_STEP else step_key[: -len("/step")]


class StepTracker:
    def __init__(self, last: dict[str, Any] | None = None) -> None:
        self.last: dict[str, Any] = dict(last or {})
        self._plan: dict[tuple[str, ...], tuple[str, ...]] = {}

    def _plan_for(self, keys: tuple[str, ...]) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for k in keys:
            seen[step_metric_of(k)] = None
        plan = tuple(seen)
        if len(self._plan) < 10_000:  # unbounded key sets must not grow memory
            self._plan[keys] = plan
        return plan

    def stamp(self, values: dict[str, Any], x: int) -> list[tuple[str, Any, Any]] | None:
        """Add step metrics to `values`; return (step key, previous, new) per regression."""
        keys = tuple(values)
        plan = self._plan.get(keys) or self._plan_for(keys)
        last = self.last
        regressions = None
        for sk in plan:
            v = values.get(sk)
            if v is None:
                values[sk] = v = x
            prev = last.get(sk)
            if prev is not None and v < prev:
                if regressions is None:
                    regressions = []
                regressions.append((sk, prev, v))
            last[sk] = v
        return regressions
