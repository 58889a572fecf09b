"""Runs side by side: what `steadyrun compare` prints and `--json` writes, built from
each run's digest (read/digest.py), never from its rows.

A column is one run, or a set of runs (`tag:NAME`, `group:NAME`: read/select.py) shown
as one: numbers as mean ± std with n (the sample standard deviation; n counts the runs
that have the value), other values as the one value they share or the list of the
different ones. The first column is the reference: every other column's metrics get an
absolute and a relative delta against it (against its mean for a set), marked
`better` / `worse` / `same` by the metric's goal, and not marked without one.

- metrics: every summary key, plus, for every key with a goal (`define_metric(goal=...)`
  or a `min`/`max` summary, in any of the runs), its best value over the rows; where a
  run set a summary value for such a key, that value is the one shown (`source`).
- config: the flattened config keys (`model.depth`) whose values differ between columns.
- metadata: git commit, branch and dirty flag, host, command line, versions and GPUs,
  where they differ.
- namespaces: per namespace the step reached, and per key its final value, and its best
  value and step when the key has a goal.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from ..store.digest import goals_of
from ..store.steps import step_metric_of
from .digest import run_digest
from .select import is_many, select_runs

GOAL_WORDS = {"min": "minimize", "max": "maximize"}


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def best_of(entry: Mapping[str, Any] | None, goal: str | None) -> tuple[Any, Any]:
    """(best value, its step) of a digest key entry by the goal; (None, None) without."""
    if not entry or goal not in ("min", "max"):
        return None, None
    return entry.get(goal), entry.get(f"{goal}_step")


def metric_values(d: Mapping[str, Any], goals: Mapping[str, str]) -> dict[str, tuple[Any, str]]:
    """key -> (value, source) of one run: its summary ("summary"), and the best value
    over the rows of each key with a goal that the summary lacks ("best")."""
    out: dict[str, tuple[Any, str]] = {k: (v, "summary")
                                       for k, v in (d.get("summary") or {}).items()}
    keys = d.get("keys") or {}
    for key, goal in goals.items():
        if key not in out and key in keys:
            best, _ = best_of(keys[key], goal)
            if best is not None:
                out[key] = (best, "best")
    return out


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as dot keys: {"model": {"depth": 2}} -> {"model.depth": 2}."""
    if not isinstance(tree, Mapping):
        return {prefix: tree} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def metadata_fields(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a run's metadata worth comparing, as flat keys."""
    out: dict[str, Any] = {}
    git = meta.get("git") if isinstance(meta.get("git"), Mapping) else {}
    for f in ("commit", "branch", "dirty"):
        if f in git:
            out[f"git.{f}"] = git[f]
    for f in ("host", "platform"):
        if f in meta:
            out[f] = meta[f]
    cmd = meta.get("command")
    if cmd is not None:
        out["command"] = " ".join(map(str, cmd)) if isinstance(cmd, list) else cmd
    versions = meta.get("versions") if isinstance(meta.get("versions"), Mapping) else {}
    for name, v in sorted(versions.items()):
        out[f"versions.{name}"] = v
    if meta.get("gpus"):
        gpus = meta["gpus"]
        out["gpus"] = ", ".join(map(str, gpus)) if isinstance(gpus, list) else gpus
    return out


def _key(v: Any) -> bytes:
    return orjson.dumps(v, option=orjson.OPT_SORT_KEYS, default=str)


def cell(values: Sequence[Any], many: bool, stats: bool = True) -> Any:
    """What a column shows for one field: a run's value; for a set of runs the mean, std
    and n of its numbers (`stats`: metrics and steps), else the one value they share,
    else {"values": [the different ones]}; None for no value."""
    if not many or not values:
        return values[0] if values else None
    nums = [float(v) for v in values if is_number(v)] if stats else []
    if nums:
        return {"mean": statistics.fmean(nums),
                "std": statistics.stdev(nums) if len(nums) > 1 else None, "n": len(nums)}
    distinct: dict[bytes, Any] = {}
    for v in values:
        distinct.setdefault(_key(v), v)
    if len(distinct) == 1:
        return next(iter(distinct.values()))
    return {"values": list(distinct.values())}


def center(c: Any) -> float | None:
    """The number a delta is taken from: a run's value or a set's mean."""
    if is_number(c):
        return float(c)
    if isinstance(c, Mapping) and is_number(c.get("mean")):
        return float(c["mean"])
    return None


def mark(delta: float | None, goal: str | None) -> str | None:
    if delta is None or goal is None:
        return None
    if delta == 0:
        return "same"
    return "better" if (delta > 0) == (goal == "max") else "worse"


def _namespace(key: str) -> str:
    return key.rsplit("/", 1)[0] if "/" in key else ""


def compare_digests(columns: Sequence[tuple[str, Sequence[Mapping[str, Any]], bool]]
                    ) -> dict[str, Any]:
    """The comparison of columns given as (label, their runs' digests, is a set)."""
    every = [d for _, ds, _ in columns for d in ds]
    goals = goals_of([d for _, ds, _ in columns for d in ds])
    out: dict[str, Any] = {"columns": [
        {"label": label, "many": many, "n": len(ds), "runs": [d["id"] for d in ds],
         **({"name": ds[0].get("name"), "state": ds[0].get("state"),
             "created_at": ds[0].get("created_at")} if not many and ds else
            {"states": sorted({str(d.get("state")) for d in ds})})}
        for label, ds, many in columns]}

    # metrics
    per_run = [[metric_values(d, goals) for d in ds] for _, ds, _ in columns]
    keys = sorted({k for col in per_run for vals in col for k in vals})
    metrics = []
    for key in keys:
        goal = goals.get(key)
        cells = [cell([vals[key][0] for vals in col if key in vals], many)
                 for col, (_, _, many) in zip(per_run, columns, strict=True)]
        sources = {vals[key][1] for col in per_run for vals in col if key in vals}
        base = center(cells[0])
        deltas: list[float | None] = [None]
        rels: list[float | None] = [None]
        for c in cells[1:]:
            v = center(c)
            delta = v - base if v is not None and base is not None else None
            deltas.append(delta)
            rels.append(delta / abs(base) if delta is not None and base else None)
        metrics.append({"key": key, "goal": GOAL_WORDS.get(goal or ""), "source":
                        sources.pop() if len(sources) == 1 else "mixed", "values": cells,
                        "delta": deltas, "rel": rels,
                        "mark": [None] + [mark(x, goal) for x in deltas[1:]]})
    out["metrics"] = metrics

    # config and metadata: only what differs between columns
    for field, pick in (("config", lambda d: flatten(d.get("config") or {})),
                        ("metadata", lambda d: metadata_fields(d.get("metadata") or {}))):
        flat = [[pick(d) for d in ds] for _, ds, _ in columns]
        names = sorted({k for col in flat for f in col for k in f})
        rows = []
        for name in names:
            cells = [cell([f.get(name) for f in col], many, stats=False)
                     for col, (_, _, many) in zip(flat, columns, strict=True)]
            if len({_key(c) for c in cells}) > 1:
                rows.append({"key": name, "values": cells})
        out[field] = rows

    # namespaces: step reached, final and best per key
    spaces: dict[str, set[str]] = {}
    for d in every:
        for key in d.get("keys") or {}:
            spaces.setdefault(_namespace(key), set()).add(key)
    namespaces = []
    for ns in sorted(spaces):
        step_key = step_metric_of(f"{ns}/x" if ns else "x")

        def step_of(d: Mapping[str, Any], ns: str = ns, step_key: str = step_key) -> Any:
            reached = (d.get("steps") or {}).get(step_key)
            if reached is None:
                lasts = [e.get("last_step") for k, e in (d.get("keys") or {}).items()
                         if _namespace(k) == ns and is_number(e.get("last_step"))]
                reached = max(lasts) if lasts else None
            return reached

        entry: dict[str, Any] = {
            "namespace": ns, "step_metric": step_key,
            "step": [cell([s for d in ds if (s := step_of(d)) is not None], many)
                     for _, ds, many in columns],
            "keys": []}
        for key in sorted(spaces[ns]):
            goal = goals.get(key)
            k: dict[str, Any] = {"key": key, "goal": GOAL_WORDS.get(goal or "")}
            got = [[(d.get("keys") or {}).get(key) for d in ds] for _, ds, _ in columns]
            k["final"] = [cell([e["last"] for e in col if e], many)
                          for col, (_, _, many) in zip(got, columns, strict=True)]
            if goal:
                k["best"] = [cell([b for e in col if (b := best_of(e, goal)[0]) is not None],
                                  many) for col, (_, _, many) in zip(got, columns, strict=True)]
                k["best_step"] = [cell([s for e in col if (s := best_of(e, goal)[1])
                                        is not None], many)
                                  for col, (_, _, many) in zip(got, columns, strict=True)]
            entry["keys"].append(k)
        namespaces.append(entry)
    out["namespaces"] = namespaces
    return out


def compare(refs: Sequence[str], root: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """`steadyrun compare`: each reference (an id, a prefix, `latest`, `tag:NAME`,
    `group:NAME`) one column, the first the reference of the deltas. Raises SelectError
    (a ManifestError) for a reference that names no run."""
    columns = []
    for ref in refs:
        dirs: list[Path] = select_runs(ref, root)
        many = is_many(str(ref))
        label = str(ref) if many else dirs[0].name
        columns.append((label, [run_digest(d) for d in dirs], many))
    out = compare_digests(columns)
    for col, ref in zip(out["columns"], refs, strict=True):
        col["ref"] = str(ref)
    return out


# ---------------------------------------------------------------------- text
def fmt_number(v: Any) -> str:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.4g}"


def fmt_cell(c: Any) -> str:
    """A cell as text: `0.912`, `0.905 ± 0.004 (n=3)`, `a | b` for different values,
    `—` for nothing."""
    if c is None:
        return "—"
    if isinstance(c, Mapping) and "mean" in c:
        std = f" ± {c['std']:.2g}" if c.get("std") is not None else ""
        return f"{fmt_number(c['mean'])}{std} (n={c['n']})"
    if isinstance(c, Mapping) and "values" in c:
        return " | ".join(fmt_cell(v) for v in c["values"])
    if isinstance(c, (list, dict)):
        return orjson.dumps(c, default=str).decode()
    return fmt_number(c)


def fmt_delta(delta: float | None, rel: float | None) -> str:
    if delta is None:
        return ""
    text = f"{delta:+.4g}"
    if rel is not None:
        text += f" ({rel:+.1%})"
    return text
