"""The writer's side of a segment's digest (store/digest.py): folded from the segment's
own new bytes every few seconds on the writer thread (the heartbeat's callback), at
every `flush()` and at `finish()`; never per row, never on the training thread's
`log()`.

The bytes are read back from the file (the page cache: the writer just wrote them),
so the hot path stays a copy into the segment. A tick folds at most MAX_BYTES: a burst
of rows makes the digest lag, not the training stall; `finish()` folds the rest, and a
reader folds whatever a digest does not cover yet.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ..store import digest
from ..store.layout import digest_path, replace_bytes
from ..store.segment_reader import read_from

MAX_BYTES = 8 << 20  # per writer-thread tick: about 40,000 rows of 10 keys


class DigestKeeper:
    def __init__(self, segment: Path) -> None:
        self.segment = segment
        self.path = digest_path(segment)
        self.state = digest.new()
        self.state["writer"] = segment.stem
        self._lock = threading.Lock()
        self._written_at = -1
        # Called with each batch of newly folded records, in order, on the thread
        # that folds them (the live regression check, log/regression.py).
        self.observers: list[Callable[[list[dict[str, Any]]], None]] = []

    def update(self, limit: int | None = MAX_BYTES) -> None:
        """Fold what the segment gained since the last update, and write the digest.
        Never raises: a digest is an optimisation, and a reader folds what it lacks."""
        try:
            with self._lock:
                d = self.state
                chunk = read_from(self.segment, d["offset"], max_bytes=limit)
                if chunk.end == self._written_at:
                    return
                digest.fold(d, chunk.records)
                d["offset"] = chunk.end
                for observe in self.observers:
                    try:
                        observe(chunk.records)
                    except Exception:  # noqa: BLE001 - never into training
                        pass
                d["updated_at"] = time.time()
                self.path.parent.mkdir(exist_ok=True)
                replace_bytes(self.path, orjson.dumps(d))
                self._written_at = chunk.end
        except Exception:  # noqa: BLE001 - never into training; readers fold the segment
            pass
