"""A run's baseline, resolved and read: which runs `baseline=` names, and what the live
regression check needs of them (store/rules.py has the rules themselves).

A reference is a run id, an id prefix or a run folder; `latest` (the newest finished
run); `tag:NAME` / `group:NAME` (every finished run with that tag / in that group:
several seeds); or `best` (the best finished run of the project by its one metric
with a goal). The run being judged is never its own baseline.

`live_spec` is what `init(baseline=...)` and `run.set_baseline` hand the Run (api.py
calls it; the Run gets plain data, never a reader): the baseline runs' ids, the rules,
k, and per checked metric each baseline run's curve (step -> value on the metric's
namespace axis, thinned to MAX_CURVE_POINTS) and the runs' final values (mean, std,
n). It is read once, here; training never reads another run.

The references are read/select.py's (the ones `compare` takes) plus `best`, with two
differences for a baseline: `latest`, tags and groups take finished runs only (a
crashed or running seed is no baseline), and the run being judged is left out.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..store.digest import goals_of
from ..store.layout import runs_dir
from ..store.rules import (
    DEFAULT_K,
    BaselineError,
    Rule,
    RuleError,
    curve_of,
    default_rule,
    rules_of,
    run_value,
    stats_of,
)
from .digest import run_digest
from .select import SelectError, filter_runs, select_runs

LATEST = "latest"
BEST = "best"


def _finished(root: str | os.PathLike[str] | None, exclude: Sequence[str], **filters: Any
              ) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, run.json) of the finished runs under the root matching `filters`
    (project, group, tag), oldest first, but those in `exclude`."""
    return [(d, m) for d, m in filter_runs(root, **filters)
            if m.get("state") == "finished" and d.name not in exclude]


def select(ref: str, root: str | os.PathLike[str] | None = None, *,
           exclude: Sequence[str] = (), project: str | None = None) -> list[Path]:
    """The baseline run folders `ref` names (see the module's doc). Raises BaselineError
    naming what it could not find."""
    if not isinstance(ref, str) or not ref.strip():
        raise BaselineError(f"a baseline is a run id, 'latest', 'best', 'tag:NAME' or "
                            f"'group:NAME'; got {ref!r}")
    where = runs_dir(root)
    if ref == LATEST:
        runs = _finished(root, exclude)
        if not runs:
            raise BaselineError(f"baseline 'latest': no finished run under {where}")
        return [runs[-1][0]]
    if ref == BEST:
        return [best_run(root, project, exclude)]
    for prefix, field in (("tag:", "tag"), ("group:", "group")):
        if ref.startswith(prefix):
            name = ref[len(prefix):]
            if not name:
                raise BaselineError(f"baseline {ref!r} names no {field}: write {prefix}NAME")
            runs = [d for d, _ in _finished(root, exclude, **{field: name})]
            if not runs:
                raise BaselineError(f"baseline {ref!r}: no finished run with {field} "
                                    f"{name!r} under {where}")
            return runs
    try:
        (rdir,) = select_runs(ref, root)
    except SelectError as exc:
        raise BaselineError(f"baseline {ref!r}: {exc}") from None
    if rdir.name in exclude:
        raise BaselineError(f"baseline {ref!r} is the run itself")
    return [rdir]


def best_run(root: str | os.PathLike[str] | None, project: str | None,
             exclude: Sequence[str] = ()) -> Path:
    """The finished run of `project` with the best value of the project's one metric
    with a goal."""
    runs = [d for d, _ in _finished(root, exclude, project=project)]
    if not runs:
        raise BaselineError(f"baseline 'best': no finished run of project {project!r} "
                            f"under {runs_dir(root)}")
    digests = [run_digest(d) for d in runs]
    goals = goals_of(digests)
    if len(goals) != 1:
        found = (f"it has {len(goals)}: {', '.join(sorted(goals))}" if goals else
                 "none of its runs defines one (run.define_metric(key, goal=...))")
        raise BaselineError(f"baseline 'best' ranks the runs of project {project!r} by their "
                            f"one metric with a goal, and {found}; name the baseline run "
                            f"instead")
    ((key, goal),) = goals.items()
    scored = [(v[0], d) for d, dg in zip(runs, digests, strict=True)
              if (v := run_value(dg, key, goal)) is not None and stats_of([v[0]]) is not None]
    if not scored:
        raise BaselineError(f"baseline 'best': no finished run of project {project!r} has a "
                            f"value of {key}")
    pick = min if goal == "min" else max
    return pick(scored, key=lambda vd: vd[0])[1]


def settle(rules: Sequence[Rule], goals: Mapping[str, str],
           defaults_for: Sequence[str] = ()) -> list[Rule]:
    """The rules with their directions settled by the metrics' goals, and a default rule
    for each key of `defaults_for` (goal metrics) that has no rule."""
    out = [r.with_goal(goals.get(r.key)) for r in rules]
    ruled = {r.key for r in out}
    out += [default_rule(key, goals[key]) for key in defaults_for
            if key not in ruled and key in goals]
    return out


def manifest_entry(spec: Mapping[str, Any]) -> dict[str, Any]:
    """What run.json keeps of a baseline: ref, the resolved run ids, the rules the user
    wrote (in the command line's grammar), k."""
    return {f: spec[f] for f in ("ref", "runs", "rules", "k")}


def live_spec(ref: str | None, regression: Any, k: Any, root: str | os.PathLike[str] | None,
              *, project: str | None, exclude: Sequence[str] = ()) -> dict[str, Any]:
    """Everything the Run's live check needs, read now (once). Raises RuleError /
    BaselineError with a message naming what is wrong or missing."""
    rules = rules_of(regression)
    k = check_k(k)
    spec: dict[str, Any] = {"ref": ref, "runs": [], "rules": [], "k": k, "watch": {}}
    if ref is None:  # rules kept for `steadyrun check --baseline`; nothing to watch
        spec["rules"] = [r.text for r in rules]
        return spec
    dirs = select(ref, root, exclude=exclude, project=project)
    digests = [run_digest(d) for d in dirs]
    spec["runs"] = [d.name for d in dirs]
    goals = goals_of(digests)
    settled = settle(rules, goals, defaults_for=sorted(goals))
    spec["rules"] = [r.text for r in settled if not r.default]
    if not settled:
        raise BaselineError(f"baseline {ref!r}: nothing to watch: its runs define no metric "
                            f"with a goal and regression= names none")
    from .reader import open_run

    opened = [open_run(d) for d in dirs]
    for rule in settled:
        finals = [v[0] for dg in digests if (v := run_value(dg, rule.key, rule.goal))]
        curves = [curve_of(data.column(rule.key)) for data in opened]
        curves = [c for c in curves if c[0]]
        if not curves and not finals:
            if rule.default:
                continue
            raise BaselineError(f"regression rule {rule.text!r}: the baseline "
                                f"{', '.join(spec['runs'])} has no value of {rule.key}")
        base = stats_of(finals)
        spec["watch"][rule.key] = {
            "rule": rule.text, "default": rule.default,
            "curves": [[list(s), list(v)] for s, v in curves],
            "final": None if base is None else {"mean": base.mean, "std": base.std,
                                                "n": base.n}}
    return spec


def check_k(k: Any) -> float:
    if k is None:
        return DEFAULT_K
    if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 <= k < float("inf"):
        raise RuleError(f"k (the noise band's width in standard deviations) must be a "
                        f"number >= 0, got {k!r}")
    return float(k)
