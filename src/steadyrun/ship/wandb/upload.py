"""Upload the W&B offline folders of a run, oldest first, before anything goes online.

W&B's offline mode ignores resume, so a run that was resumed, or whose sidecar fell back
to offline files, has several `offline-run-*-<id>` folders with one run id and disjoint,
increasing `_step` ranges. They must reach the server in order, and before new rows are
shipped online, or the server would see steps go back. `wandb sync` does the upload;
`sinks/wandb.json` remembers which folders are done, so this is idempotent.

`wandb sync` exits 0 even when it uploaded nothing: when it is not authenticated, and
when it cannot read a transaction log (wandb 0.31). Its exit code is therefore not the
test of success: wandb-core writes `<log>.wandb.synced` beside each log it synced, and a
folder counts as uploaded only when every log in it has that marker.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ...store.layout import read_sink_status, update_sink_status


def pending_offline_dirs(rdir: Path) -> list[str]:
    status = read_sink_status(rdir, "wandb")
    done = set(status.get("uploaded") or [])
    return [d for d in status.get("run_dirs") or []
            if "offline-run-" in Path(d).name and d not in done and Path(d).is_dir()]


def unsynced_logs(folder: Path) -> list[Path]:
    """The transaction logs in `folder` that wandb has not marked as synced."""
    return [log for log in sorted(folder.glob("*.wandb"))
            if not log.with_suffix(".wandb.synced").exists()]


def upload_offline_dirs(rdir: Path, timeout: float = 600.0) -> list[str]:
    """`wandb sync` each pending folder in order; stop at the first failure."""
    uploaded: list[str] = []
    for folder in pending_offline_dirs(rdir):
        proc = subprocess.run([sys.executable, "-m", "wandb", "sync", folder],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
        left = unsynced_logs(Path(folder))
        if proc.returncode != 0 or left:
            said = (proc.stderr.strip() or proc.stdout.strip())[-500:]
            print(f"steadyrun: wandb sync {folder} failed (exit {proc.returncode}; "
                  f"{len(left)} log(s) not marked synced): {said}", file=sys.stderr)
            break
        uploaded.append(folder)
        done_before = read_sink_status(rdir, "wandb").get("uploaded") or []
        update_sink_status(rdir, "wandb", uploaded=list(dict.fromkeys([*done_before, folder])))
    return uploaded
