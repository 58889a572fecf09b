"""The shipping loop shared by the sidecar (`--follow`) and `steadyrun sync` (once).

It tails every segment of a run, including segments that appear later, merges each
batch in time order, gives every record of a kind the sink sequences the sink's next
sequence number (W&B: `_step`), hands the batch to the sink (sink.py), and moves the
cursor. With `follow`, it ends when the owner
has closed its segment and every other writer is closed or gone, or when the owner died
(the run then ends as crashed). Either way, everything on disk is shipped first.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..store.cursor import Cursor
from ..store.layout import heartbeat_path, hostname, sink_path
from ..store.liveness import beat_fresh, pid_alive
from ..store.manifest import read_manifest
from ..store.segment_reader import data_end, list_segments, read_from
from .sink import Sink

BATCH_BYTES = 4 << 20


@dataclass
class Outcome:
    rows: int  # rows shipped by this call
    total_rows: int  # rows shipped to this sink over the run's life
    state: str  # finished / failed / crashed / partial (once-mode on a live run)
    exit_code: int
    torn: int


class Shipper:
    def __init__(self, rdir: Path, sink: Sink, *, follow: bool = False,
                 owner_pid: int | None = None, poll: float = 0.2,
                 progress: Callable[[int, int], None] | None = None) -> None:
        self.rdir = rdir
        self.sink = sink
        self.follow = follow
        self.owner_pid = owner_pid
        self.poll = poll
        self.progress = progress
        self.cursor = Cursor.load(sink_path(rdir, sink.name, "cursor"))
        self._shipped = 0
        self._torn = 0
        self.stop_requested = False

    # ------------------------------------------------------------------ batches
    def _read_batch(self, start: dict[str, int], limit: dict[str, int] | None = None,
                    cap: int | None = None
                    ) -> tuple[list[tuple[float, int, dict[str, Any]]], dict[str, int]]:
        """Records from `start` offsets (up to `limit`, at most `cap` bytes a segment),
        tagged for a stable time merge."""
        batch: list[tuple[float, int, dict[str, Any]]] = []
        end: dict[str, int] = {}
        for i, path in enumerate(list_segments(self.rdir)):
            name = path.stem
            off = start.get(name, 0)
            if limit is not None:
                if name not in limit:
                    continue
                size = limit[name] - off
                chunk = read_from(path, off, max_bytes=size if cap is None else min(size, cap))
            else:
                chunk = read_from(path, off, max_bytes=BATCH_BYTES)
            end[name] = chunk.end
            self._torn = max(self._torn, chunk.bad_lines)
            for j, rec in enumerate(chunk.records):
                batch.append((rec.get("t", 0.0), i * 10_000_000 + j, rec))
        # Metric definitions first: a goal must reach W&B before the rows it summarises.
        batch.sort(key=lambda item: (item[2]["k"] != "metric", item[0], item[1]))
        return batch, end

    def _ship(self, batch: list[tuple[float, int, dict[str, Any]]], first_seq: int,
              skip_through: int | None = None) -> tuple[int, int]:
        """Send a batch; `skip_through` is the last sequence number the sink already holds.
        Returns the next sequence number and the rows shipped."""
        sequenced = self.sink.sequenced
        replay = getattr(self.sink, "replay", None)
        seq = first_seq
        rows = 0
        recs = [rec for _, _, rec in batch]
        skip_until = -1
        if skip_through is not None:
            # Skip every record up to the last sequenced record the sink already has.
            s = first_seq
            for idx, rec in enumerate(recs):
                if rec["k"] in sequenced:
                    if s > skip_through:
                        break
                    skip_until = idx
                    s += 1
        for idx, rec in enumerate(recs):
            kind = rec["k"]
            number = None
            if kind in sequenced:
                number = seq
                seq += 1
            if idx > skip_until:
                self.sink.ship(rec, number)
                rows += kind == "row"
            elif replay is not None:
                replay(rec)  # the sink holds it from an earlier pass: bookkeeping only
        return seq, rows

    # ------------------------------------------------------------------ the loop
    def recover(self) -> None:
        """Re-ship what the sink's own files lack from recent batches, skipping what arrived;
        first, replay to a sink that keeps state everything before where this pass starts."""
        entry = held = None
        if self.cursor.journal:
            held = self.sink.durable_seq()
            entry = self.cursor.first_missing(held)
            if entry is None:
                # The sink holds every journaled batch, also one that a killed shipper
                # journaled and shipped but never committed: count it as shipped instead of
                # shipping it twice.
                self.cursor.complete()
            else:
                self.cursor.rewind(entry)
        self._replay()
        if entry is None:
            return
        batch, end = self._read_batch(entry["start"], entry["end"])
        first = entry["first_step"]
        skip = held if held is not None and held >= first else None
        self.cursor.begin(entry["start"], end, *self._count(batch))
        next_seq, rows = self._ship(batch, first, skip)
        self._shipped += rows
        self.cursor.commit(end, next_seq, self._count(batch)[1])

    def _replay(self) -> None:
        """Hand a sink that keeps state over the records it is given (its optional
        `replay`: W&B's row budget) every record before where this pass starts, in
        shipping order, and ship none of them.

        Why: a pass starts with a fresh sink, so a sidecar killed and restarted, or a
        `sync` after it, would judge the rest of the run without the earlier pass's
        memory. For the row budget that broke its promise (found by
        tests/test_wandb_budget.py): rows it had held back went uncounted in
        `steadyrun/sampled_out`, a key last logged before the kill lost its true last
        value, and rows the rule holds back shipped. The cost is one read of the run's
        log so far, once per pass, and only for a sink that asks for it.
        """
        replay = getattr(self.sink, "replay", None)
        until = {name: off for name, off in self.cursor.offsets.items() if off > 0}
        if replay is None or not until:
            return
        start: dict[str, int] = {}
        while True:
            batch, end = self._read_batch(start, until, cap=BATCH_BYTES)
            for _, _, rec in batch:
                replay(rec)
            if all(end.get(name, 0) >= off for name, off in until.items()) or end == start:
                return  # all of it (or a line no batch can hold, which no pass shipped)
            start = end

    def _count(self, batch: list[tuple[float, int, dict[str, Any]]]) -> tuple[int, int]:
        """(sequence numbers the batch takes, rows in it)."""
        sequenced = self.sink.sequenced
        seqs = rows = 0
        for _, _, rec in batch:
            if rec["k"] in sequenced:
                seqs += 1
            rows += rec["k"] == "row"
        return seqs, rows

    def step_once(self) -> int:
        """Ship one batch of whatever is new; return the number of records it held (and
        of console lines, for a sink that ships them: `ship_console`)."""
        console = getattr(self.sink, "ship_console", None)
        lines = console() if console is not None else 0
        start = dict(self.cursor.offsets)
        batch, end = self._read_batch(start)
        if not batch:
            self.cursor.offsets.update(end)
            return lines
        steps, rows = self._count(batch)
        self.cursor.begin(start, end, steps, rows)
        next_seq, shipped = self._ship(batch, self.cursor.next_seq)
        self._shipped += shipped
        self.cursor.commit(end, next_seq, rows)
        if self.progress is not None:
            self.progress(self._shipped, self.cursor.unshipped_bytes(self.rdir))
        return len(batch) + lines

    def run(self) -> Outcome:
        """Ship under the sink's lock: two shippers on one cursor would duplicate rows.

        The sidecar waits for a previous one (a crash then a quick resume); a one-off
        sync on a run whose sidecar is still shipping leaves it to the sidecar.
        """
        with _exclusive(sink_path(self.rdir, self.sink.name, "lock"), wait=self.follow) as held:
            if not held:
                return Outcome(0, self.cursor.rows, "busy", 0, self._torn)
            self.cursor = Cursor.load(self.cursor.path)  # the previous holder moved it
            return self._run_locked()

    def _run_locked(self) -> Outcome:
        if not self.cursor.journal and self.cursor.unshipped_bytes(self.rdir) == 0 \
                and self.sink.settled() and (not self.follow or self._writers_done()[0]):
            # Nothing new, and the destination was closed after the last record: a
            # follower that waited for another shipper's lock finds the work done too.
            return Outcome(0, self.cursor.rows, "up-to-date", 0, self._torn)
        try:
            manifest = read_manifest(self.rdir)
        except Exception as exc:
            # The segments are intact: ship them under the run id, and say what is missing.
            print(f"steadyrun: {exc}; shipping run {self.rdir.name} without its name, project "
                  f"and tags (W&B's defaults apply)", file=sys.stderr)
            manifest = {"id": self.rdir.name}
        held = self.sink.open(manifest, self.cursor.next_seq)
        if isinstance(held, int) and held > self.cursor.next_seq and not self.cursor.journal:
            self.cursor.next_seq = held  # never a number the destination already has
            self.cursor.save()
        self.recover()
        while True:
            n = self.step_once()
            if n:
                continue
            if not self.follow or self.stop_requested:
                break
            done, _ = self._writers_done()
            if done:
                while self.step_once():  # anything written between the check and now
                    pass
                break
            time.sleep(self.poll)
        state, code = self._final_state()
        self.sink.close(code, state)
        self.cursor.settle()
        return Outcome(self._shipped, self.cursor.rows, state, code, self._torn)

    # ------------------------------------------------------------------ ending
    def _segment_states(self) -> list[dict[str, Any]]:
        """Per segment: role, pid, host, closed (with exit code), from what was shipped."""
        out = []
        for path in list_segments(self.rdir):
            head = read_from(path, 0, max_bytes=4096).records[:1]
            first = head[0] if head else {}
            size = data_end(path)  # not the zeros after a live mmap writer's data
            tail_from = max(0, size - 4096)
            tail = read_from(path, tail_from).records if size else []
            close = tail[-1] if tail and tail[-1]["k"] == "close" else None
            fresh = beat_fresh(heartbeat_path(path))
            out.append({"name": path.stem, "role": first.get("role"), "pid": first.get("pid"),
                        "host": first.get("host"), "close": close, "fresh": fresh})
        return out

    def _alive(self, seg: dict[str, Any]) -> bool:
        if seg["close"] is not None:
            return False
        pid = seg.get("pid")
        if pid and seg.get("host") == hostname():
            return pid_alive(int(pid))
        return seg["fresh"]  # another node's writer: judged by its heartbeat

    def _writers_done(self) -> tuple[bool, str]:
        segs = self._segment_states()
        owner = self._current_owner(segs)
        if owner is None:
            return (self.owner_pid is not None and not pid_alive(self.owner_pid)), "crashed"
        if owner["close"] is not None:
            others_open = [s for s in segs if s is not owner and self._alive(s)]
            return not others_open, owner["close"]["state"]
        if not self._alive(owner):
            return True, "crashed"
        return False, "running"

    def _current_owner(self, segs: list[dict[str, Any]]) -> dict[str, Any] | None:
        owners = [s for s in segs if s["role"] == "owner"]
        if self.owner_pid is not None:
            mine = [s for s in owners if s["pid"] == self.owner_pid]
            if mine:
                return mine[-1]
        return owners[-1] if owners else None

    def _final_state(self) -> tuple[str, int]:
        segs = self._segment_states()
        owner = self._current_owner(segs)
        if owner is not None and owner["close"] is not None:
            return owner["close"]["state"], int(owner["close"].get("exit_code", 0))
        if owner is not None and self._alive(owner) and not self.follow:
            return "partial", 0
        return "crashed", 255


@contextlib.contextmanager
def _exclusive(path: Path, wait: bool) -> Iterator[bool]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)
