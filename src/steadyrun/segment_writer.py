"""One writer per segment file: the calling thread encodes, a background thread writes.

The training thread pays for one orjson encode and one deque append per record. A
daemon thread drains the deque every `interval` seconds with a single buffered write
and fsyncs at least once a second, so a crash (even SIGKILL) loses at most about a
second of records; `flush()` drains and fsyncs on the caller's thread for a hard
guarantee. The deque is the bounded buffer: when the disk falls behind by more than
`high_water` records, the caller drains it itself (back-pressure, nothing dropped).
"""

from __future__ import annotations

import collections
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from .records import encode_row


class SegmentWriter:
    def __init__(self, path: Path, interval: float = 0.2, fsync_every: float = 1.0,
                 high_water: int = 100_000, on_beat=None) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._queue: collections.deque[bytes] = collections.deque()
        self._lock = threading.Lock()
        self._interval = interval
        self._fsync_every = fsync_every
        self._high_water = high_water
        self._last_fsync = time.monotonic()
        self._dirty = False
        self._error: OSError | None = None
        self._error_reported = False
        self._closed = False
        self._wake = threading.Event()
        self._on_beat = on_beat
        self.bytes_written = 0
        # Keys whose `rejected` event is already in this segment: one event per key.
        self.rejected_keys: set[str] = set()
        self._thread = threading.Thread(target=self._loop, name="steadyrun-writer", daemon=True)
        self._thread.start()

    def append(self, item: bytes | tuple[int, float, dict[str, Any]]) -> None:
        """Hot path: one deque append. Thread-safe without a lock (deque ops are atomic).

        An item is an encoded line, or a raw row `(x, t, values)` that the writer thread
        encodes, which keeps the JSON encode off the training thread.
        """
        q = self._queue
        q.append(item)
        if len(q) > self._high_water:
            self._drain(sync=False)

    def _drain(self, sync: bool) -> None:
        with self._lock:
            q = self._queue
            n = len(q)
            if n:
                rejected = self.rejected_keys
                chunk = b"".join([encode_row(*it, rejected) if type(it) is tuple else it
                                  for it in [q.popleft() for _ in range(n)]])
                rest = self._write(chunk)
                if rest:
                    # Keep what did not reach the file for the next try, ahead of newer ones.
                    q.appendleft(rest)
                    return
                self._dirty = True
            now = time.monotonic()
            if self._dirty and (sync or now - self._last_fsync >= self._fsync_every):
                try:
                    os.fsync(self._fd)
                except OSError as exc:
                    self._report(exc)
                    return
                self._dirty = False
                self._last_fsync = now

    def _write(self, data: bytes) -> bytes:
        """Write all of `data`; return the part that could not be written."""
        view = memoryview(data)
        try:
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
                self.bytes_written += n
        except OSError as exc:
            self._report(exc)
            return bytes(view)
        if self._error is not None:
            self._error = None
            warnings.warn(f"steadyrun: writing {self.path} works again; nothing was lost",
                          RuntimeWarning, stacklevel=2)
            self._error_reported = False
        return b""

    def _report(self, exc: OSError) -> None:
        self._error = exc
        if not self._error_reported:
            self._error_reported = True
            warnings.warn(f"steadyrun: cannot write {self.path}: {exc}. Training goes on; "
                          f"{len(self._queue)} records wait in memory and are retried.",
                          RuntimeWarning, stacklevel=3)

    @property
    def error(self) -> OSError | None:
        return self._error

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._drain(sync=False)
                if self._on_beat is not None:
                    self._on_beat()
            except Exception as exc:  # never let the writer thread die silently
                warnings.warn(f"steadyrun: writer thread error: {exc!r}", RuntimeWarning,
                              stacklevel=1)

    def flush(self) -> None:
        """Everything appended before this call is on disk and fsynced when it returns."""
        self._drain(sync=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        self._drain(sync=True)
        with self._lock:
            try:
                os.close(self._fd)
            except OSError:
                pass
