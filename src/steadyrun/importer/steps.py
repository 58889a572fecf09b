"""Which x each value of an imported W&B row gets (DESIGN.md section 3, imported rows).

W&B gives every history row one `_step`, and `define_metric(key, step_metric=S)` tells
its charts to draw `key` over `S` instead. steadyrun draws every key over its
namespace's step metric (`a/b/c` over `a/b/step`), written as data in each row. So an
imported row is split by x:

- a key that is itself some metric's step metric (`epoch` in
  `define_metric("val/*", step_metric="epoch")`) has its own value as x;
- a key whose definition (its exact name, else the first glob that matches it, in
  definition order) names a step metric present in the row, with a number, has that
  number as x;
- any other key has the row's `_step`.

Keys of one W&B row with different x become separate steadyrun rows (same time `t`),
each stamped with its namespaces' step metrics = that x (unless the W&B row holds that
step key itself, which is then data like any key). Nothing is dropped: a step metric
is a key like the others. A row's `x` field is that x when it is an integer, else the
row's `_step` (steadyrun's x is an int; the namespace step keeps the float).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from ..store.steps import step_metric_of

_INF = float("inf")


class StepRule:
    """The W&B run's metric definitions, turned into one lookup per key."""

    def __init__(self, metrics: dict[str, dict[str, Any]]) -> None:
        self.exact: dict[str, str | None] = {}
        self.globs: list[tuple[str, str | None]] = []
        self.step_metrics: set[str] = set()
        for name, m in metrics.items():
            sm = m.get("step_metric") or None
            if sm:
                self.step_metrics.add(sm)
            if m.get("glob"):
                self.globs.append((name, sm))
            else:
                self.exact[name] = sm
        self._axis: dict[str, str | None] = {}  # key -> step metric to read, "" = itself
        self._stamp: dict[tuple[str, ...], tuple[str, ...]] = {}

    def axis_of(self, key: str) -> str | None:
        """"" when the key is its own axis, a step metric's name, or None (`_step`)."""
        got = self._axis.get(key, 0)
        if got != 0:
            return got  # type: ignore[return-value]
        if key in self.step_metrics:
            axis: str | None = ""
        elif key in self.exact:
            axis = self.exact[key]
        else:
            axis = next((sm for pattern, sm in self.globs if fnmatchcase(key, pattern)), None)
        if len(self._axis) < 100_000:  # unbounded key sets must not grow memory
            self._axis[key] = axis
        return axis

    def split(self, values: dict[str, Any], step: int) -> list[tuple[Any, dict[str, Any]]]:
        """`values` (a W&B row's numbers, `_` keys removed) as (axis value, values) pairs,
        one per distinct x, in first-key order; each with its namespace steps stamped."""
        groups: dict[Any, dict[str, Any]] | None = None
        axis_of = self._axis.get
        for k, v in values.items():
            a = axis_of(k, 0)
            if a == 0:
                a = self.axis_of(k)
            if a is None:
                continue
            x = v if a == "" else values.get(a)
            if type(x) is bool or not isinstance(x, (int, float)) or x != x \
                    or x in (_INF, -_INF):
                continue  # no usable axis value in this row: `_step`
            if x == step and type(x) is int:
                continue
            if groups is None:
                groups = {}
            groups.setdefault(x, {})[k] = v
        if groups is None:  # the usual case: every key on `_step`
            return [(step, self._stamped(values, step))]
        rest = {k: v for k, v in values.items()
                if not any(k in g for g in groups.values())}
        out = [(step, rest)] if rest else []
        out.extend(groups.items())
        out.sort(key=lambda item: _first_index(values, item[1]))
        return [(x, self._stamped(vals, x)) for x, vals in out]

    def _stamped(self, values: dict[str, Any], x: Any) -> dict[str, Any]:
        keys = tuple(values)
        plan = self._stamp.get(keys)
        if plan is None:
            seen: dict[str, None] = {}
            for k in keys:
                sk = step_metric_of(k)
                if sk not in values:
                    seen[sk] = None
            plan = tuple(seen)
            if len(self._stamp) < 10_000:
                self._stamp[keys] = plan
        for sk in plan:
            values[sk] = x
        return values


def _first_index(values: dict[str, Any], group: dict[str, Any]) -> int:
    first = next(iter(group), None)
    for i, k in enumerate(values):
        if k == first:
            return i
    return len(values)


def row_x(axis: Any, step: int) -> int:
    """The record's `x`: the axis value when it is an integer, else the W&B `_step`."""
    if type(axis) is int:
        return axis
    if isinstance(axis, float) and axis.is_integer():
        return int(axis)
    return step
