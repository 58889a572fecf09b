"""A run's records other than rows (config, summary, events, media, alerts...), read
without parsing its rows.

Why: a dashboard needs a run's summary, config and anomalies at once, and a 1 M-row
run's rows are most of its bytes. Only the lines that do not start like a row
(store/records.py writes every row as `{"k":"row",...`) are parsed; rows are read as
columns (read/frames.py). A reader that follows a live run keeps a `SideScan` per
segment and scans only the bytes appended since its last call.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store.segment_reader import data_end_fd, parse_lines

_OTHER = re.compile(rb'(?:^|\n)(?!\{"k":"row",)(?=.)')  # where a non-row line starts


@dataclass
class SideScan:
    """One segment's non-row records, and how far its bytes were scanned."""
    path: Path
    end: int = 0  # just after the last complete line scanned
    records: list[dict[str, Any]] = field(default_factory=list)
    bad: int = 0  # complete non-row lines that were no record (a torn write, then more)
    tail: bool = False  # the data ends in an incomplete line (live, or a killed writer)
    inode: int | None = None

    def update(self) -> bool:
        """Scan what was appended since the last call; True if anything changed."""
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if self.inode not in (None, st.st_ino) or st.st_size < self.end:
                    self.end, self.records, self.bad = 0, [], 0  # replaced: start over
                self.inode = st.st_ino
                size = data_end_fd(fh.fileno(), st.st_size)
                if size <= self.end:
                    return False
                fh.seek(self.end)
                data = fh.read(size - self.end)
        except FileNotFoundError:
            return False
        cut = data.rfind(b"\n") + 1
        self.tail = cut < len(data)
        body = data[:cut]
        # A line holding a NUL byte (an mmap writer's copy caught half done) is left for
        # the next scan, as store/segment_reader does.
        hole = body.find(b"\0")
        if hole >= 0:
            cut = body.rfind(b"\n", 0, hole) + 1
            body = body[:cut]
            self.tail = True
        lines = []
        for m in _OTHER.finditer(body):
            start = m.end()
            stop = body.find(b"\n", start)
            lines.append(body[start:stop + 1])
        if lines:
            recs, bad = parse_lines(b"".join(lines))
            self.records.extend(recs)
            self.bad += bad
        self.end += cut
        return bool(cut)


def side_records(scans: list[SideScan]) -> list[dict[str, Any]]:
    """The non-row records of all segments, in time order (as `open_run` merges them),
    each tagged with its segment's writer in `_seg`."""
    out = []
    for scan in scans:
        stem = scan.path.stem
        for rec in scan.records:
            rec.setdefault("_seg", stem)
            out.append(rec)
    out.sort(key=lambda r: r.get("t", 0.0) if isinstance(r.get("t"), (int, float)) else 0.0)
    return out
