"""The context file that lets a subprocess join its parent's run.

`run.child_env()` writes `<run>/context/<writer>.json` (mode 0600, no secrets in it) and
points STEADYRUN_CONTEXT at it. A plain `steadyrun.init()` in the child reads it back.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import orjson

from .layout import atomic_write_bytes

ENV = "STEADYRUN_CONTEXT"


class ContextError(RuntimeError):
    """STEADYRUN_CONTEXT is set but unusable; says which file and why."""


def write_context(rdir: Path, run_id: str, mode: str) -> Path:
    path = rdir / "context.json"
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
    try:
        data = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ContextError(f"{ENV}={raw}: the file is corrupt: {exc}") from None
    if not isinstance(data, dict) or not {"run_id", "dir"} <= data.keys():
        raise ContextError(f"{ENV}={raw}: the file is corrupt: missing run_id or dir")
    return data
