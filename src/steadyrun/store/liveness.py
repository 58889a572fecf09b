"""Whether a writer of a run is still alive: its process on this host, its heartbeat
file from another node.

The reader (a run's state) and the shipper (when a follow ends) must judge a writer
the same way, so the rule lives here, beside the layout of the heartbeat files.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

STALE_AFTER = 30.0  # seconds without a heartbeat before a running writer counts as dead


def pid_alive(pid: int) -> bool:
    """A process of this host that exists and is not a zombie (exited, not yet reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def beat_fresh(path: Path, now: float | None = None) -> bool:
    """A heartbeat file touched within STALE_AFTER seconds."""
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return False
    return (time.time() if now is None else now) - mtime < STALE_AFTER
