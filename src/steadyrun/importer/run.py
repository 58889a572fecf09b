"""`import_runs`: each W&B run named becomes a steadyrun run, or is left as it is.

- The run id is the W&B run id (when it is a valid steadyrun id; source.steadyrun_id).
- Unchanged: the run already holds an import whose fingerprint (the `.wandb` files'
  paths, sizes and mtimes) equals the source's: nothing is read or written.
- Changed (the W&B run went on, or was resumed): imported again and swapped in whole.
  A resumed W&B run often lives in two folders of one id (an offline run and its
  resumed piece). Named together they are one import; named one after the other, the
  second import also takes the pieces the first one recorded (when they still exist),
  so the run holds every piece whatever the order of the commands.
- A steadyrun run of that id that was not imported (steadyrun's own run, which shipped
  to W&B under its id) is never replaced: BadSource, naming `--dir`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..store.layout import runs_dir
from ..store.manifest import manifest_of
from .convert import Counts, convert
from .source import BadSource, Source, find_run_files_sorted, find_sources, steadyrun_id


@dataclass
class Outcome:
    wandb_id: str
    run_id: str
    rdir: Path
    status: str  # "imported", "reimported" or "unchanged"
    counts: Counts
    sources: list[Path]


def import_runs(paths: list[str | os.PathLike[str]], root: str | os.PathLike[str] | None = None,
                *, partial: bool = False, procs: int | None = None) -> list[Outcome]:
    """Import every W&B run under `paths` into the root's runs/. Raises BadSource (or
    convert.TornLog) before writing anything for a path that cannot be imported.
    `procs`: processes reading each log (default: by its size and the cores; see
    importer/parallel.py)."""
    sources = find_sources(paths)
    return [import_one(src, root, partial=partial, procs=procs) for src in sources]


def import_one(src: Source, root: str | os.PathLike[str] | None = None, *,
               partial: bool = False, procs: int | None = None) -> Outcome:
    runs = runs_dir(root)
    runs.mkdir(parents=True, exist_ok=True)
    run_id = steadyrun_id(src.wandb_id)
    rdir = runs / run_id
    status = "imported"
    if rdir.exists():
        manifest = manifest_of(rdir)
        before = manifest.get("imported_from")
        if not isinstance(before, dict) or before.get("wandb_run_id") != src.wandb_id:
            raise BadSource(f"a steadyrun run {run_id} that was not imported from W&B run "
                            f"{src.wandb_id} already exists at {rdir}; import into another "
                            f"root with --dir")
        _add_earlier_pieces(src, before)
        if before.get("fingerprint") == src.fingerprint():
            return Outcome(src.wandb_id, run_id, rdir, "unchanged",
                           Counts(wandb_rows=int(before.get("wandb_rows") or 0)), src.logs)
        status = "reimported"
    counts = convert(src, runs, rdir, partial=partial, fingerprint=src.fingerprint(),
                     resumes=len(src.logs) - 1, procs=procs)
    return Outcome(src.wandb_id, run_id, rdir, status, counts, src.logs)


def _add_earlier_pieces(src: Source, before: dict[str, object]) -> None:
    logs = before.get("logs")
    if not isinstance(logs, list):
        return
    for item in logs:
        path = Path(str(item.get("path"))) if isinstance(item, dict) else None
        if path is not None and path.is_file() and path not in src.logs:
            src.logs.append(path)
    src.logs = find_run_files_sorted(src.logs)
