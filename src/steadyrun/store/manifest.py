"""run.json, the run's manifest: read with its fields type-checked, updated atomically,
and found from an id, an id prefix or a folder.

Only the owner writes it. A damaged manifest never hides a run: readers fall back to
what the segments say (`manifest_of`), and say what was wrong.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from .layout import MANIFEST, atomic_write_json, fallback_roots, is_run_dir, runs_dir


class ManifestError(RuntimeError):
    """run.json is missing or unreadable; raised with the path so users can act on it."""


def read_manifest(rdir: Path) -> dict[str, Any]:
    path = rdir / MANIFEST
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError as exc:
        raise ManifestError(f"no run at {rdir}: {path} is missing") from exc
    except orjson.JSONDecodeError as exc:
        raise ManifestError(f"{path} is corrupt ({exc}); the segments are intact") from exc
    if not isinstance(data, dict):
        raise ManifestError(f"{path} is corrupt: expected an object")
    bad = [k for k, types in _FIELD_TYPES.items()
           if k in data and data[k] is not None and not _typed(data[k], types)]
    if bad:
        # Valid JSON with fields of the wrong type (a hand edit, a bad merge): drop them and
        # say so, rather than let `tags: 5` or `owner: "x"` crash a reader or the sidecar.
        for k in bad:
            del data[k]
        data["manifest_error"] = (f"{path}: fields of the wrong type were ignored: "
                                  f"{', '.join(bad)}")
    return data


_STR = (str,)
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "id": _STR, "project": _STR, "entity": _STR, "name": _STR, "group": _STR,
    "job_type": _STR, "notes": _STR, "mode": _STR, "state": _STR, "tags": (list,),
    "owner": (dict,), "last_steps": (dict,), "global_step": (int,), "resumes": (int,),
    "exit_code": (int,), "created_at": (int, float), "finished_at": (int, float),
    "format": (int,), "baseline": (dict,),
}


def _typed(value: Any, types: tuple[type, ...]) -> bool:
    if isinstance(value, bool):
        return False
    if not isinstance(value, types):
        return False
    if isinstance(value, list):
        return all(isinstance(v, str) for v in value)
    return True


def update_manifest(rdir: Path, **fields: Any) -> dict[str, Any]:
    """Read-modify-write of run.json. Only the owner writes it, so no lock is needed."""
    try:
        data = read_manifest(rdir)
    except ManifestError:
        data = {}
    data.update(fields)
    atomic_write_json(rdir / MANIFEST, data)
    return data


def resolve_run(ref: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """Accept a run id, an id prefix, or a path to a run folder."""
    return find_run(ref, root)[0]


def find_run(ref: str | os.PathLike[str], root: str | os.PathLike[str] | None = None
             ) -> tuple[Path, Path | None]:
    """(the run's folder, the fallback root it was found in, or None).

    A run whose root could not be written went to a private fallback root (its run.json
    says `fallback_from`); a run not under `root` is looked for there too, so the id that
    `init` printed works with every command."""
    p = Path(ref)
    if is_run_dir(p):
        return p, None
    runs = runs_dir(root)
    found = _in(runs, str(ref))
    if found is not None:
        return found, None
    for fallback in fallback_roots():
        if fallback.resolve() != runs.parent.resolve():
            found = _in(runs_dir(fallback), str(ref))
            if found is not None:
                return found, fallback
    raise ManifestError(f"no run {ref!r} under {runs}")


def _in(runs: Path, ref: str) -> Path | None:
    direct = runs / ref
    if direct.is_dir():
        return direct
    if runs.is_dir():
        matches = [d for d in runs.iterdir() if d.name.startswith(ref)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(sorted(d.name for d in matches))
            raise ManifestError(f"run {ref!r} is ambiguous: {names}")
    return None


def manifest_of(rdir: Path) -> dict[str, Any]:
    """run.json; when it is unreadable, what that error was (the segments still tell the
    state, see `RunData._state_from_segments`)."""
    try:
        return read_manifest(rdir)
    except ManifestError as exc:
        return {"id": rdir.name, "state": "unknown", "manifest_error": str(exc)}
