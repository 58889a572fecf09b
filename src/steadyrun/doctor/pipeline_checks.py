"""Checks across runs: one pipeline split into linked runs, one run per DDP rank.

Both are read from who started each run, where and when (wandb_side.run_meta): the
program and its arguments, the host, the start time, and the end (the last row's time).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .findings import Finding

RANKS_WITHIN_S = 10.0  # ranks of one job start within seconds of each other
PIPELINE_WITHIN_S = 600.0  # stages of one pipeline start within minutes


def check_runs(metas: list[dict[str, Any]]) -> list[Finding]:
    dupes = _duplicate_ranks(metas)
    in_dupes = {r for f in dupes for r in f.evidence["runs"]}
    return dupes + _split_pipeline([m for m in metas if m["run"] not in in_dupes])


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Both alive at once: ranks run together; runs made one after the other in one
    process (wandb.init, finish, init...) do not."""
    return a["started"] <= (b["ended"] or b["started"]) and \
        b["started"] <= (a["ended"] or a["started"])


def _duplicate_ranks(metas: list[dict[str, Any]]) -> list[Finding]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for m in metas:
        if m["program"] and m["host"] and m["started"] is not None:
            groups[(m["project"], m["program"], tuple(m["args"]), m["host"], m["group"],
                    m["job_type"])].append(m)
    out = []
    for (_, program, args, host, _, _), runs in groups.items():
        runs.sort(key=lambda m: m["started"])
        cluster: list[dict[str, Any]] = []
        for m in runs + [None]:  # type: ignore[list-item]
            if m is not None and cluster and m["started"] - cluster[0]["started"] <= RANKS_WITHIN_S \
                    and any(_overlap(m, c) for c in cluster) \
                    and not (m["writer"] and m["writer"] in {c["writer"] for c in cluster}):
                cluster.append(m)
                continue
            if len(cluster) > 1:
                out.append(_ranks_finding(cluster, program, list(args), host))
            cluster = [m] if m is not None else []
    return out


def _ranks_finding(cluster: list[dict[str, Any]], program: str, args: list[str],
                   host: str) -> Finding:
    ids = [c["run"] for c in cluster]
    spread = round(cluster[-1]["started"] - cluster[0]["started"], 2)
    ev: dict[str, Any] = {"runs": ids, "program": program, "args": args, "host": host,
                          "started_within_s": spread}
    procids = [c["slurm_procid"] for c in cluster if c.get("slurm_procid") is not None]
    if procids:
        ev["slurm_procid"] = procids
    return Finding(
        code="duplicate-ranks", run=ids[0], path=cluster[0]["path"], keys=[],
        message=f"{len(ids)} runs of the same program and arguments started on {host} "
                f"within {spread} s and ran at the same time: every DDP rank opened its own "
                f"run (no rank-0 guard), so each metric is logged once per rank.",
        fix="open the run on rank 0 only: `if int(os.environ.get('RANK', 0)) == 0: "
            "wandb.init(...)`. steadyrun.init() does this by itself under torchrun, SLURM "
            "and MPI (other ranks get a handle that does nothing; reduce='mean' on log "
            "all-reduces first).",
        evidence=ev)


def _split_pipeline(metas: list[dict[str, Any]]) -> list[Finding]:
    """Runs of one group with different job types, or runs of one project started on one
    host within minutes of each other with different job types."""
    clusters: list[list[dict[str, Any]]] = []
    by_group: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    rest = []
    for m in metas:
        (by_group[(m["project"], m["group"])] if m["group"] else rest).append(m)
    clusters += [runs for runs in by_group.values()
                 if len({r["job_type"] for r in runs}) > 1]
    timed: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for m in rest:
        if m["host"] and m["started"] is not None and m["job_type"]:
            timed[(m["project"], m["host"])].append(m)
    for runs in timed.values():
        runs.sort(key=lambda m: m["started"])
        cluster: list[dict[str, Any]] = []
        for m in runs:
            if cluster and m["started"] - cluster[0]["started"] > PIPELINE_WITHIN_S:
                if len({r["job_type"] for r in cluster}) > 1:
                    clusters.append(cluster)
                cluster = []
            cluster.append(m)
        if len({r["job_type"] for r in cluster}) > 1:
            clusters.append(cluster)
    out = []
    for runs in clusters:
        runs = sorted(runs, key=lambda m: m["started"] or 0.0)
        ids = [r["run"] for r in runs]
        starts = [r["started"] for r in runs if r["started"] is not None]
        out.append(Finding(
            code="split-pipeline", run=ids[0], path=runs[0]["path"], keys=[],
            message=f"{len(ids)} runs with job types "
                    f"{sorted({r['job_type'] or '(none)' for r in runs})} are one pipeline "
                    f"drawn as linked runs: its curves and scores are spread over them.",
            fix="make the pipeline one run: steadyrun.init() in the orchestrator, then pass "
                "run.child_env() to each stage's subprocess, whose plain steadyrun.init() "
                "joins the same run (each stage in its own namespace). With wandb: one "
                "wandb.init and wandb.init(id=RUN_ID, resume='allow') in the stages, one "
                "at a time.",
            evidence={"runs": ids, "group": runs[0]["group"] or None,
                      "job_types": [r["job_type"] for r in runs],
                      "programs": sorted({r["program"] for r in runs if r["program"]}),
                      "started_within_s": round(max(starts) - min(starts), 1) if starts
                      else None}))
    return out
