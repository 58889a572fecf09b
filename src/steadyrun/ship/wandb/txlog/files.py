"""Finding a run's transaction logs, and waiting until W&B has finished writing one."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING

from .chunks import has_exit_record

if TYPE_CHECKING:  # pragma: no cover - typing only
    pass

_RUN_FILE_RE = re.compile(r"^run-(?P<id>.+)\.wandb$")
_RUN_DIR_TS_RE = re.compile(r"(?:^|-)run-(?P<ts>\d{8}_\d{6})-")
_WANDB_DIR_NAMES = ("wandb", ".wandb")

def run_id_of(path: Path) -> str | None:
    """The run id in a transaction log's name (`run-<id>.wandb`), or None."""
    m = _RUN_FILE_RE.match(path.name)
    return m.group("id") if m else None


def _order_key(path: Path) -> tuple[str, int, str]:
    """Folder timestamp first (creation order at 1 s resolution), then mtime."""
    m = _RUN_DIR_TS_RE.search(path.parent.name)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return (m.group("ts") if m else "", mtime, str(path))


def find_run_files(wandb_dir: str | os.PathLike[str], run_id: str | None = None) -> list[Path]:
    """All ``run-*.wandb`` files below a W&B directory, oldest first.

    Accepts the directory that contains ``wandb/`` (what ``WANDB_DIR`` points
    to), the ``wandb/`` (or ``.wandb/``) folder itself, a single run folder, or
    a ``.wandb`` file, because callers have any of those at hand.  The
    ``latest-run`` symlink is skipped so a run is never counted twice.  Oldest
    first is the order in which a resumed run's pieces must be replayed.
    """
    root = Path(wandb_dir)
    if root.is_file():
        files = [root]
    else:
        bases = [root] + [root / n for n in _WANDB_DIR_NAMES if (root / n).is_dir()]
        found: dict[Path, Path] = {}
        for base in bases:
            candidates = list(base.glob("run-*.wandb")) + list(base.glob("*run-*/run-*.wandb"))
            for f in candidates:
                if f.parent.is_symlink() or f.is_symlink() or not f.is_file():
                    continue
                found.setdefault(f.resolve(), f)
        files = list(found.values())
    if run_id is not None:
        files = [f for f in files if run_id_of(f) == run_id]
    return sorted(files, key=_order_key)


# --------------------------------------------------------------------------
# Waiting for a writer to finish


def _open_for_write_by_any(path: Path) -> bool | None:
    """True if some process holds ``path`` open for writing; None if unknowable.

    Only Linux's /proc is consulted (dependency-free).  Read-only holders such
    as viewers do not count, since they never add data.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    try:
        target = path.resolve()
    except OSError:
        return None
    saw_any = False
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        fd_dir = pid_dir / "fd"
        try:
            fds = list(fd_dir.iterdir())
        except OSError:
            continue
        saw_any = True
        for fd in fds:
            try:
                if Path(os.readlink(fd)) != target:
                    continue
                info = (pid_dir / "fdinfo" / fd.name).read_text()
            except OSError:
                continue
            flags = next(
                (
                    int(line.split()[1], 8)
                    for line in info.splitlines()
                    if line.startswith("flags:")
                ),
                0,
            )
            if flags & (os.O_WRONLY | os.O_RDWR):
                return True
    return False if saw_any else None


def wait_complete(
    path: str | os.PathLike[str],
    timeout: float = 30.0,
    *,
    poll: float = 0.05,
    stable_polls: int = 2,
    check_writers: bool = True,
    require_exit: bool = True,
) -> bool:
    """Wait until a run's log is final; return False if ``timeout`` expires.

    ``run.finish()`` can return before ``wandb-core`` has flushed its last
    block, and even the user process exiting does not mean ``wandb-core`` is
    done, so a reader that opens the file straight away may see a partial log.
    Final means: the RunExitRecord is present, the size has not changed for
    ``stable_polls`` consecutive polls and (on Linux, if ``check_writers``) no
    process still has the file open for writing.  ``path`` may be the
    ``.wandb`` file or anything :func:`find_run_files` accepts (then every
    file found must be final).  ``require_exit=False`` is for runs that were
    killed: it only waits for the writer to go away and the size to settle,
    since such a log never gets its exit record.
    """
    deadline = time.monotonic() + timeout
    p = Path(path)
    last_sizes: dict[Path, int] | None = None
    stable = 0
    exit_seen: dict[tuple[Path, int], bool] = {}
    while True:
        files = [p] if p.suffix == ".wandb" else (find_run_files(p) if p.exists() else [])
        sizes: dict[Path, int] = {}
        for f in files:
            try:
                sizes[f] = f.stat().st_size
            except OSError:
                pass
        if sizes and sizes == last_sizes:
            stable += 1
        else:
            stable = 0
        last_sizes = sizes
        if sizes and stable >= stable_polls:
            done = True
            for f, size in sizes.items() if require_exit else ():
                key = (f, size)
                if key not in exit_seen:
                    try:
                        exit_seen[key] = has_exit_record(f)
                    except (OSError, ValueError):
                        exit_seen[key] = False
                if not exit_seen[key]:
                    done = False
                    break
            if done and check_writers:
                done = not any(_open_for_write_by_any(f) for f in sizes)
            if done:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


# --------------------------------------------------------------------------
# Decoding into plain Python


