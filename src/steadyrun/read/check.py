"""`steadyrun check`: is a run worse than its baseline, beyond the rules and the noise?

Both sides are read from their digests (read/digest.py), never row by row. A metric's
value is the run's summary value (an explicit summary, else the best logged value of a
metric with a goal, else the last: store/rules.run_value), on each side; the baseline
runs give mean, std and n, and store/rules.judge decides.

- baseline: `--baseline REF` (read/baseline.select: an id, `latest`, `best`, `tag:NAME`,
  `group:NAME`), else the runs the run's own baseline resolved to at init (run.json's
  `baseline.runs`), which must all still exist.
- rules: `--rule` texts; else run.json's rules plus the default tolerance for the run's
  other metrics with a goal.

Anything that keeps the check from being made (no such run, no baseline, a metric one
side lacks, unreadable data) raises BaselineError naming what is missing: the command
line says it in one line and exits 2.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store.manifest import ManifestError, find_run, manifest_of
from ..store.rules import (
    MIN_N,
    BaselineError,
    Rule,
    Verdict,
    fmt,
    judge,
    parse_rule,
    plain,
    run_value,
    stats_of,
)
from .baseline import check_k, goals_of, select, settle
from .digest import run_digest


@dataclass
class CheckResult:
    run: str
    baseline_ref: str
    baseline_runs: list[str]
    k: float
    verdicts: list[Verdict] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # key -> summary/best/last

    @property
    def regressions(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.regressed]

    @property
    def exit_code(self) -> int:
        return 1 if self.regressions else 0

    def as_dict(self) -> dict[str, Any]:
        return {"run": self.run, "baseline": {"ref": self.baseline_ref,
                                              "runs": self.baseline_runs},
                "k": self.k, "min_n": MIN_N, "regressed": bool(self.regressions),
                "metrics": [{**v.as_dict(), "source": self.sources.get(v.key)}
                            for v in self.verdicts]}

    def markdown(self) -> str:
        """A table for a terminal or a CI job summary ($GITHUB_STEP_SUMMARY)."""
        runs = ", ".join(f"`{r}`" for r in self.baseline_runs)
        lines = [f"### steadyrun check: `{self.run}` vs baseline `{self.baseline_ref}` "
                 f"({runs})", "",
                 "| metric | run | baseline mean ± std (n) | delta | rule | verdict |",
                 "|---|---:|---:|---:|---|---|"]
        for v in self.verdicts:
            base = v.base
            std = f" ± {fmt(base.std)}" if base.std is not None else ""
            rel = f" ({v.rel_delta:+.2%})" if v.rel_delta is not None else ""
            delta = f"{v.delta:+.4g}{rel}"
            rule = v.rule.text + (" (default)" if v.rule.default else "")
            word = f"**{v.word}**" if v.regressed else v.word
            src = self.sources.get(v.key)
            lines.append(f"| `{v.key}` | {fmt(plain(v.value))}{f' ({src})' if src else ''} | "
                         f"{fmt(base.mean)}{std} ({base.n}) | {delta} | `{rule}` | {word} |")
        n = len(self.regressions)
        lines += ["", f"k = {self.k:g}: a regression is worse than its rule and outside the "
                      f"noise band mean − k·std (mean + k·std for a metric to minimize); the "
                      f"band is used from n ≥ {MIN_N} baseline runs, below that the rule "
                      f"alone decides.", "",
                  f"**{n} regression{'s' if n != 1 else ''}**" if n else
                  "**No regression**: every rule holds."]
        return "\n".join(lines) + "\n"


def _locate(ref: str, root: str | os.PathLike[str] | None) -> Path:
    try:
        return find_run(ref, root)[0]
    except ManifestError as exc:
        raise BaselineError(str(exc)) from None


def _digest(rdir: Path, what: str) -> dict[str, Any]:
    try:
        return run_digest(rdir)
    except (OSError, ValueError) as exc:
        raise BaselineError(f"cannot read {what} {rdir.name} ({exc})") from None


def check_run(ref: str, root: str | os.PathLike[str] | None = None,
              baseline: str | None = None, rules: Sequence[str] | None = None,
              k: float | None = None) -> CheckResult:
    """Judge run `ref` against `baseline` (see the module's doc)."""
    rdir = _locate(ref, root)
    manifest = manifest_of(rdir)
    if manifest.get("manifest_error") and manifest.get("state") == "unknown":
        raise BaselineError(f"cannot read run {rdir.name}: {manifest['manifest_error']}")
    stored = manifest.get("baseline") if isinstance(manifest.get("baseline"), dict) else {}
    run = _digest(rdir, "run")
    if baseline is not None:
        dirs = select(baseline, root, exclude=(rdir.name,), project=manifest.get("project"))
        ref_text = baseline
    else:
        ids = [r for r in stored.get("runs") or [] if isinstance(r, str)]
        if not ids:
            raise BaselineError(f"run {rdir.name} has no baseline: give --baseline RUN "
                                f"(a run id, tag:NAME, group:NAME, latest or best), or start "
                                f"it with steadyrun.init(baseline=...)")
        ref_text = str(stored.get("ref") or ",".join(ids))
        dirs = []
        for rid in ids:
            found = rdir.parent / rid
            if not found.is_dir():
                raise BaselineError(f"baseline run {rid} (run {rdir.name}'s baseline "
                                    f"{ref_text!r}) no longer exists under {rdir.parent}")
            dirs.append(found)
    digests = [_digest(d, "baseline run") for d in dirs]
    k = check_k(k if k is not None else stored.get("k"))
    goals = {**goals_of(digests), **goals_of([run])}  # the run's own goals win
    texts = list(rules) if rules else [t for t in stored.get("rules") or [] if isinstance(t, str)]
    parsed: list[Rule] = [parse_rule(t) for t in texts]
    own_goals = sorted(goals_of([run])) if not rules else []
    settled = settle(parsed, goals, defaults_for=own_goals)
    if not settled:
        raise BaselineError(f"nothing to check: run {rdir.name} has no metric with a goal "
                            f"(run.define_metric(key, goal=...)) and no rule was given "
                            f"(--rule 'eval/acc>=-1%')")
    result = CheckResult(rdir.name, ref_text, [d.name for d in dirs], k)
    for rule in settled:
        got = run_value(run, rule.key, rule.goal)
        if got is None:
            raise BaselineError(f"{rule.key}: run {rdir.name} has no value of it (never "
                                f"logged, not in its summary)")
        values = []
        for d, dg in zip(dirs, digests, strict=True):
            theirs = run_value(dg, rule.key, rule.goal)
            if theirs is None:
                raise BaselineError(f"{rule.key}: baseline run {d.name} has no value of it "
                                    f"(never logged, not in its summary)")
            values.append(theirs[0])
        base = stats_of(values)
        if base is None:
            raise BaselineError(f"{rule.key}: no baseline run has a finite value of it "
                                f"({', '.join(fmt(v) for v in values)})")
        result.verdicts.append(judge(float(got[0]), base, rule, k))
        result.sources[rule.key] = got[1]
    return result
