"""Where a run lives on disk, and the two file primitives everything else relies on.

Kept apart from the writer so the reader, the sidecar and the command line agree on
one layout without importing the training-side machinery.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

RUN_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"  # [a-z0-9], valid in W&B ids
RUN_ID_LENGTH = 8
MANIFEST = "run.json"
HEARTBEAT = "heartbeat"


def root_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The root holding `runs/`: argument, then STEADYRUN_DIR, then ./steadyrun."""
    if explicit is not None:
        return Path(explicit)
    return Path(os.environ.get("STEADYRUN_DIR") or "steadyrun")


def new_run_id() -> str:
    """Eight characters of [a-z0-9]: short enough to type, and a valid W&B run id."""
    # os.urandom with rejection sampling (no modulo bias): the `secrets` module would
    # cost init a few milliseconds of imports for the same bytes.
    out: list[str] = []
    limit = 256 - 256 % len(RUN_ID_ALPHABET)
    while len(out) < RUN_ID_LENGTH:
        out.extend(RUN_ID_ALPHABET[b % len(RUN_ID_ALPHABET)] for b in os.urandom(16)
                   if b < limit)
    return "".join(out[:RUN_ID_LENGTH])


ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
ID_RULE = "1 to 64 characters of [A-Za-z0-9_-], starting with a letter or digit"


def is_run_id(text: str) -> bool:
    """A generated id, or one the user chose (seed 002's `run_20251022_123456`): safe as a
    folder name and valid as a W&B run id."""
    return (0 < len(text) <= 64 and text[0] not in "_-" and ID_CHARS.issuperset(text))


def run_dir(run_id: str, root: str | os.PathLike[str] | None = None) -> Path:
    return root_dir(root) / "runs" / run_id


def segments_dir(rdir: Path) -> Path:
    return rdir / "segments"


def sinks_dir(rdir: Path) -> Path:
    return rdir / "sinks"


def hostname() -> str:
    """The same name as socket.gethostname(), without importing socket on init's path."""
    uname = getattr(os, "uname", None)
    if uname is not None:
        return uname().nodename
    import socket

    return socket.gethostname()


def make_run_dirs(rdir: Path) -> None:
    """Create the run's folders owner-only: they may hold configs and code diffs."""
    for sub in ("segments", "media", "files", "artifacts", "sinks"):
        (rdir / sub).mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(rdir, 0o700)


def atomic_write_bytes(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Temp file, fsync, rename: a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(3).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")


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
    "format": (int,),
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
    p = Path(ref)
    if (p / MANIFEST).exists() or (p / "segments").is_dir():
        return p
    runs = root_dir(root) / "runs"
    direct = runs / str(ref)
    if direct.is_dir():
        return direct
    if runs.is_dir():
        matches = [d for d in runs.iterdir() if d.name.startswith(str(ref))]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            names = ", ".join(sorted(d.name for d in matches))
            raise ManifestError(f"run {ref!r} is ambiguous: {names}")
    raise ManifestError(f"no run {ref!r} under {runs}")
