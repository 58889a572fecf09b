"""`steadyrun doctor`: the seeds' bugs found in any W&B run folder, and in steadyrun runs.

Reads W&B folders through their transaction log (ship/wandb/txlog, streamed) and the
files beside it; reads steadyrun runs through read/. Each finding has a stable code, a
severity, the run, the keys, the evidence and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

from .findings import CODES, Finding, as_json, at_or_above, render_text
from .folders import DoctorInputError, discover


@dataclass
class Report:
    """What `diagnose` found: the findings, and the runs it read (one line each)."""

    findings: list[Finding] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return as_json(self.findings, self.runs)

    def text(self) -> str:
        return render_text(self.findings, len(self.runs))


def examine(paths: Iterable[str | PathLike[str]]) -> Report:
    """Read every run the paths name (module docstring) and check each, then across them.

    Raises DoctorInputError (one line naming the file and what was wrong) for a path that
    names no run or a W&B log that cannot be read at all.
    """
    from .pipeline_checks import check_runs
    from .steadyrun_checks import check_run as check_steadyrun
    from .wandb_checks import check_run as check_wandb
    from .wandb_scan import scan
    from .wandb_side import read_side, run_meta

    targets = discover([str(p) for p in paths])
    report = Report()
    metas = []
    for target in targets.wandb:
        sc = scan(target)
        side = read_side(sc)
        report.findings += check_wandb(sc, side)
        meta = run_meta(sc, side)
        metas.append(meta)
        report.runs.append({"run": target.run_id, "kind": "wandb", "path": str(target.folder),
                            "rows": sc.rows, "finished": sc.exit_code is not None})
    for rdir in targets.steadyrun:
        found, meta = check_steadyrun(rdir)
        report.findings += found
        metas.append(meta)
        report.runs.append({"run": meta["run"], "kind": "steadyrun", "path": str(rdir)})
    report.findings += check_runs(metas)
    return report


def diagnose(paths: Iterable[str | PathLike[str]]) -> list[Finding]:
    """The findings for the runs under `paths` (what `steadyrun doctor PATH...` prints)."""
    return examine(paths).findings


__all__ = ["CODES", "DoctorInputError", "Finding", "Report", "at_or_above", "diagnose",
           "examine"]
