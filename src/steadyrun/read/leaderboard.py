"""Runs ranked by a goal metric: what `steadyrun leaderboard` prints and what
`run.log_leaderboard` / `leaderboard --to-run` put into a run as a table.

Built from each run's digest (read/digest.py), never from its rows: 1,000 runs in well
under a second.

- The metric: `metric=`, else the one key with a goal (`define_metric(goal=...)` or a
  `min`/`max` summary) among the listed runs; none or several is a LeaderboardError
  naming the keys that could be used. Its goal: `goal=`, else the runs' definition.
- A run's best: the best value over its rows by the goal (and its step); a key only in
  the summary counts its summary value as best and final. Final: the last value logged.
  Step: the step its namespace reached (`a/b/step` for `a/b/name`).
- Order: the runs that have a finite best, best first (ties: the older run first), then
  the runs lacking the metric (or with no finite value), unranked, newest first.
  `top=N` keeps the first N lines of that order, so unranked runs appear only when
  fewer than N runs are ranked.
- Config columns: the flattened config keys (`model.depth`) whose values are not the
  same in every listed run (a key missing from some runs varies).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..store.records import GOALS
from ..store.steps import step_metric_of
from .compare import GOAL_WORDS, flatten, goals_of, is_number
from .digest import run_digest
from .select import filter_runs, run_dirs

LIST_AT_MOST = 12  # metric names quoted in an error message


class LeaderboardError(ValueError):
    """The leaderboard cannot be made: no runs, no metric to rank by, or an unknown goal."""


def _names(keys: Sequence[str]) -> str:
    keys = sorted(keys)
    more = f" and {len(keys) - LIST_AT_MOST} more" if len(keys) > LIST_AT_MOST else ""
    return ", ".join(keys[:LIST_AT_MOST]) + more


def age_text(ts: Any, now: float | None = None) -> str:
    """`3d`, `5h`, `12m`, `40s` since `ts` (as `steadyrun runs` shows it)."""
    if not is_number(ts):
        return "?"
    s = max(0.0, (time.time() if now is None else now) - ts)
    for unit, n in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= n:
            return f"{int(s // n)}{unit}"
    return f"{int(s)}s"


def choose_metric(digests: Sequence[Mapping[str, Any]], metric: str | None,
                  goal: str | None) -> tuple[str, str]:
    """(the metric, "min" / "max") to rank by; LeaderboardError when it cannot be told."""
    goals = goals_of(digests)
    if goal is not None and goal not in GOALS:
        raise LeaderboardError(f"goal must be minimize, maximize, min or max, got {goal!r}")
    if metric is None:
        if len(goals) == 1:
            metric = next(iter(goals))
        elif goals:
            raise LeaderboardError(
                f"{len(goals)} metrics have a goal: "
                + ", ".join(f"{k} ({GOAL_WORDS[g]})" for k, g in sorted(goals.items()))
                + "; choose one with --metric KEY")
        else:
            keys = {k for d in digests for k in (d.get("keys") or {})}
            keys |= {k for d in digests for k, v in (d.get("summary") or {}).items()
                     if is_number(v)}
            hint = f"; their numeric keys: {_names(list(keys))}" if keys else ""
            raise LeaderboardError(
                f"no metric has a goal (define_metric(goal=...)) in the {len(digests)} "
                f"runs; rank by one with --metric KEY --goal min|max{hint}")
    if goal is not None:
        return metric, GOALS[goal]
    # The runs' own definition; when runs disagree, the most common one (then the newest).
    said = [g for d in reversed(digests) if (g := goals_of([d]).get(metric))]
    if not said:
        held = any(metric in (d.get("keys") or {}) or metric in (d.get("summary") or {})
                   for d in digests)
        where = ("has no goal in any run" if held
                 else f"is in none of the {len(digests)} runs")
        usable = f"; metrics with a goal: {_names(list(goals))}" if goals else ""
        raise LeaderboardError(f"{metric} {where}: give --goal min|max{usable}")
    return metric, Counter(said).most_common(1)[0][0]


def entry_of(d: Mapping[str, Any], metric: str, goal: str) -> dict[str, Any]:
    """One run's line: best (and step), final (and step), the step reached, state, age."""
    e = (d.get("keys") or {}).get(metric)
    best = best_step = final = final_step = None
    if e:
        best, best_step = e.get(goal), e.get(f"{goal}_step")
        final, final_step = e.get("last"), e.get("last_step")
    elif is_number((d.get("summary") or {}).get(metric)):
        best = final = d["summary"][metric]
    step = (d.get("steps") or {}).get(step_metric_of(metric), final_step)
    return {"id": d["id"], "name": d.get("name"), "project": d.get("project"),
            "group": d.get("group"), "tags": d.get("tags") or [],
            "best": best if is_number(best) else None, "best_step": best_step,
            "final": final, "final_step": final_step, "step": step, "state": d.get("state"),
            "created_at": d.get("created_at"), "age": age_text(d.get("created_at")),
            "config": flatten(d.get("config") or {})}


def rank(digests: Sequence[Mapping[str, Any]], metric: str | None = None,
         goal: str | None = None, top: int | None = None) -> dict[str, Any]:
    """The leaderboard of these runs' digests (see the module's doc for every rule)."""
    if not digests:
        raise LeaderboardError("no runs to rank")
    metric, goal = choose_metric(digests, metric, goal)
    entries = [entry_of(d, metric, goal) for d in digests]
    sign = 1.0 if goal == "min" else -1.0
    created = {id(e): e["created_at"] if is_number(e["created_at"]) else 0.0 for e in entries}
    ranked = sorted((e for e in entries if e["best"] is not None),
                    key=lambda e: (sign * e["best"], created[id(e)]))
    unranked = sorted((e for e in entries if e["best"] is None),
                      key=lambda e: -created[id(e)])
    for i, e in enumerate(ranked, 1):
        e["rank"] = i
    for e in unranked:
        e["rank"] = None
    lines = ranked + unranked
    if top is not None:
        lines = lines[:max(0, top)]
    configs = [e["config"] for e in lines]
    names = sorted({k for c in configs for k in c})
    missing = object()
    varying = [k for k in names
               if len({orjson.dumps(c.get(k, missing), default=repr) for c in configs}) > 1]
    for e in lines:
        e["config"] = {k: e["config"].get(k) for k in varying}
    return {"metric": metric, "goal": GOAL_WORDS[goal], "runs": lines,
            "ranked": len(ranked), "unranked": len(unranked), "varying_config": varying,
            "listed": len(lines), "of": len(entries)}


def leaderboard(root: str | os.PathLike[str] | None = None, *, project: str | None = None,
                group: str | None = None, tag: str | None = None, metric: str | None = None,
                goal: str | None = None, top: int | None = None) -> dict[str, Any]:
    """The runs under the root that match the filters, ranked (see `rank`)."""
    if project is None and group is None and tag is None:
        dirs = run_dirs(root)  # every run: run.json is read once, by run_digest
    else:
        dirs = [rdir for rdir, _ in filter_runs(root, project=project, group=group, tag=tag)]
    if not dirs:
        from ..store.layout import runs_dir

        said = ", ".join(f"{k} {v!r}" for k, v in (("project", project), ("group", group),
                                                    ("tag", tag)) if v is not None)
        raise LeaderboardError(f"no runs under {runs_dir(root)}"
                               + (f" with {said}" if said else ""))
    board = rank([run_digest(rdir) for rdir in dirs], metric, goal, top)
    board["filters"] = {"project": project, "group": group, "tag": tag}
    return board


def table(board: Mapping[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The leaderboard as columns and rows of plain values: the one table the command
    line prints (text, CSV, markdown) and a run receives as a table record."""
    metric = board["metric"]
    columns = ["rank", "run", "name", f"best {metric}", "best step", "final", "step",
               "state", "age", *board["varying_config"]]
    rows = []
    for e in board["runs"]:
        final = e["final"] if is_number(e["final"]) or e["final"] is None else str(e["final"])
        rows.append([e["rank"], e["id"], e["name"], e["best"], e["best_step"], final,
                     e["step"], e["state"], e["age"],
                     *(_plain(e["config"].get(k)) for k in board["varying_config"])])
    return columns, rows


def _plain(v: Any) -> Any:
    """A config value as a table cell: numbers, strings, booleans and None as they are,
    anything else (a list) as JSON text."""
    if v is None or isinstance(v, (str, int, float, bool)):
        return v
    return orjson.dumps(v, default=str).decode()


def leaderboard_table(root: str | os.PathLike[str] | None = None, **kwargs: Any
                      ) -> tuple[list[str], list[list[Any]]]:
    """`table(leaderboard(root, **kwargs))`: what `run.log_leaderboard` logs."""
    return table(leaderboard(root, **kwargs))
