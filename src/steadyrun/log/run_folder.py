"""Where a run's folder goes: under the root asked for, or a private fallback.

Kept apart from `api` because it is the one place that decides what happens when the
disk says no at `init` (read-only, full or foreign root): training must go on, and the
user must be told where the run went.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ..store.layout import fallback_roots, make_run_dirs, runs_dir, segments_dir, sync_command


def writable_run_dir(root: Path, run_id: str, strict: bool
                      ) -> tuple[Path | None, str | None]:
    """The run's folder, created and proven writable; elsewhere when it cannot be.

    A read-only, full or foreign root must not kill training: by default the run goes to
    a private fallback root (`$XDG_CACHE_HOME/steadyrun`, else `~/.cache/steadyrun`, else
    `<tmp>/steadyrun-<uid>`), with one line on stderr saying where, and run.json keeps the
    root it was meant for (`fallback_from`). Strict mode raises a clear OSError instead.
    Only when no folder at all can be written does the run record nothing, and stderr
    says so. Returns (folder or None, the refused root when a fallback was used).
    """
    rdir = runs_dir(root) / run_id
    try:
        prove_writable(rdir)
        return rdir, None
    except OSError as exc:
        refused = exc
    if strict:
        raise type(refused)(refused.errno, f"steadyrun: cannot write the run folder {rdir} "
                                           f"({refused.strerror or refused}); point "
                                           f"STEADYRUN_DIR or dir= at a writable folder "
                                           f"(without strict, the run would go to a "
                                           f"private fallback folder)") from refused
    tried = [f"{rdir}: {refused}"]
    for fallback in fallback_roots():
        frdir = runs_dir(fallback) / run_id
        try:
            private_root(fallback)
            prove_writable(frdir)
        except OSError as exc:
            tried.append(f"{frdir}: {exc}")
            continue
        print(f"steadyrun: cannot write {rdir} ({refused}); run {run_id} is recorded in "
              f"{frdir} instead. Training goes on. Read it with: "
              f"{sync_command(frdir, 'show')}", file=sys.stderr)
        return frdir, str(root)
    print("steadyrun: no folder can be written, this run is NOT recorded:\n  "
          + "\n  ".join(tried), file=sys.stderr)
    return None, None


def private_root(path: Path) -> None:
    """Create `path` owner-only and refuse one that another user made or can write."""
    import stat

    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or (hasattr(os, "getuid") and st.st_uid != os.getuid()) \
            or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise PermissionError(13, "not a private folder of this user", str(path))


def prove_writable(rdir: Path) -> None:
    """make_run_dirs, then create and remove a file where run.json and segments go."""
    make_run_dirs(rdir)
    for folder in (rdir, segments_dir(rdir)):
        probe = folder / f".probe-{os.getpid()}-{os.urandom(3).hex()}"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        os.unlink(probe)
