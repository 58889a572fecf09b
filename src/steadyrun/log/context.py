"""The context file that lets a subprocess join its parent's run.

`run.child_env()` writes `<run>/context.json` (mode 0600, no secrets in it: the run id,
its folder and its mode) and points STEADYRUN_CONTEXT at it. A plain `steadyrun.init()` in the child reads it back.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import orjson

from ..store.layout import CONTEXT, atomic_write_bytes, is_run_id

ENV = "STEADYRUN_CONTEXT"
MAX_CONTEXT_BYTES = 64 * 1024


class ContextError(RuntimeError):
    """STEADYRUN_CONTEXT is set but unusable; says which file and why."""


def write_context(rdir: Path, run_id: str, mode: str) -> Path:
    path = rdir / CONTEXT
    data = {"run_id": run_id, "dir": str(rdir.resolve()), "mode": mode, "version": 1}
    atomic_write_bytes(path, orjson.dumps(data), mode=0o600)
    return path


def load_context_from_env() -> dict[str, Any] | None:
    raw = os.environ.get(ENV)
    if not raw:
        return None
    path = Path(raw)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ContextError(f"{ENV}={raw}: the file does not exist (was the parent's run "
                           f"deleted, or the variable copied to another machine?)") from None
    except OSError as exc:
        raise ContextError(f"{ENV}={raw}: cannot read it: {exc}") from None
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise ContextError(f"{ENV}={raw}: the file belongs to another user (uid {st.st_uid}); "
                           f"refusing to join a run that is not yours")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise ContextError(f"{ENV}={raw}: the file is writable by others; refusing it")
    # A FIFO or device would block or never end; a context file is a few hundred bytes.
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_CONTEXT_BYTES:
        raise ContextError(f"{ENV}={raw}: not a context file (a regular file of at most "
                           f"{MAX_CONTEXT_BYTES} bytes); refusing it")
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ContextError(f"{ENV}={raw}: the file is corrupt: {exc}") from None
    if not isinstance(data, dict) or not {"run_id", "dir"} <= data.keys():
        raise ContextError(f"{ENV}={raw}: the file is corrupt: missing run_id or dir")
    if not isinstance(data["run_id"], str) or not is_run_id(data["run_id"]) \
            or not isinstance(data["dir"], str) or not os.path.isabs(data["dir"]) \
            or not isinstance(data.get("mode", "local"), str):
        raise ContextError(f"{ENV}={raw}: the file is corrupt: run_id, dir or mode has the "
                           f"wrong form")
    return data
