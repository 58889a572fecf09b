"""What a sink has shipped: a byte offset per segment, and the next sequence number.

The shipper numbers the records a sink keeps in order (for W&B, its history rows: the
number is W&B's `_step`). Shipping is exactly-once through a journal of recent batches.
Each batch is journaled (segment ranges, first sequence number, how many it takes)
before it goes to the sink. A sink may make what it accepted durable on its own
schedule (wandb-core writes its transaction log every second), so a batch it accepted
may still be lost if the shipper and the sink's writer die together. A new shipper
therefore asks the sink which sequence number its own files really hold, rewinds to the
first journaled batch that is not all there, and ships again exactly the part that is
missing. Entries older than `keep` seconds are long durable and dropped.

On disk (`sinks/<sink>.cursor`) the numbers keep the names they had when W&B was the
only sink, `next_step` and `first_step`, so cursors of existing runs read unchanged.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .layout import atomic_write_bytes


@dataclass
class Cursor:
    path: Path
    offsets: dict[str, int] = field(default_factory=dict)
    next_seq: int = 0
    rows: int = 0
    journal: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Cursor:
        try:
            data = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return cls(path)
        except orjson.JSONDecodeError as exc:
            raise RuntimeError(f"steadyrun: cursor {path} is corrupt ({exc}); move it away "
                               f"to re-ship the run from the start") from exc
        return cls(path, offsets=dict(data.get("offsets") or {}),
                   next_seq=int(data.get("next_step", 0)), rows=int(data.get("rows", 0)),
                   journal=list(data.get("journal") or []))

    def save(self) -> None:
        atomic_write_bytes(self.path, orjson.dumps({
            "offsets": self.offsets, "next_step": self.next_seq, "rows": self.rows,
            "journal": self.journal}))

    def begin(self, start: dict[str, int], end: dict[str, int], steps: int, rows: int) -> None:
        """Journal the batch about to be shipped (`steps`: the sequence numbers it takes),
        then advance as if it arrived."""
        self.journal.append({"start": start, "end": end, "first_step": self.next_seq,
                             "steps": steps, "rows": rows, "t": time.time()})
        self.save()

    def commit(self, end: dict[str, int], next_seq: int, rows: int, keep: float = 60.0) -> None:
        self.offsets.update(end)
        self.next_seq = next_seq
        self.rows += rows
        cutoff = time.time() - keep
        self.journal = [e for e in self.journal if e["t"] >= cutoff]
        self.save()

    def committed(self, entry: dict[str, Any]) -> bool:
        """Whether `commit` followed `begin` for `entry`: the offsets reached its end."""
        return all(self.offsets.get(seg, 0) >= off for seg, off in entry["end"].items())

    def complete(self) -> None:
        """The sink holds every journaled batch: commit the last one if a crash skipped it."""
        last = self.journal[-1] if self.journal else None
        if last is not None and not self.committed(last):
            self.commit(last["end"], last["first_step"] + last["steps"], last["rows"])

    def settle(self) -> None:
        """The sink has made everything durable (a finished W&B run): forget the journal."""
        self.journal = []
        self.save()

    def first_missing(self, held: int | None) -> dict[str, Any] | None:
        """The oldest journaled batch whose records the sink does not all hold (`held`: the
        highest sequence number its own files hold)."""
        held = -1 if held is None else held
        for entry in self.journal:
            last = entry["first_step"] + max(entry["steps"], 1) - 1
            if held < last:
                return entry
        return None

    def unshipped_bytes(self, rdir: Path) -> int:
        """Bytes of the run's segments past this cursor (a vanished segment counts 0)."""
        from .segment_reader import data_end, list_segments

        # The data's end, not the file's: a live mmap writer's file runs on in zeros.
        return sum(max(0, data_end(path) - self.offsets.get(path.stem, 0))
                   for path in list_segments(rdir))

    def rewind(self, entry: dict[str, Any]) -> None:
        """Back to the start of `entry`; it and everything after it ship again."""
        idx = self.journal.index(entry)
        dropped = self.journal[idx:]
        self.journal = self.journal[:idx]
        # Only committed batches were counted; one a crash left uncommitted never was.
        self.rows -= sum(e["rows"] for e in dropped if self.committed(e))
        reset: dict[str, int] = {}
        for e in dropped:  # each segment goes back to its earliest dropped start
            for seg, off in e["start"].items():
                reset.setdefault(seg, off)
            for seg in e["end"]:
                reset.setdefault(seg, 0)
        self.offsets.update(reset)
        self.next_seq = entry["first_step"]


def stepped_bound(rdir: Path, ships: bool = True) -> dict[str, int]:
    """Per sink of the run, the next sequence number after every stepped record the run
    holds on disk: its cursor's `next_step` plus the stepped records not yet shipped. A
    run that ships but has no cursor yet counts from 0 for W&B. What a state dict carries
    so that a resume elsewhere never reuses a number (Run.state_dict)."""
    from .layout import SINKS, sink_path
    from .records import STEPPED_KINDS
    from .segment_reader import list_segments

    names = sorted(p.stem for p in (rdir / SINKS).glob("*.cursor"))
    if ships and not names:
        names = ["wandb"]
    starts = tuple(b'\n{"k":"' + k.encode() + b'"' for k in STEPPED_KINDS)
    out: dict[str, int] = {}
    for name in names:
        cursor = Cursor.load(sink_path(rdir, name, "cursor"))
        count = cursor.next_seq
        for seg in list_segments(rdir):
            try:
                with open(seg, "rb") as fh:
                    fh.seek(cursor.offsets.get(seg.stem, 0))
                    data = b"\n" + fh.read()
            except FileNotFoundError:
                continue
            count += sum(data.count(start) for start in starts)
        out[name] = count
    return out
