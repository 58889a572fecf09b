"""Which runs a PATH names: a steadyrun run or root, a W&B run folder (`offline-run-*`,
`run-*`), a `run-*.wandb` file, or a `wandb/` folder (or the folder holding it) of many.

Anything else is bad input, said in one line that names the path and what was wrong
(exit 2): doctor must never report "no findings" for a folder it did not understand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..ship.wandb.txlog import find_run_files, run_id_of
from ..store.layout import is_run_dir


class DoctorInputError(Exception):
    """A PATH doctor cannot read: the message names the file and what was wrong."""


@dataclass
class WandbTarget:
    """One W&B run: its `.wandb` files in replay order (a resumed run may have several)."""

    run_id: str
    files: list[Path] = field(default_factory=list)

    @property
    def folder(self) -> Path:
        return self.files[-1].parent


@dataclass
class Targets:
    wandb: list[WandbTarget] = field(default_factory=list)
    steadyrun: list[Path] = field(default_factory=list)


def discover(paths: list[str]) -> Targets:
    """Every run the PATHs name, each once; raises DoctorInputError for a PATH that names
    none (missing, empty, not W&B's and not steadyrun's)."""
    out = Targets()
    wandb_files: list[Path] = []
    seen_sr: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise DoctorInputError(f"{p}: no such file or folder")
        if p.is_file():
            if run_id_of(p) is None:
                raise DoctorInputError(
                    f"{p}: not a W&B transaction log (run-<id>.wandb), a W&B run folder, a "
                    f"wandb/ folder or a steadyrun run")
            wandb_files.append(p)
            continue
        sr = _steadyrun_runs(p)
        if sr:
            for rdir in sr:
                if rdir.resolve() not in seen_sr:
                    seen_sr.add(rdir.resolve())
                    out.steadyrun.append(rdir)
            continue
        found = find_run_files(p)
        if not found:
            what = "is empty" if not any(p.iterdir()) else "holds no run-*.wandb file"
            raise DoctorInputError(
                f"{p}: {what}: not a W&B run folder (offline-run-*, run-*), a wandb/ folder "
                f"or a steadyrun run or root")
        wandb_files.extend(found)
    out.wandb = _group(wandb_files)
    return out


def _steadyrun_runs(p: Path) -> list[Path]:
    """A steadyrun run folder, or a root (`<root>/runs/*`, or `runs/` itself)."""
    if is_run_dir(p):
        return [p]
    runs = p / "runs" if (p / "runs").is_dir() else p
    found = sorted(d for d in runs.iterdir() if d.is_dir() and is_run_dir(d)) \
        if runs.is_dir() else []
    return found


def _group(files: list[Path]) -> list[WandbTarget]:
    """Files of one run id form one run, replayed in the order find_run_files gives
    (oldest first: a resumed run's pieces)."""
    by_id: dict[str, WandbTarget] = {}
    seen: set[Path] = set()
    for f in files:
        key = f.resolve()
        if key in seen:
            continue
        seen.add(key)
        rid = run_id_of(f) or f.stem
        by_id.setdefault(rid, WandbTarget(rid)).files.append(f)
    return list(by_id.values())
