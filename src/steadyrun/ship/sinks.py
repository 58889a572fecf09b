"""The sinks a run ships to, and the one place their shipping pipelines are built.

Both the sidecar and `steadyrun sync` call `build_shippers`, so a sink is set up the
same way whether it ships while training runs or long after. A new sink adds one line
to SINKS: its name and the factory in its own folder.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..store.cursor import Cursor
from ..store.layout import sink_path
from .shipper import Shipper

# name -> "module:factory". A factory takes (rdir, mode, *, owner_pid, init_timeout,
# in_thread) and returns a sink (sink.py). `mode` is what the sidecar chose for sinks
# that use a network: "online" or "offline" (files to upload later).
SINKS: dict[str, str] = {
    "wandb": "steadyrun.ship.wandb.sink:make_sink",
}


def make_sink(name: str, rdir: Path, mode: str, **options: Any) -> Any:
    module, _, factory = SINKS[name].partition(":")
    return getattr(importlib.import_module(module), factory)(rdir, mode, **options)


def build_shippers(rdir: Path, mode: str, *, follow: bool, owner_pid: int | None = None,
                   init_timeout: float = 30.0, in_thread: bool = False,
                   progress: Callable[[int, int], None] | None = None) -> list[Shipper]:
    """One shipper per sink of the run, each with its own cursor and lock."""
    return [Shipper(rdir, make_sink(name, rdir, mode, owner_pid=owner_pid,
                                    init_timeout=init_timeout, in_thread=in_thread),
                    follow=follow, owner_pid=owner_pid, progress=progress)
            for name in SINKS]


def pending_bytes(rdir: Path) -> int:
    """Bytes of records some sink has not shipped yet (the largest backlog of any sink)."""
    return max((Cursor.load(sink_path(rdir, name, "cursor")).unshipped_bytes(rdir)
                for name in SINKS), default=0)
