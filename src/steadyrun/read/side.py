"""A run's records other than rows (config, summary, events, media, alerts...), read
without parsing its rows.

Why: a dashboard needs a run's summary, config and anomalies at once, and a 1 M-row
run's rows are most of its bytes. Only the lines that do not start like a row
(store/records.py writes every row as `{"k":"row",...`) are parsed; rows are read as
columns (read/frames.py), and only counted here, on the way (the runs table's row
count, as read/overview.py counts them). A reader that follows a live run keeps a
`SideScan` per segment and scans only the bytes appended since its last call: a
dashboard polling a live 1 M-row run every second reads the new bytes, not the file.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..store.segment_reader import data_end_fd, parse_lines

ROW_START = b'{"k":"row",'
ROW_LINE = b"\n" + ROW_START
# Where a non-row line starts, after a newline: a pattern that begins with a literal
# newline is searched for as fast as `bytes.find` (about 1 ms per MB); one that may also
# match at the start of the data (`(?:^|\n)`) is tried at every byte, 30 times slower.
_OTHER = re.compile(rb'\n(?!\{"k":"row",)(?=.)')
PIECE = 16 << 20  # bytes scanned per step: a 1 GB segment costs flat memory


@dataclass
class SideScan:
    """One segment's non-row records, and how far its bytes were scanned."""
    path: Path
    end: int = 0  # just after the last complete line scanned
    records: list[dict[str, Any]] = field(default_factory=list)
    bad: int = 0  # complete non-row lines that were no record (a torn write, then more)
    tail: bool = False  # the data ends in an incomplete line (live, or a killed writer)
    inode: int | None = None
    rows: int = 0  # complete row lines scanned (as read/overview.py counts them)
    size: int = 0  # where the segment's data ended at the last scan (torn tail included)

    def update(self) -> bool:
        """Scan what was appended since the last call; True if anything changed."""
        lines: list[bytes] = []
        rows = 0
        try:
            with open(self.path, "rb") as fh:
                st = os.fstat(fh.fileno())
                if self.inode not in (None, st.st_ino) or st.st_size < self.end:
                    self.end, self.records, self.bad, self.rows = 0, [], 0, 0  # replaced
                self.inode = st.st_ino
                size = self.size = data_end_fd(fh.fileno(), st.st_size)
                off, piece = self.end, PIECE
                while off < size:
                    fh.seek(off)
                    data = fh.read(min(piece, size - off))
                    if not data:
                        break
                    cut = data.rfind(b"\n") + 1
                    if not cut:
                        if off + len(data) >= size:
                            break  # the data ends in an incomplete line
                        piece *= 2  # one line longer than a piece
                        continue
                    if cut == len(data) and off + cut >= size:
                        # The data's last line holding a NUL byte is an mmap writer's copy
                        # caught half done (store/segment_reader.read_from): left for the
                        # next scan. A NUL byte further up is a torn write: a bad line.
                        last = data.rfind(b"\n", 0, cut - 1) + 1
                        if data.find(b"\0", last) >= 0:
                            cut = last
                            if not cut:
                                break
                    # Indices into the piece, no slices: a copy of every piece would
                    # cost as much as the search.
                    if data.startswith(ROW_START):
                        rows += 1
                    elif data[:1] != b"\n":
                        lines.append(data[:data.find(b"\n") + 1])
                    rows += data.count(ROW_LINE, 0, cut)
                    for m in _OTHER.finditer(data, 0, cut):
                        start = m.end()
                        lines.append(data[start:data.find(b"\n", start) + 1])
                    off += cut
        except OSError:  # gone, or not a file: nothing new to show
            return False
        self.tail = off < size
        self.rows += rows
        if lines:
            recs, bad = parse_lines(b"".join(lines))
            self.records.extend(recs)
            self.bad += bad
        done, self.end = off > self.end, off
        return done


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
