"""The files W&B writes beside a run's transaction log, read as plain files.

An offline run of wandb 0.31 keeps its metadata (program, args, host, start time) in the
log's environment record and writes `files/output.log`; an online or synced run also
has `files/wandb-metadata.json`, `files/config.yaml` and `files/wandb-summary.json`.
Each is read when present, and the log's own records win where both say the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .wandb_scan import WandbScan


@dataclass
class Side:
    metadata: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    output_log: str | None = None
    synced: bool = False


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(errors="replace"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        import yaml

        data = yaml.safe_load(path.read_text(errors="replace"))
    except Exception:  # noqa: BLE001 - a damaged side file only loses its own evidence
        return {}
    if not isinstance(data, dict):
        return {}
    out = {}
    for k, v in data.items():
        if str(k).startswith("_wandb") or k == "wandb_version":
            continue
        out[str(k)] = v["value"] if isinstance(v, dict) and "value" in v else v
    return out


def read_side(scan: WandbScan) -> Side:
    folder = scan.target.folder
    files = folder / "files"
    side = Side(metadata=_json(files / "wandb-metadata.json"), config=_yaml(files / "config.yaml"),
                summary=_json(files / "wandb-summary.json"))
    if (files / "output.log").is_file():
        try:
            side.output_log = (files / "output.log").read_text(errors="replace")
        except OSError:
            side.output_log = None
    # `wandb sync` leaves run-<id>.wandb.synced beside each log it uploaded.
    side.synced = all(f.with_name(f.name + ".synced").exists() for f in scan.target.files)
    return side


def _time(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


def run_meta(scan: WandbScan, side: Side) -> dict[str, Any]:
    """Who started the run, where and when: for the cross-run checks."""
    md, env, run = side.metadata, scan.env, scan.run
    started = env.get("started_at") or run.get("start_time") or _time(md.get("startedAt"))
    return {
        "run": scan.target.run_id, "path": str(scan.target.folder), "kind": "wandb",
        "project": run.get("project") or "", "group": run.get("group") or "",
        "job_type": run.get("job_type") or "",
        "program": env.get("program") or md.get("program") or md.get("codePath") or "",
        "args": list(env.get("args") or md.get("args") or []),
        "host": env.get("host") or run.get("host") or md.get("host") or "",
        "started": started, "ended": scan.last_time or started,
        "writer": env.get("writer_id") or "",
        "slurm_procid": (env.get("slurm") or {}).get("procid"),
    }
