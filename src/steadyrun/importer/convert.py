"""A W&B run converted: the rows split by x (steps.py), media and other values kept,
then the metric definitions, files, alerts, config, summary and the close record.

Streamed: each W&B row is written as it is read (scan.py), so memory stays flat
whatever the run's length. Only the summary ops (one per key), the metric definitions
and the keys seen are held.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from ..store.layout import hostname
from ..store.values import Rejected, check_key
from .media import copy_files
from .rows import Counts, Rows, set_rule
from .scan import Scan
from .source import Source, steadyrun_id
from .steps import StepRule
from .write import SegmentOut, clean_summary, new_run_dir, put_in_place


def convert(src: Source, runs: Path, rdir: Path, *, partial: bool, fingerprint: str,
            resumes: int, procs: int | None = None) -> Counts:
    """Write the steadyrun run of `src` at `rdir` (through a temp folder)."""
    from .scan import first_run_fields

    started = time.perf_counter()
    counts = Counts()
    run_id = rdir.name
    first = first_run_fields(src.logs[0])
    start = first.get("start_time") or src.logs[0].stat().st_mtime
    tmp = new_run_dir(runs, run_id)
    try:
        counts.files = len(saved := copy_files(src.run_dirs, tmp))
        writer = f"import-{fingerprint[:8]}"
        out = SegmentOut(tmp, writer)
        out.put({"k": "open", "t": start, "writer": writer, "role": "owner", "pid": None,
                 "host": first.get("host") or None, "name": first.get("display_name") or None,
                 "job_type": first.get("job_type") or None, "argv": None,
                 "imported_from": src.wandb_id})
        rows = Rows(out, tmp, counts, start)
        rows.first_metrics = first.get("metrics") or {}
        rows.rule = StepRule(rows.first_metrics)
        result = _scan(src.logs, rows, procs)
        log = result.log
        counts.torn = log.torn
        if log.torn and not partial:
            raise TornLog(log.torn, log.problems[:1])
        end = rows.t
        _tail(out, log, rows, saved, start, end, partial)
        out.close()
        counts.seconds = time.perf_counter() - started
        manifest = _manifest(src, run_id, log, result, start, end, fingerprint, resumes,
                             counts)
        put_in_place(tmp, rdir, manifest)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return counts


def _scan(logs: list[Path], rows: Rows, procs: int | None) -> Scan:
    """One pass over the logs, or (one big log, several cores) importer/parallel.py."""
    from ..ship.wandb.txlog.ranges import processes
    from .batch import Batches
    from .parallel import scan_parallel

    sc = Scan(logs, rows, rule_for=lambda m: set_rule(rows, m))
    batches = Batches(rows, sc)
    for path in logs:
        sc.log.exit_code = None  # a resumed piece supersedes the exit of the one before
        n = procs if procs is not None else processes(path.stat().st_size)
        if n > 1:
            scan_parallel(path, sc, rows, batches, verify_crc=True, procs=n)
        else:
            sc.feed(path, verify_crc=True, batches=batches)
    return sc.finish()


class TornLog(ValueError):
    def __init__(self, n: int, problems: list[str]) -> None:
        where = f" (first: {problems[0]})" if problems else ""
        super().__init__(f"{n} record(s) of the W&B log cannot be read: the log is "
                         f"truncated or damaged{where}; --partial imports what can be read")
        self.n = n


def _tail(out: SegmentOut, log: Any, rows: Rows, saved: list[tuple[str, str]],
          start: float, end: float, partial: bool) -> None:
    put = out.put
    rule = StepRule(log.metrics)
    for key in _metric_keys(log.metrics, rows.seen, rule):
        m = log.metrics.get(key) or next(
            (log.metrics[name] for name, _ in rule.globs if _match(key, name)), {})
        ops = set(m.get("summary") or ())
        goal = m.get("goal") or ("minimize" if "min" in ops and "max" not in ops else
                                 "maximize" if "max" in ops and "min" not in ops else None)
        rec: dict[str, Any] = {"k": "metric", "t": start, "key": key}
        if goal:
            rec["goal"] = goal
        if m.get("hidden"):
            rec["hidden"] = True
        if m.get("step_metric"):
            rec["wandb_step_metric"] = m["step_metric"]
        put(rec)
    for path, name in saved:
        put({"k": "file", "t": start, "path": path, "name": name})
    for a in log.alerts:
        put({"k": "alert", "t": end, "title": a["title"], "text": a["text"],
             "level": a.get("level") or "WARN"})
    put({"k": "config", "t": start, "v": log.config})
    summary, nf = clean_summary(log.summary)
    rec = {"k": "summary", "t": end, "v": summary}
    if nf:
        rec["nf"] = nf
    put(rec)
    if log.torn:
        put({"k": "event", "t": end, "type": "imported_torn", "count": log.torn})
    code = log.exit_code
    state = "crashed" if code is None else ("finished" if code == 0 else "failed")
    put({"k": "close", "t": end, "exit_code": 255 if code is None else code, "state": state})


def _match(key: str, pattern: str) -> bool:
    from fnmatch import fnmatchcase

    return fnmatchcase(key, pattern)


def _metric_keys(metrics: dict[str, dict[str, Any]], seen: dict[str, None],
                 rule: StepRule) -> list[str]:
    """Exact definitions, then the logged keys a glob defines (W&B expands them too)."""
    keys = [k for k, m in metrics.items() if not m.get("glob") and _valid(k)]
    for key in seen:
        if key not in metrics and any(_match(key, p) for p, _ in rule.globs):
            keys.append(key)
    return keys


def _valid(key: str) -> bool:
    try:
        check_key(key)
    except Rejected:
        return False
    return True


def _manifest(src: Source, run_id: str, log: Any, result: Scan, start: float, end: float,
              fingerprint: str, resumes: int, counts: Counts) -> dict[str, Any]:
    run = log.run
    logs = src.describe()
    code = log.exit_code
    return {
        "id": run_id, "format": 1,
        "project": run.get("project") or "steadyrun", "entity": run.get("entity") or None,
        "name": run.get("display_name") or run_id, "group": run.get("group") or None,
        "job_type": run.get("job_type") or None, "notes": run.get("notes") or None,
        "tags": list(run.get("tags") or []), "mode": "local",
        "state": "crashed" if code is None else ("finished" if code == 0 else "failed"),
        "exit_code": 255 if code is None else code,
        "created_at": start, "finished_at": end,
        "owner": {"pid": None, "host": run.get("host") or hostname(), "started_at": start},
        "resumes": resumes,
        "imported_from": {
            "wandb_run_id": src.wandb_id, "path": str(src.run_dirs[0]),
            "size": sum(int(x["size"]) for x in logs),
            "mtime": max(int(x["mtime_ns"]) for x in logs) / 1e9,
            "logs": logs, "fingerprint": fingerprint, "wandb_rows": counts.wandb_rows,
            "torn": counts.torn, "complete": code is not None,
            "importer_pid": os.getpid(), "imported_at": time.time(),
        },
    }


__all__ = ["Counts", "TornLog", "convert", "steadyrun_id"]
