"""The live regression check: a run's goal metrics against its baseline, step by step.

`init(baseline=...)` / `run.set_baseline` read the baseline once (read/baseline.py,
through api.py) and hand the Run plain data: per checked metric its rule and each
baseline run's curve (step -> value on the metric's namespace axis) and final values.
The check never runs on the training thread's `log()`: the digest keeper
(log/digest_keeper.py) calls `observe` with the records it has just folded, every
~2 s on the writer thread and at `flush()`; `finish()` calls `observe` for the last
rows and then `final` before the segment is closed.

At a row holding a checked metric, its value is judged (store/rules.judge) against
the baseline runs' values at the same step of the same namespace (linear between
their neighbouring steps; no value outside their range: no check): mean, std, n over
the runs. A crossing from OK to regressed records one `regression` event and one
WARN alert (which the sidecar ships as a W&B alert); back to OK re-arms it. At finish
the run's summary value (explicit summary, else best, else last: store/rules.run_value)
is judged against the baseline runs' own; a regression there is recorded as an event
(`phase: "final"`) and alerted unless the live check is already in that crossing.

Nothing here raises into training: a failing check is skipped (the digest keeper
catches it) and says so once on stderr.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any

from ..store import records
from ..store.rules import Rule, Stats, judge, parse_rule, plain, run_value, stats_at
from ..store.steps import step_metric_of
from ..store.values import restore_nonfinite


class _Watched:
    __slots__ = ("rule", "curves", "final", "down")

    def __init__(self, rule: Rule, curves: list[tuple[list[float], list[float]]],
                 final: Stats | None) -> None:
        self.rule = rule
        self.curves = curves
        self.final = final
        self.down = False  # in a regressed crossing (alerted)


class RegressionWatch:
    def __init__(self, spec: Mapping[str, Any], record: Callable[[dict[str, Any]], None],
                 alert: Callable[[str, str, str], None]) -> None:
        self.ref = spec.get("ref")
        self.runs = list(spec.get("runs") or [])
        self.k = float(spec.get("k", 2.0))
        self._record = record
        self._alert = alert
        self._failed = False
        self.watched: dict[str, _Watched] = {}
        for key, w in (spec.get("watch") or {}).items():
            rule = parse_rule(w["rule"])
            if w.get("default"):
                rule = Rule(rule.key, rule.goal, rule.tolerance, default=True)
            final = w.get("final")
            self.watched[key] = _Watched(
                rule, [(list(s), list(v)) for s, v in w.get("curves") or []],
                Stats(final["mean"], final["std"], final["n"]) if final else None)
        self._keys = frozenset(self.watched)

    # ------------------------------------------------------------------ writer thread
    def observe(self, recs: list[dict[str, Any]]) -> None:
        """Check the rows among newly written records (writer thread, or flush/finish)."""
        if self._failed or not self._keys:
            return
        try:
            for rec in recs:
                if rec.get("k") != "row":
                    continue
                values = rec.get("v")
                if not isinstance(values, dict):
                    continue
                hit = self._keys.intersection(values)
                if hit:
                    self._check_row(rec, values, hit)
        except Exception as exc:  # noqa: BLE001 - never into training
            self._give_up(exc)

    def _check_row(self, rec: dict[str, Any], values: dict[str, Any], hit: frozenset[str]
                   ) -> None:
        nf = rec.get("nf") or {}
        for key in hit:
            value = values[key]
            if value is None and key in nf:
                value = restore_nonfinite(nf[key])
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            sk = step_metric_of(key)
            step = values.get(sk, rec.get("x"))
            if isinstance(step, bool) or not isinstance(step, (int, float)):
                continue
            w = self.watched[key]
            base = stats_at(w.curves, step)
            if base is None:
                continue  # the baseline has no value there: nothing to compare
            verdict = judge(float(value), base, w.rule, self.k)
            if not verdict.regressed:
                w.down = False  # re-armed
                continue
            if w.down:
                continue  # the same crossing: alerted already
            w.down = True
            self._say(verdict, "live", {"step_metric": sk, "step": step},
                      f" at {sk} {step:g}" if isinstance(step, float) else f" at {sk} {step}")

    # ------------------------------------------------------------------ finish
    def final(self, digest: Mapping[str, Any]) -> None:
        """The run's summary values against the baseline runs' (before the close)."""
        if self._failed:
            return
        try:
            for key, w in self.watched.items():
                if w.final is None:
                    continue
                # A writer's digest keeps each summary value as [time, value].
                tv = (digest.get("summary") or {}).get(key)
                view = {"summary": {key: tv[1]} if isinstance(tv, list) and len(tv) == 2
                        else {}, "keys": digest.get("keys") or {}}
                got = run_value(view, key, w.rule.goal)
                if got is None:
                    continue
                value, source = got
                verdict = judge(float(value), w.final, w.rule, self.k)
                if verdict.regressed:
                    self._say(verdict, "final", {"source": source},
                              f" ({source} value of the run)", alert=not w.down)
        except Exception as exc:  # noqa: BLE001 - never into training
            self._give_up(exc)

    # ------------------------------------------------------------------ output
    def _say(self, verdict: Any, phase: str, where: dict[str, Any], where_text: str,
             alert: bool = True) -> None:
        band = verdict.band
        self._record(records.event(
            "regression", key=verdict.key, phase=phase, **where,
            value=plain(verdict.value), baseline=verdict.base.mean, std=verdict.base.std,
            n=verdict.base.n, band=band, limit=verdict.limit, band_k=self.k,
            rule=verdict.rule.text, baseline_ref=self.ref, baseline_runs=self.runs,
            alerted=alert))
        if alert:
            self._alert(f"regression: {verdict.key}",
                        f"{verdict.text(where_text)}; baseline {self.ref}", "WARN")

    def _give_up(self, exc: BaseException) -> None:
        self._failed = True
        try:
            print(f"steadyrun: the live regression check stopped ({exc!r}); training goes "
                  f"on, and `steadyrun check` still judges the run", file=sys.stderr)
        except (OSError, ValueError):
            pass

