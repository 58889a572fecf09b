"""Which runs a reference names: `compare`, `leaderboard` and baselines resolve runs here.

A reference is one of:
- a run id, a unique id prefix, or a run folder (store/manifest.find_run: the fallback
  roots too);
- `latest`: the newest run of the root by its `created_at` (this word wins over a run
  whose id starts with it);
- `tag:NAME`: every run with the tag NAME (a mapping tag `{"model": "mlp"}` is the tag
  `model:mlp`, so `tag:model:mlp`);
- `group:NAME`: every run of the group NAME.

The last two select several runs at once (`is_many`), oldest first; a reference that
selects nothing raises `SelectError` (a ManifestError: the command line reports it in
one line, exit 2). Only run.json is read, never a segment.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..store.layout import runs_dir
from ..store.manifest import ManifestError, find_run, manifest_of

LATEST = "latest"
MANY = ("tag:", "group:")


class SelectError(ManifestError):
    """A reference that names no run (or names it ambiguously)."""


def is_many(ref: str) -> bool:
    """Whether `ref` selects a set of runs (`tag:NAME`, `group:NAME`) rather than one."""
    return isinstance(ref, str) and ref.startswith(MANY)


def run_dirs(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Every run folder under the root, in name order (cheap: one directory listing)."""
    runs = runs_dir(root)
    try:
        return sorted(d for d in runs.iterdir() if d.is_dir())
    except OSError:
        return []


def _created(rdir: Path, manifest: dict[str, Any]) -> float:
    at = manifest.get("created_at")
    if isinstance(at, (int, float)) and not isinstance(at, bool):
        return float(at)
    try:
        return rdir.stat().st_mtime
    except OSError:
        return 0.0


def filter_runs(root: str | os.PathLike[str] | None = None, *, project: str | None = None,
                group: str | None = None, tag: str | None = None,
                dirs: Iterable[Path] | None = None) -> list[tuple[Path, dict[str, Any]]]:
    """(folder, run.json) of the runs under the root that match every filter given,
    oldest first by `created_at`. An unreadable run.json matches no filter (and every
    run when none is given)."""
    out = []
    for rdir in run_dirs(root) if dirs is None else dirs:
        m = manifest_of(rdir)
        if project is not None and m.get("project") != project:
            continue
        if group is not None and m.get("group") != group:
            continue
        if tag is not None and tag not in (m.get("tags") or []):
            continue
        out.append((rdir, m))
    out.sort(key=lambda dm: (_created(*dm), dm[0].name))
    return out


def select_runs(ref: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
                ) -> list[Path]:
    """The run folders `ref` names (see the module's doc): one for an id, a prefix, a
    folder or `latest`; one or more, oldest first, for `tag:NAME` and `group:NAME`.
    Raises SelectError when it names none, or when a prefix is ambiguous."""
    text = os.fspath(ref)
    where = runs_dir(root)
    if text == LATEST:
        runs = filter_runs(root)
        if not runs:
            raise SelectError(f"no runs under {where}, so no latest one")
        return [runs[-1][0]]
    for prefix, field in (("tag:", "tag"), ("group:", "group")):
        if text.startswith(prefix):
            name = text[len(prefix):]
            if not name:
                raise SelectError(f"{text!r} names no {field}: write {prefix}NAME")
            runs = filter_runs(root, **{field: name})
            if not runs:
                raise SelectError(f"no run with {field} {name!r} under {where}")
            return [rdir for rdir, _ in runs]
    try:
        return [find_run(text, root)[0]]
    except SelectError:
        raise
    except ManifestError as exc:
        raise SelectError(str(exc)) from None
