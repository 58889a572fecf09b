"""One writer per segment file: a record is in the file when `append` returns.

The caller encodes the record (orjson, on its own thread) and `append` copies it into
the segment under the writer's lock: one copy into mapped pages of the file, or one
`pwrite` where mapping is not safe (log/segment_file.py). Either way the record is in
the kernel's page cache on return, so killing the process, even with SIGKILL, loses
nothing that was appended. A daemon thread fsyncs at least once a second (a power cut
loses at most about a second), and `flush()` fsyncs on the caller's thread.

When the disk refuses writes (full, quota, file-size limit, I/O error), training goes
on. The error is reported once on stderr (not as a warning: a warnings filter must not
hide lost data), and records wait, in order, in a buffer of at most `high_water` records
(`STEADYRUN_BUFFER_RECORDS`, default 100,000) that the writer thread retries with a
backoff of up to 5 s. While the buffer is full the oldest rows are dropped, a tenth of
the buffer at a time; other records (open, config, summary, events, close) are kept
unless they alone overflow it. Dropping is reported once when it starts and counted:
as soon as the disk takes writes again, a `dropped` event records how many rows and
records were lost and their step range, and stderr says so. A segment whose disk never
recovers reports what it lost at close. Nothing is lost silently. Only these buffered
records can be lost to a SIGKILL: the disk had already refused them.

A full disk must still let the run say how it ended: each writer holds a small reserve
file beside its segment (RESERVE_BYTES, deleted at close). When the disk still refuses
writes at close, the reserve is freed first, so the `dropped` event, the close record and
run.json fit, and the run reads "finished, N rows dropped" rather than "crashed".
"""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from ..store.records import encode, event
from .segment_file import SegmentFile

DEFAULT_BUFFER_RECORDS = 100_000
RESERVE_BYTES = 64 << 10  # room for the end of a run on a full disk
_CLOSE = b'{"k":"close"'
MAX_BACKOFF = 5.0
_ROW = b'{"k":"row"'
_OPEN = b'{"k":"open"'


def buffer_records() -> int:
    """The buffer bound: `STEADYRUN_BUFFER_RECORDS`, else 100,000 (at least 100)."""
    raw = os.environ.get("STEADYRUN_BUFFER_RECORDS", "").strip()
    try:
        return max(100, int(raw)) if raw else DEFAULT_BUFFER_RECORDS
    except ValueError:
        return DEFAULT_BUFFER_RECORDS


def _say(text: str) -> None:
    try:
        print(text, file=sys.stderr, flush=True)
    except (OSError, ValueError):  # stderr closed or on the same full disk: nothing to do
        pass


def _make_reserve(path: Path) -> Path | None:
    """A file of RESERVE_BYTES, or None where even that cannot be written."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError:
        return None
    try:
        os.write(fd, bytes(RESERVE_BYTES))
        return path
    except OSError:
        try:
            os.unlink(path)
        except OSError:
            pass
        return None
    finally:
        os.close(fd)


class SegmentWriter:
    def __init__(self, path: Path, interval: float = 0.2, fsync_every: float = 1.0,
                 high_water: int | None = None, on_beat=None, mode: str | None = None) -> None:
        self.path = path
        self._file = SegmentFile(path, mode)
        self._put = self._file.put
        # Under `lock`: put an encoded record, get back what the disk refused (b"" when
        # all was taken; then call `refused`). The Run's fast path calls it directly.
        self.put_locked = self._put
        # Records the disk refused, waiting in order; empty while the disk takes writes.
        self._queue: collections.deque[Any] = collections.deque()
        # Re-entrant: the Run holds it around its step counter and the append (one lock
        # on the hot path), and calls `append` while holding it elsewhere.
        self._lock = threading.RLock()
        self._interval = interval
        self._fsync_every = fsync_every
        self._high_water = buffer_records() if high_water is None else high_water
        self._last_fsync = time.monotonic()
        self._synced_at = 0  # the data's end at the last fsync
        self._error: OSError | None = None
        self._error_since = 0.0
        self._retry_at = 0.0
        self._backoff = interval
        self._closed = False
        self._wake = threading.Event()
        self._on_beat = on_beat
        # What the bound made us drop, over the segment's life and in the current outage.
        self.dropped_rows = 0
        self.dropped_records = 0
        self._outage: dict[str, Any] | None = None
        self._reserve = _make_reserve(path.with_name(f".{path.stem}.reserve"))
        self._file.on_switch = self._wake.set  # prepare the next window ahead of the hot path
        self._thread = threading.Thread(target=self._loop, name="steadyrun-writer", daemon=True)
        self._thread.start()

    @property
    def bytes_written(self) -> int:
        return self._file.data_end

    def append(self, item: bytes) -> None:
        """Put an encoded record into the segment: in the page cache when this returns.

        Thread-safe. While the disk refuses writes, the record waits in order behind
        the ones it refused.
        """
        with self._lock:
            rest = self.put_locked(item)
            if rest:
                self.refused(item, rest)

    def _hold(self, item: bytes) -> bytes:
        """`put_locked` during an outage: the record waits behind the refused ones."""
        self._enqueue(item)
        return b""

    def _queue_changed(self) -> None:
        # The hot path's one call: straight into the file, or into the queue while
        # records wait (their order is kept).
        self.put_locked = self._hold if self._queue else self._put

    @property
    def lock(self) -> threading.RLock:
        """The writer's lock. A caller that must order its own state with the segment
        (the Run's step counter) holds it around `put_locked` (and `refused`)."""
        return self._lock

    def _enqueue(self, item: bytes) -> None:
        q = self._queue
        q.append(item)
        if len(q) > self._high_water:
            self._drop_oldest()
        self._queue_changed()

    def refused(self, data: bytes, rest: bytes, torn_head: bool = False) -> None:
        """Under `lock`: the disk took only the start of `data` (records), or none of it:
        keep `rest`. With nothing taken, its first record is torn only if `torn_head`."""
        self._report(self._file.error or OSError("the segment refused a write"))
        done = len(data) - len(rest)
        self._requeue(rest, data[done - 1:done] != b"\n" if done else torn_head)

    # ------------------------------------------------------------------ the bound
    def _drop_oldest(self, floor: int | None = None, passes: tuple[bool, ...] = (True, False)
                     ) -> None:
        """Drop the oldest rows (then other records but `open`) down to 90% of the bound;
        with `floor=0, passes=(True,)`, every row still queued."""
        q = self._queue
        if floor is None:
            floor = self._high_water - max(1, self._high_water // 10)
        outage = self._outage_info()
        for rows_only in passes:
            excess = len(q) - floor
            if excess <= 0:
                break
            keep: list[Any] = []
            for _ in range(len(q)):
                if excess <= 0:
                    break
                it = q.popleft()
                if type(it) is bytearray:  # a torn line's remainder: always kept
                    keep.append(it)
                    continue
                elif it.startswith(_ROW):
                    try:
                        x = orjson.loads(it).get("x")
                    except orjson.JSONDecodeError:
                        x = None
                elif rows_only or it.startswith(_OPEN):
                    keep.append(it)  # not a row, or the open record
                    continue
                else:
                    x = None
                excess -= 1
                outage["records"] += 1
                self.dropped_records += 1
                if x is not None:
                    outage["rows"] += 1
                    self.dropped_rows += 1
                    if isinstance(x, int):
                        outage["x_min"] = x if outage["x_min"] is None else min(outage["x_min"], x)
                        outage["x_max"] = x if outage["x_max"] is None else max(outage["x_max"], x)
            q.extendleft(reversed(keep))
        self._queue_changed()
        if not outage["reported"]:
            outage["reported"] = True
            _say(f"steadyrun: the buffer of {self.path.name} is full ({self._high_water} "
                 f"records) and the disk still refuses writes: the oldest rows are dropped "
                 f"from now on, counted, and recorded as a 'dropped' event once writing "
                 f"works again (STEADYRUN_BUFFER_RECORDS sets the bound).")

    def _outage_info(self) -> dict[str, Any]:
        if self._outage is None:
            self._outage = {"records": 0, "rows": 0, "x_min": None, "x_max": None,
                            "since": time.time(), "reported": False}
        return self._outage

    # ------------------------------------------------------------------ writing
    def _drain(self, sync: bool, force: bool = False) -> None:
        """Retry what the disk refused (on the backoff), then fsync when due.

        The fsync runs outside the lock: `append` on the training thread never waits
        for the disk, only for a copy.
        """
        with self._lock:
            q = self._queue
            while q:
                if self._error is not None and not force and time.monotonic() < self._retry_at:
                    return  # a failing disk is retried on the backoff, not on every call
                torn_head = type(q[0]) is bytearray
                chunk = b"".join(q)
                q.clear()
                rest = self._put(chunk)
                if rest:
                    self.refused(chunk, rest, torn_head)
                    return
                if self._error is not None:
                    self._recovered()  # may queue its `dropped` event: the loop writes it
            self._queue_changed()
            end = self._file.data_end
        now = time.monotonic()
        if end != self._synced_at and (sync or now - self._last_fsync >= self._fsync_every):
            try:
                self._file.sync()
            except OSError as exc:
                with self._lock:
                    self._report(exc)
                return
            self._synced_at = end
            self._last_fsync = now
            if self._error is not None:  # an fsync had failed: this one worked
                with self._lock:
                    if self._error is not None and not self._queue:
                        self._recovered()

    def _requeue(self, rest: bytes, torn: bool) -> None:
        """Put what the disk refused back at the head of the buffer, one record per item.

        With `torn`, the first item is the remainder of a line the disk took only in part:
        it is kept as a bytearray, which is never dropped, so the line is completed once
        the disk takes writes again.
        """
        lines = rest.split(b"\n")
        if lines and not lines[-1]:
            lines.pop()
        items: list[Any] = [line + b"\n" for line in lines]
        if torn and items:
            items[0] = bytearray(items[0])
        self._queue.extendleft(reversed(items))
        self._backoff = min(self._backoff * 2, MAX_BACKOFF)
        self._retry_at = time.monotonic() + self._backoff
        if len(self._queue) > self._high_water:
            self._drop_oldest()
        self._queue_changed()

    def _report(self, exc: OSError) -> None:
        if self._error is None:
            self._error_since = time.monotonic()
            _say(f"steadyrun: cannot write {self.path}: {exc}. Training goes on: up to "
                 f"{self._high_water} records wait in memory and are retried; if the disk "
                 f"stays unwritable, the oldest rows are dropped and counted.")
        self._error = exc

    def _dropped_event(self, outage: dict[str, Any]) -> bytes:
        fields = {k: outage[k] for k in ("records", "rows", "x_min", "x_max", "since")}
        return encode(event("dropped", reason="the disk refused writes",
                            buffer_records=self._high_water, until=time.time(), **fields))

    def _recovered(self) -> None:
        took = time.monotonic() - self._error_since
        outage, self._outage = self._outage, None
        self._error = None
        self._backoff = self._interval
        if outage and outage["records"]:
            if not outage.get("sealed"):
                self._queue.append(self._dropped_event(outage))
            _say(f"steadyrun: writing {self.path} works again after {took:.1f}s; "
                 f"{outage['rows']} rows ({outage['records']} records) were dropped while it "
                 f"failed, recorded as a 'dropped' event.")
        else:
            _say(f"steadyrun: writing {self.path} works again after {took:.1f}s; "
                 f"nothing was lost.")
        self._queue_changed()

    @property
    def error(self) -> OSError | None:
        return self._error

    def _queued_rows(self) -> int:
        return sum(1 for it in self._queue if type(it) is bytes and it.startswith(_ROW))

    @property
    def lost_rows(self) -> int:
        """Rows this segment lacks: dropped at the bound, and, while the disk still
        refuses, those waiting in the queue."""
        return self.dropped_rows + (self._queued_rows() if self._error is not None else 0)

    @property
    def pending(self) -> int:
        return len(self._queue)

    def _loop(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self._prepare_window()
                self._drain(sync=False)
                if self._on_beat is not None:
                    self._on_beat()
            except Exception as exc:  # never let the writer thread die silently
                _say(f"steadyrun: writer thread error: {exc!r}")

    def _prepare_window(self) -> None:
        """Map the segment's next window before the training thread needs it."""
        with self._lock:
            want = self._file.next_window()
        if want is None:
            return
        mm = self._file.build_window(*want)  # slow (allocation, page faults): off the lock
        if mm is not None:
            with self._lock:
                self._file.offer(*want, mm)

    def flush(self) -> None:
        """Everything appended before this call is on disk and fsynced when it returns.

        While the disk refuses writes (reported on stderr), it returns at once: the records
        wait in the buffer for the next retry.
        """
        self._drain(sync=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        self._thread.join(timeout=5)
        if self._error is not None:
            self._make_room_for_the_end()
        else:
            self._drain(sync=True, force=True)
        if self._queue and self._error is None:
            self._drain(sync=True, force=True)  # the `dropped` event of a last-minute recovery
        with self._lock:
            if self._error is not None:
                left = self._queue
                rows = self._queued_rows()
                outage = self._outage or {"rows": 0, "records": 0}
                _say(f"steadyrun: {self.path} could not be written at close "
                     f"({self._error}); {rows + outage['rows']} rows "
                     f"({len(left) + outage['records']} records) are lost.")
            try:
                self._file.close()  # the zeros after the data cut, fsync, close
            except OSError as exc:
                _say(f"steadyrun: cannot close {self.path} cleanly: {exc}")
        self._free_reserve()

    def _make_room_for_the_end(self) -> None:
        """The disk still refused writes at close. Write what it takes now; if it is still
        full, the rows still waiting are dropped (counted, as at the bound: they would
        wait for ever) and the reserve is freed for the `dropped` event and the close
        record. Either way the segment ends with how the run ended, the close record
        last, and says what it lacks."""
        with self._lock:
            q = self._queue
            end = q.pop() if q and type(q[-1]) is bytes and q[-1].startswith(_CLOSE) else None
        self._drain(sync=True, force=True)  # a recovery queues its `dropped` event here
        with self._lock:
            if self._error is not None:
                self._drop_oldest(floor=0, passes=(True,))
                outage = self._outage
                if outage is not None and outage["records"]:
                    outage["sealed"] = True
                    self._queue.append(self._dropped_event(outage))
                self._free_reserve()
            if end is not None:
                self._queue.append(end)
            self._queue_changed()
        self._drain(sync=True, force=True)

    def _free_reserve(self) -> None:
        if self._reserve is not None:
            try:
                os.unlink(self._reserve)
            except OSError:
                pass
            self._reserve = None
