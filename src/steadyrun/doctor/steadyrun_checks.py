"""The checks of a steadyrun run: what the run recorded about itself.

steadyrun cannot make the W&B bugs (it owns W&B's step, writes every namespace's step
into its rows, opens one run per pipeline), but it records what went wrong in the
user's calls and in the machinery: `step_regression`, `rejected` and `dropped` events, a
torn last line, a crash, and a W&B sidecar that died with rows still to ship.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..read.reader import open_run
from ..store.cursor import Cursor
from ..store.layout import hostname, sink_path
from ..store.liveness import pid_alive
from . import secrets
from .findings import Finding

_LOCAL_MODES = ("local", "disabled")


def check_run(rdir: Path) -> tuple[list[Finding], dict[str, Any]]:
    """Findings of the run in `rdir`, and who started it (for the cross-run checks)."""
    data = open_run(rdir)
    out: list[Finding] = []

    def add(code: str, message: str, fix: str, keys: list[str] | None = None,
            **evidence: Any) -> None:
        out.append(Finding(code=code, run=data.id, path=str(rdir), message=message, fix=fix,
                           keys=keys or [], evidence=evidence))

    events = data.events
    regress = [e for e in events if e.get("type") == "step_regression"]
    by_ns: dict[str, list[dict[str, Any]]] = {}
    for e in regress:
        by_ns.setdefault(str(e.get("step_metric") or e.get("namespace")), []).append(e)
    for step_metric, evs in sorted(by_ns.items()):
        add("step-regression",
            f"the step of {step_metric} went back {len(evs)} time(s); steadyrun kept the "
            f"rows (W&B would have dropped them).",
            "give each counter its own namespace (train/, epoch/, val/) or log with the "
            "namespace's own step=; a resume from an older checkpoint also does this.",
            [step_metric], count=len(evs),
            steps=[[e.get("previous"), e.get("step")] for e in evs[:20]],
            sites=sorted({str(e.get("site")) for e in evs if e.get("site")})[:5])
    rejected = [e for e in events if e.get("type") == "rejected"]
    if rejected:
        counts = {e.get("key"): e.get("count") for e in events
                  if e.get("type") == "rejected_count"}
        add("rejected-values",
            f"{len(rejected)} kind(s) of bad input were refused at log time (recorded, not "
            f"stored).",
            "log numbers (or steadyrun.Image/Table/Histogram) under valid keys; "
            "strict=True raises at the call instead.",
            sorted({str(e.get("key")) for e in rejected}),
            reasons=[f"{e.get('key')}: {e.get('reason')} ({e.get('site')})"
                     for e in rejected[:10]],
            counts={str(k): v for k, v in counts.items()} or None)
    dropped = [e for e in events if e.get("type") == "dropped"]
    lost = data.manifest.get("dropped_rows")
    if dropped or lost:
        add("dropped-rows",
            "rows were dropped because the disk refused writes (full, quota, size limit).",
            "free disk space under the run root (STEADYRUN_DIR), or point it at a larger "
            "disk; STEADYRUN_BUFFER_RECORDS bounds what waits in memory meanwhile.",
            count=sum(int(e.get("rows") or 0) for e in dropped) or lost,
            steps=[[e.get("x_min"), e.get("x_max")] for e in dropped],
            reason=sorted({str(e.get("reason")) for e in dropped}) or None)
    if data.torn:
        add("torn-tail", f"{data.torn} partial line(s) in the run's segments (a killed "
            f"writer's last record), skipped by every reader.",
            "nothing to do: records before it are whole; steadyrun sync ships them.",
            torn=data.torn, segments=sorted(s for s, i in data.segments.items() if i["torn"]))
    state = data.state
    if state == "crashed":
        add("unfinished", "the run's owner died without finish(): crashed or killed.",
            f"steadyrun sync {data.id} finishes it in W&B (exit code 255, tag crashed); "
            f"everything logged before the crash is in the local log.",
            state=state, last_step=data.last_step)
    out += _sidecar(data, rdir, state)
    where = [f"config:{p}" for p in secrets.in_mapping(data.config)]
    where += [f"summary:{p}" for p in secrets.in_mapping(
        {k: v for k, v in data.summary.items() if isinstance(v, str)})]
    where += secrets.in_files(rdir / "files", rdir)
    if where:
        add("secret-in-config", f"{len(where)} credential(s) stored in the run (values not "
            f"shown).", "pass credentials through the environment and rotate these.",
            sorted({w.split(":", 1)[1] for w in where if not w.startswith("files")}),
            where=where)
    meta = data.metadata
    started = data.manifest.get("created_at")
    info = {"run": data.id, "path": str(rdir), "kind": "steadyrun",
            "project": data.manifest.get("project") or "",
            "group": data.manifest.get("group") or "",
            "job_type": data.manifest.get("job_type") or "",
            "program": str((meta.get("command") or [""])[0]),
            "args": list((meta.get("command") or [""])[1:]), "host":
            str(meta.get("host") or (data.manifest.get("owner") or {}).get("host") or ""),
            "started": started, "ended": data.manifest.get("finished_at") or started,
            "writer": data.id, "slurm_procid": None}
    return out, info


def _sidecar(data: Any, rdir: Path, state: str) -> list[Finding]:
    """Rows the W&B sink has not shipped, with no sidecar left to ship them."""
    mode = data.manifest.get("mode") or "local"
    if mode in _LOCAL_MODES or state == "running":
        return []
    status = data.wandb
    try:
        pending = Cursor.load(sink_path(rdir, "wandb", "cursor")).unshipped_bytes(rdir)
    except RuntimeError:  # a corrupt cursor: sync re-ships from the start
        pending = -1
    pid = status.get("pid")
    alive = isinstance(pid, int) and data.manifest.get("owner", {}).get("host") == hostname() \
        and pid_alive(pid)
    if alive or (pending == 0 and status.get("finished")):
        return []
    if pending == 0:
        return []
    return [Finding(
        code="sidecar-dead", run=data.id, path=str(rdir), keys=[],
        message="the W&B sidecar is gone and the run's W&B copy is behind its local log.",
        fix=f"steadyrun sync {data.id} (ships exactly what is missing; safe to repeat)",
        evidence={"unshipped_bytes": pending if pending >= 0 else "unknown (corrupt cursor)",
                  "sink_state": status.get("state"), "mode": mode})]
