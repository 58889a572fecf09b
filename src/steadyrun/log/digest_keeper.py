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

import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ..store import digest
from ..store.layout import digest_path, replace_bytes
from ..store.segment_reader import data_end, read_from

MAX_BYTES = 8 << 20  # per writer-thread tick: about 40,000 rows of 10 keys
PIECE = 256 << 10  # bytes parsed at a time: about 1,300 rows, a few MB of dicts
MAX_LINE = 256 << 20  # a record longer than this is left to the reader


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
        """Fold what the segment gained since the last update (at most `limit` bytes;
        None: all of it), and write the digest. Never raises: a digest is an
        optimisation, and a reader folds what it lacks.

        Read and folded PIECE bytes at a time: the records of a piece are dicts (about
        1 KB a row), so a burst of 40,000 rows folded at once would lift the training
        process's RSS by tens of MB (the flat-memory test caught it)."""
        try:
            with self._lock:
                d = self.state
                left = limit
                piece = PIECE
                while left is None or left > 0:
                    start = d["offset"]
                    chunk = read_from(self.segment, start,
                                      max_bytes=piece if left is None else min(piece, left))
                    if chunk.end == start:
                        # nothing whole yet, or a record longer than the piece
                        if piece < MAX_LINE and data_end(self.segment) - start > piece:
                            piece *= 4
                            continue
                        break
                    piece = PIECE
                    digest.fold(d, chunk.records)
                    d["offset"] = chunk.end
                    for observe in self.observers:
                        try:
                            observe(chunk.records)
                        except Exception:  # noqa: BLE001 - never into training
                            pass
                    if left is not None:
                        left -= chunk.end - start
                    del chunk
                if d["offset"] == self._written_at:
                    return
                d["updated_at"] = time.time()
                if not self.path.parent.is_dir():
                    self.path.parent.mkdir(mode=0o700, exist_ok=True)
                    os.chmod(self.path.parent, 0o700)  # whatever the umask, as every folder
                replace_bytes(self.path, orjson.dumps(d))
                self._written_at = d["offset"]
        except Exception:  # noqa: BLE001 - never into training; readers fold the segment
            pass
