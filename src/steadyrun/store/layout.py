"""The names on disk: where a run lives, what each of its files is called, and the file
primitives everything else relies on.

The one module that spells a file or folder name of a run: the writer, the readers,
the sidecar and the command line all ask it, so they cannot disagree.

    <root>/runs/<run id>/
      run.json                      the manifest (store/manifest.py)
      context.json                  what a child process needs to join (log/context.py)
      segments/<writer>.jsonl       one append-only log per writing process
      segments/<writer>.beat        its heartbeat, touched every 2 s
      media/ files/ artifacts/      images, saved files, artifact manifests
      sinks/<sink>.cursor           what a sink has shipped
      sinks/<sink>.lock             held by the one shipper of a sink
      sinks/<sink>.json             a sink's status (mode, its own folders, state)
      sinks/sidecar.log             the sidecar's output
      cache/<writer>.arrow          a closed segment's rows as columns (read/colcache.py):
                                    an optimisation only, deleting it changes no result
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

RUN_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"  # [a-z0-9], valid in W&B ids
RUN_ID_LENGTH = 8
MANIFEST = "run.json"
CONTEXT = "context.json"
SEGMENTS = "segments"
SINKS = "sinks"
MEDIA = "media"
FILES = "files"
CONSOLE = "console"  # log/console.py: each writer's stdout and stderr
ARTIFACTS = "artifacts"
STAGED = "staged"  # under artifacts/: a wandb.Artifact's files gathered (hard links)
RUN_FOLDERS = (SEGMENTS, MEDIA, FILES, ARTIFACTS, SINKS)
SEGMENT_SUFFIX = ".jsonl"
HEARTBEAT_SUFFIX = ".beat"
CACHE = "cache"
DIGESTS = "digests"
COLUMNS_SUFFIX = ".arrow"


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


def fallback_roots() -> list[Path]:
    """Where a run goes when its root cannot be written (log/run_folder.py), and where
    the commands look for a run they cannot find under the root."""
    import tempfile

    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return [Path(cache) / "steadyrun", Path(tempfile.gettempdir()) / f"steadyrun-{uid}"]


def sync_command(rdir: Path, command: str = "sync") -> str:
    """`steadyrun sync <id>` for a run in the default root; with `--dir <root>` for a
    run anywhere else (a fallback root), so the printed command works as it is."""
    root = rdir.parent.parent
    try:
        default = root.resolve() == root_dir().resolve()
    except OSError:
        default = False
    where = "" if default else f"--dir {root} "
    return f"steadyrun {where}{command} {rdir.name}"


def runs_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """`<root>/runs`, the folder holding one folder per run."""
    return root_dir(root) / "runs"


def segments_dir(rdir: Path) -> Path:
    return rdir / SEGMENTS


def segment_path(rdir: Path, writer: str) -> Path:
    return rdir / SEGMENTS / f"{writer}{SEGMENT_SUFFIX}"


def console_path(rdir: Path, writer: str) -> Path:
    """A writer's captured stdout and stderr (log/console.py), one JSON line per line."""
    return rdir / CONSOLE / f"{writer}.jsonl"


def column_cache_path(segment: Path) -> Path:
    """`cache/<writer>.arrow`: the columnar copy of a closed segment's rows. Its own
    folder, not `segments/`: the logs there are the data, this is derived and disposable
    (`rm -r cache` is always safe), and nothing that walks the logs ever meets it."""
    return segment.parent.parent / CACHE / f"{segment.stem}{COLUMNS_SUFFIX}"


def digest_path(segment: Path) -> Path:
    """`digests/<writer>.json`: a segment's digest (store/digest.py), kept by its writer.
    One per writer, because the writers of a run are separate processes with no lock
    between them; derived like the cache: deleting it only makes the next read slower."""
    return segment.parent.parent / DIGESTS / f"{segment.stem}.json"


def heartbeat_path(segment: Path) -> Path:
    """The heartbeat beside a segment: its mtime says the writer is alive."""
    return segment.with_suffix(HEARTBEAT_SUFFIX)


def owner_heartbeats(rdir: Path) -> list[Path]:
    return list((rdir / SEGMENTS).glob(f"owner-*{HEARTBEAT_SUFFIX}"))


def sinks_dir(rdir: Path) -> Path:
    return rdir / SINKS


def sink_path(rdir: Path, sink: str, what: str) -> Path:
    """`sinks/<sink>.<what>`: its `cursor`, `lock` or `json` status."""
    return rdir / SINKS / f"{sink}.{what}"


def sidecar_log_path(rdir: Path) -> Path:
    return rdir / SINKS / "sidecar.log"


def files_dir(rdir: Path) -> Path:
    return rdir / FILES


def staged_dir(rdir: Path, name: str) -> Path:
    """A folder of its own for one `log_artifact(wandb.Artifact)` of several files: the
    first `artifacts/staged/<name>-<n>` not taken yet."""
    base = rdir / ARTIFACTS / STAGED
    n = 0
    while (base / f"{name}-{n}").exists():
        n += 1
    return base / f"{name}-{n}"


def is_run_dir(path: Path) -> bool:
    """A folder that holds a run: its manifest, or at least its segments."""
    return (path / MANIFEST).exists() or (path / SEGMENTS).is_dir()


def hostname() -> str:
    """The same name as socket.gethostname(), without importing socket on init's path."""
    uname = getattr(os, "uname", None)
    if uname is not None:
        return uname().nodename
    import socket

    return socket.gethostname()


def make_run_dirs(rdir: Path) -> None:
    """Create the run's folders owner-only: they may hold configs and code diffs."""
    for sub in RUN_FOLDERS:
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


def replace_bytes(path: Path, data: bytes) -> None:
    """Temp file and rename, without fsync: for derived files (digests), which a reader
    validates and can rebuild, rewritten every few seconds."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(3).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, orjson.dumps(obj, option=orjson.OPT_INDENT_2) + b"\n")




# ---------------------------------------------------------------------- sink status
def read_sink_status(rdir: Path, sink: str = "wandb") -> dict[str, Any]:
    """`sinks/<sink>.json`, or {} before the sink first wrote it (or while it is torn)."""
    try:
        data = orjson.loads(sink_path(rdir, sink, "json").read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def update_sink_status(rdir: Path, sink: str = "wandb", **fields: Any) -> dict[str, Any]:
    """Read-modify-write of `sinks/<sink>.json`; one shipper per sink holds its lock."""
    data = read_sink_status(rdir, sink)
    data.update(fields)
    atomic_write_json(sink_path(rdir, sink, "json"), data)
    return data
