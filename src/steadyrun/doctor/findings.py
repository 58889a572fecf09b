"""What `steadyrun doctor` reports: a Finding per problem, its stable code and severity,
and the two renderings (text for people, JSON for tools).

Codes are part of the command's contract: scripts and CI jobs match on them, so a code is
never renamed; a new problem gets a new code. Every finding says where (the run and its
folder), what (the keys), how we know (evidence: counts, steps, file:line) and what to do
instead (the steadyrun call, or the wandb call, that avoids it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

INFO, WARN, ERROR = "info", "warn", "error"
SEVERITY_RANK = {INFO: 0, WARN: 1, ERROR: 2}

# code -> (severity, one-line title). The title says what the user sees on W&B.
CODES: dict[str, tuple[str, str]] = {
    "dropped-rows": (ERROR, "rows were dropped: W&B ignored a log call with a lower step"),
    "empty-chart": (ERROR, "empty chart: the step metric of these keys was never logged as "
                           "data"),
    "one-point-series": (WARN, "a final score logged as a one-point time series"),
    "split-pipeline": (WARN, "one pipeline drawn as several linked runs"),
    "duplicate-ranks": (ERROR, "one run per DDP rank: no rank-0 guard"),
    "secret-in-config": (ERROR, "a credential was stored in the run"),
    "unfinished": (WARN, "the run has no exit record: it crashed or was killed"),
    "not-synced": (INFO, "an offline run that was never uploaded"),
    "mixed-axes": (WARN, "keys of one namespace logged with and without their step metric"),
    # What a steadyrun run recorded about itself.
    "step-regression": (WARN, "a namespace's step went back (steadyrun kept the rows)"),
    "rejected-values": (WARN, "values were refused at log time (recorded, not stored)"),
    "torn-tail": (INFO, "a killed writer left a partial last record (skipped)"),
    "sidecar-dead": (WARN, "rows not shipped to W&B and no sidecar is running"),
}


@dataclass
class Finding:
    """One problem of one run (or of several runs, for the cross-run codes).

    `evidence` holds plain JSON values only (counts, steps, run ids, `file:line`), so the
    JSON output is the dataclass as it is. It never holds a secret's value.
    """

    code: str
    run: str
    message: str
    fix: str
    keys: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    path: str = ""

    @property
    def severity(self) -> str:
        return CODES[self.code][0]

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "severity": self.severity, "run": self.run,
                "path": self.path, "keys": self.keys, "message": self.message,
                "evidence": self.evidence, "fix": self.fix}


def at_or_above(findings: list[Finding], level: str) -> list[Finding]:
    floor = SEVERITY_RANK[level]
    return [f for f in findings if SEVERITY_RANK[f.severity] >= floor]


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Worst first, then by run and code, so the output is stable across runs of doctor."""
    return sorted(findings, key=lambda f: (-SEVERITY_RANK[f.severity], f.run, f.code,
                                           f.keys))


def _evidence_text(evidence: dict[str, Any]) -> str:
    parts = []
    for key, value in evidence.items():
        if isinstance(value, list) and len(value) > 12:
            shown = ", ".join(map(str, value[:12]))
            parts.append(f"{key}: [{shown}, ... {len(value) - 12} more]")
        elif isinstance(value, list):
            parts.append(f"{key}: [{', '.join(map(str, value))}]")
        else:
            parts.append(f"{key}: {value}")
    return "; ".join(parts)


def render_text(findings: list[Finding], runs_seen: int) -> str:
    """The report for a terminal: one block per finding, worst first, then a tally."""
    lines: list[str] = []
    for f in sort_findings(findings):
        keys = f" [{', '.join(f.keys)}]" if f.keys else ""
        lines.append(f"{f.severity.upper():5} {f.code}  run {f.run}{keys}")
        lines.append(f"      {f.message}")
        if f.evidence:
            lines.append(f"      evidence: {_evidence_text(f.evidence)}")
        if f.path:
            lines.append(f"      where: {f.path}")
        lines.append(f"      fix: {f.fix}")
    tally = {sev: sum(1 for f in findings if f.severity == sev) for sev in (ERROR, WARN, INFO)}
    noun = "run" if runs_seen == 1 else "runs"
    if findings:
        lines.append(f"{runs_seen} {noun} checked: {tally[ERROR]} error(s), {tally[WARN]} "
                     f"warning(s), {tally[INFO]} note(s)")
    else:
        lines.append(f"{runs_seen} {noun} checked: no findings")
    return "\n".join(lines) + "\n"


def as_json(findings: list[Finding], runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"runs": runs, "findings": [f.as_dict() for f in sort_findings(findings)],
            "counts": {sev: sum(1 for f in findings if f.severity == sev)
                       for sev in (ERROR, WARN, INFO)}}
