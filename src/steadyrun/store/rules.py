"""Regression rules and noise bands: is a metric worse than its baseline, beyond noise?

Pure code, shared by the training side (log/regression.py: the live check), the
readers (read/check.py: `steadyrun check`) and `init`'s argument checks, so a rule
means the same everywhere (DESIGN.md, "Baselines and regressions").

- A **tolerance** is how much worse than the baseline a value may be, in the metric's
  bad direction: relative (`-1%`: 1 % of the baseline's magnitude) or absolute
  (`+0.02`). The sign, when given, is the bad direction: `-` for a metric to maximize,
  `+` for one to minimize.
- A **rule** is a key with a direction and a tolerance: `eval/acc>=-0.5%` (eval/acc
  must stay at or above the baseline minus 0.5 %), `eval/loss<=+2%`; `eval/acc=-1%`
  takes the direction from the sign, and a bare `eval/acc` the default tolerance.
  A metric with a goal (`define_metric(goal=...)`, or a min/max summary) and no rule
  gets DEFAULT_TOLERANCE.
- The **baseline** is one or several runs (seeds): their mean, std (sample, n-1) and
  n. A value is a regression only when it is worse than the tolerance allows AND
  outside the noise band, mean - k*std for a metric to maximize (mean + k*std to
  minimize). With fewer than MIN_N baseline values the std is not trusted: the band is
  not used and the tolerance alone decides.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .records import GOALS
from .values import plain

DEFAULT_TOLERANCE = "1%"  # relative, for goal metrics without a rule
DEFAULT_K = 2.0  # noise band: mean -/+ k * std
MIN_N = 3  # baseline values needed before their std (and so the band) is trusted
MAX_CURVE_POINTS = 4096  # a baseline curve kept for the live check is thinned to this


class RuleError(ValueError):
    """A tolerance, rule or baseline that cannot be used; the message says what to write."""


class BaselineError(RuleError):
    """A baseline that cannot be found or read: a run that does not exist (any more), a
    metric one side lacks, no metric to judge. The message names what is missing."""


# ---------------------------------------------------------------------- tolerances
_TOL = re.compile(r"^\s*([+-]?)\s*((?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)\s*(%?)\s*$")


@dataclass(frozen=True)
class Tolerance:
    amount: float  # >= 0
    relative: bool  # a fraction of the baseline's magnitude (text in %)
    sign: int  # -1, +1: the bad direction as written; 0: not said

    def margin(self, base: float) -> float:
        """How far past `base` a value may go, in the bad direction."""
        return self.amount * abs(base) if self.relative else self.amount

    def text(self, goal: str | None = None) -> str:
        """'-1%' / '+0.02': signed by the goal's bad direction when it is known."""
        sign = {"max": "-", "min": "+"}.get(goal or "", {-1: "-", 1: "+"}.get(self.sign, ""))
        number = self.amount * 100 if self.relative else self.amount
        return f"{sign}{number:g}{'%' if self.relative else ''}"


def parse_tolerance(value: Any) -> Tolerance:
    """'-1%', '+0.02', '0.5 %', '2%', or a number (absolute; its sign the bad direction)."""
    if isinstance(value, bool):
        raise RuleError(f"a tolerance is a text like '-1%' or '+0.02', or a number; "
                        f"got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise RuleError(f"a tolerance must be finite, got {value!r}")
        return Tolerance(abs(float(value)), False, (value > 0) - (value < 0))
    if not isinstance(value, str):
        raise RuleError(f"a tolerance is a text like '-1%' or '+0.02', or a number; got "
                        f"{type(value).__name__}")
    m = _TOL.match(value)
    if m is None:
        raise RuleError(f"cannot read the tolerance {value!r}: write a relative one "
                        f"('-1%', '+2%') or an absolute one ('-0.01', '+0.02'); the sign is "
                        f"the metric's bad direction")
    sign, number, pct = m.groups()
    amount = float(number)
    if not math.isfinite(amount):
        raise RuleError(f"the tolerance {value!r} is not a finite number")
    return Tolerance(amount / 100 if pct else amount, bool(pct),
                     {"-": -1, "+": 1}.get(sign, 0))


# ---------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Rule:
    key: str
    goal: str | None  # "max" / "min"; None: the metric's goal decides (with_goal)
    tolerance: Tolerance
    default: bool = False  # made from DEFAULT_TOLERANCE, not written by the user

    @property
    def text(self) -> str:
        """The rule in the command line's grammar: 'eval/acc>=-0.5%'."""
        op = {"max": ">=", "min": "<="}.get(self.goal or "", "=")
        return f"{self.key}{op}{self.tolerance.text(self.goal)}"

    def with_goal(self, goal: str | None) -> Rule:
        """The rule with its direction settled by the metric's goal ('min'/'max', or
        'minimize'/'maximize'); a rule that says its own direction keeps it."""
        goal = GOALS.get(goal or "")
        if self.goal is not None:
            if goal is not None and goal != self.goal:
                way, want = ("maximize", "-") if goal == "max" else ("minimize", "+")
                raise RuleError(f"{self.key}: the rule {self.text!r} points the wrong way: "
                                f"the metric's goal is to {way}, so its bad direction is "
                                f"{want} (write {Rule(self.key, goal, self.tolerance).text!r})")
            return self
        if goal is None:
            raise RuleError(f"{self.key}: cannot tell whether it should go up or down: give "
                            f"the rule a direction ('{self.key}>=-1%' for a metric to "
                            f"maximize, '{self.key}<=+1%' to minimize) or the metric a goal "
                            f"(run.define_metric({self.key!r}, goal=...))")
        _check_sign(self.key, goal, self.tolerance)
        return Rule(self.key, goal, self.tolerance, self.default)


def _check_sign(key: str, goal: str, tol: Tolerance) -> None:
    bad = -1 if goal == "max" else 1
    if tol.sign and tol.sign != bad:
        way, want = ("maximize", "-") if goal == "max" else ("minimize", "+")
        raise RuleError(f"{key}: the tolerance {tol.text()!r} points the wrong way for a "
                        f"metric to {way}: its bad direction is {want} (write "
                        f"'{want}{tol.text()[1:]}')")


def _check_key(key: str, where: str) -> str:
    if not isinstance(key, str) or not key.strip() or key != key.strip():
        raise RuleError(f"{where}: a rule needs a metric key, got {key!r}")
    return key


_RULE = re.compile(r"^(?P<key>[^<>=]+?)\s*(?:(?P<op><=|>=|=)\s*(?P<tol>.*))?$")


def parse_rule(text: Any) -> Rule:
    """'eval/acc>=-0.5%' (maximize), 'eval/loss<=+2%' (minimize), 'eval/acc=-1%' (the
    sign says), 'eval/acc' (the default tolerance, the metric's goal)."""
    if not isinstance(text, str):
        raise RuleError(f"a rule is a text like 'eval/acc>=-0.5%', got {type(text).__name__}")
    m = _RULE.match(text.strip())
    if m is None or not m.group("key").strip():
        raise RuleError(f"cannot read the rule {text!r}: write KEY>=TOL for a metric to "
                        f"maximize ('eval/acc>=-0.5%') or KEY<=TOL to minimize "
                        f"('eval/loss<=+2%')")
    key = _check_key(m.group("key").strip(), f"rule {text!r}")
    op = m.group("op")
    if op is None:
        return Rule(key, None, parse_tolerance(DEFAULT_TOLERANCE), default=True)
    if not m.group("tol").strip():
        raise RuleError(f"the rule {text!r} has no tolerance after {op!r} (e.g. "
                        f"'{key}{op}{'-1%' if op != '<=' else '+1%'}')")
    try:
        tol = parse_tolerance(m.group("tol"))
    except RuleError as exc:
        raise RuleError(f"rule {text!r}: {exc}") from None
    if op == "=":
        goal = {-1: "max", 1: "min"}.get(tol.sign)
        return Rule(key, goal, tol)
    goal = "max" if op == ">=" else "min"
    _check_sign(key, goal, tol)
    return Rule(key, goal, tol)


def rule_for(key: str, tolerance: Any, goal: str | None = None) -> Rule:
    """`init(regression={key: tolerance})`'s entry as a rule: the direction from the
    tolerance's sign, else from `goal` (later: the metric's goal)."""
    _check_key(key, "regression=")
    try:
        tol = parse_tolerance(tolerance)
    except RuleError as exc:
        raise RuleError(f"regression[{key!r}]: {exc}") from None
    rule = Rule(key, {-1: "max", 1: "min"}.get(tol.sign), tol)
    if goal is not None and GOALS.get(goal):
        if rule.goal is not None:
            _check_sign(key, GOALS[goal], tol)
        rule = rule.with_goal(goal)
    return rule


def rules_of(regression: Mapping[str, Any] | Sequence[str] | None) -> list[Rule]:
    """Rules from a mapping {key: tolerance} (init) or texts in the rule grammar (the
    command line, run.json)."""
    if regression is None:
        return []
    if isinstance(regression, Mapping):
        return [rule_for(k, v) for k, v in regression.items()]
    if isinstance(regression, str):
        return [parse_rule(regression)]
    if isinstance(regression, Iterable):
        return [parse_rule(t) for t in regression]
    raise RuleError(f"regression= takes a mapping {{key: tolerance}} like "
                    f"{{'val/acc': '-1%'}}, got {type(regression).__name__}")


def default_rule(key: str, goal: str) -> Rule:
    return Rule(key, GOALS[goal], parse_tolerance(DEFAULT_TOLERANCE), default=True)


# ---------------------------------------------------------------------- baselines
@dataclass(frozen=True)
class Stats:
    mean: float
    std: float | None  # sample std (n - 1); None when n < 2
    n: int

    def text(self) -> str:
        if self.std is None:
            return f"{fmt(self.mean)} (n={self.n})"
        return f"{fmt(self.mean)} ± {fmt(self.std)} (n={self.n})"


def stats_of(values: Iterable[Any]) -> Stats | None:
    """Mean, std and n of the finite numbers among `values`; None when there is none."""
    xs = [float(v) for v in values if _finite(v)]
    if not xs:
        return None
    n = len(xs)
    mean = math.fsum(xs) / n
    std = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else None
    return Stats(mean, std, n)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


@dataclass(frozen=True)
class Verdict:
    key: str
    rule: Rule  # with its goal
    value: float
    base: Stats
    limit: float  # the tolerance's edge: mean -/+ margin
    band: float | None  # the noise band's edge: mean -/+ k*std; None when not trusted
    k: float
    worse: bool  # beyond the tolerance
    regressed: bool  # beyond the tolerance and outside the band

    @property
    def delta(self) -> float:
        return self.value - self.base.mean

    @property
    def rel_delta(self) -> float | None:
        return self.delta / abs(self.base.mean) if self.base.mean else None

    @property
    def better(self) -> bool:
        return (self.delta > 0) if self.rule.goal == "max" else (self.delta < 0)

    @property
    def word(self) -> str:
        """regressed / worse, within noise / better / ok."""
        if self.regressed:
            return "regressed"
        if self.worse:
            return "worse, within noise"
        return "better" if self.better else "ok"

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "goal": self.rule.goal, "rule": self.rule.text,
                "default_rule": self.rule.default, "value": plain(self.value),
                "baseline": {"mean": self.base.mean, "std": self.base.std, "n": self.base.n},
                "delta": plain(self.delta), "rel_delta": plain(self.rel_delta),
                "limit": self.limit, "band": self.band, "k": self.k,
                "band_trusted": self.band is not None, "worse": self.worse,
                "regressed": self.regressed, "verdict": self.word}

    def text(self, where: str = "") -> str:
        """One sentence for an alert: what, where, against what, by which rule."""
        if self.band is not None:
            noise = f"and outside the noise band {fmt(self.band)} (k={self.k:g})"
        else:
            noise = f"(n={self.base.n} < {MIN_N} baseline runs: no noise band)"
        return (f"{self.key} = {fmt(self.value)}{where} is worse than the baseline "
                f"{self.base.text()} beyond the rule {self.rule.text} (limit "
                f"{fmt(self.limit)}) {noise}")


def judge(value: float, base: Stats, rule: Rule, k: float = DEFAULT_K,
          min_n: int = MIN_N) -> Verdict:
    """Is `value` a regression against `base` under `rule` (its goal settled)?

    Worse than the tolerance AND outside the noise band. With n < min_n the std is not
    trusted and the tolerance alone decides. A NaN is always a regression."""
    if rule.goal not in ("max", "min"):
        raise RuleError(f"{rule.key}: the rule has no direction")
    margin = rule.tolerance.margin(base.mean)
    trusted = base.n >= min_n and base.std is not None
    if rule.goal == "max":
        limit = base.mean - margin
        band = base.mean - k * base.std if trusted and base.std is not None else None
        worse = not value >= limit
        outside = band is None or not value >= band
    else:
        limit = base.mean + margin
        band = base.mean + k * base.std if trusted and base.std is not None else None
        worse = not value <= limit
        outside = band is None or not value <= band
    return Verdict(rule.key, rule, value, base, limit, band, k, worse, worse and outside)


# ---------------------------------------------------------------------- a run's value
def run_value(digest: Mapping[str, Any], key: str, goal: str | None) -> tuple[Any, str] | None:
    """(a run's value of `key`, where it came from) from a digest (store/digest.py):
    an explicit summary value; else, for a metric with a goal, its best logged value;
    else its last. What W&B's summary would show. None when the run has no such value."""
    summ = (digest.get("summary") or {}).get(key)
    if _finite(summ) or summ in ("NaN", "inf", "-inf"):
        return _number(summ), "summary"
    entry = (digest.get("keys") or {}).get(key)
    if not entry:
        return None
    side = GOALS.get(goal or "")
    if side is not None and entry.get(side) is not None:
        return entry[side], "best"
    last = entry.get("last")
    if last is None:
        return None
    return _number(last), "last"


def _number(v: Any) -> float:
    if isinstance(v, str):
        return {"NaN": math.nan, "nan": math.nan, "inf": math.inf,
                "-inf": -math.inf}.get(v, math.nan)
    return v


# ---------------------------------------------------------------------- curves
def curve_of(pairs: Iterable[tuple[Any, Any]], max_points: int = MAX_CURVE_POINTS
             ) -> tuple[list[float], list[float]]:
    """(steps, values) of one run's (step, value) pairs: finite values only, sorted by
    step (a step logged twice keeps its last value), thinned to `max_points` evenly
    (the first and last kept): the live check interpolates between what is left."""
    by_step: dict[float, float] = {}
    for step, value in pairs:
        if _finite(step) and _finite(value):
            by_step[float(step)] = float(value)
    steps = sorted(by_step)
    if len(steps) > max_points > 1:
        last = len(steps) - 1
        idx = sorted({round(i * last / (max_points - 1)) for i in range(max_points)})
        steps = [steps[i] for i in idx]
    return steps, [by_step[s] for s in steps]


def value_at(steps: Sequence[float], values: Sequence[float], step: float) -> float | None:
    """The curve's value at `step`: its own where it has that step, else linear between
    its neighbours; None outside its range (never extrapolated)."""
    if not steps or step < steps[0] or step > steps[-1]:
        return None
    i = bisect.bisect_left(steps, step)
    if steps[i] == step:
        return values[i]
    s0, s1 = steps[i - 1], steps[i]
    v0, v1 = values[i - 1], values[i]
    return v0 + (v1 - v0) * (step - s0) / (s1 - s0)


def stats_at(curves: Sequence[tuple[Sequence[float], Sequence[float]]], step: float
             ) -> Stats | None:
    """Mean, std and n at `step` over the baseline runs whose curve covers it."""
    return stats_of(v for s, vs in curves if (v := value_at(s, vs, step)) is not None)


def fmt(x: Any) -> str:
    """A value as tables and alerts show it: 4 significant digits."""
    return f"{x:.4g}" if isinstance(x, float) else str(x)

