"""What `steadyrun runs` lists, without parsing every row of every run.

`open_run` builds a dict per record: about 1.5 µs and 1 KB of memory per row, so a
listing of a folder holding a few 10 M-row runs would take minutes and tens of GB.
A listing needs only the state (run.json, and each segment's open and close records),
the row count and the last step. Rows are counted as lines that start a row record,
in pieces of the file, and only the tail of each segment is parsed for the last step:
a few hundred ms and a few MB for a 1 M-row run, whatever its length.

A line glued to a torn write (a killed writer, then more appends) is salvaged by the
reader but not counted here; `steadyrun show` gives the exact figures.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ..store.manifest import manifest_of
from ..store.segment_reader import data_end_fd, list_segments, parse_lines
from .reader import RunData, segment_info

ROW_START = b'{"k":"row",'
PIECE = 16 << 20  # bytes read per step while counting
TAIL = 256 << 10  # bytes parsed at a segment's end: rows settled late (deferred tensors)
# are written after rows logged later, so the last step is the latest row of the tail


def _count_rows(path: Path, size: int) -> int:
    """Row lines in the first `size` bytes of a segment, read in pieces (flat memory)."""
    count = 0
    carry = b"\n"  # a file starts like a line
    with open(path, "rb") as fh:
        left = size
        while left > 0 and (piece := fh.read(min(PIECE, left))):
            left -= len(piece)
            data = carry + piece
            count += data.count(b"\n" + ROW_START)
            carry = data[-len(ROW_START):]  # a row start split by the piece boundary
    return count


def _tail(fh: Any, size: int) -> tuple[list[dict[str, Any]], bool]:
    """(the complete records at the end of the first `size` bytes, whether those bytes end
    in a torn row line: counted by `_count_rows`, skipped by the reader).

    The window grows until it holds a row (a table or a late burst of other records can
    follow the last row) or the whole segment. Rows settled late (deferred tensors) are
    written after rows logged later: the latest row of the window is the last step.
    """
    window = TAIL
    while True:
        start = max(0, size - window)
        fh.seek(max(0, start - 1))
        data = fh.read(size - max(0, start - 1))
        if start > 0:  # from just after the first newline: the first line may be cut
            cut = data.find(b"\n")
            data = data[cut + 1:] if cut >= 0 else b""
        end = data.rfind(b"\n") + 1
        torn_row = data[end:].startswith(ROW_START)
        records, _ = parse_lines(data[:end]) if end else ([], 0)
        has_row = any(rec.get("k") == "row" for rec in records)
        if start == 0 or (end and has_row):
            return records, torn_row  # the torn line's start is in the window
        window *= 4


def _first(head: bytes) -> dict[str, Any]:
    try:
        first = orjson.loads(head) if head.endswith(b"\n") else {}
    except orjson.JSONDecodeError:
        return {}
    return first if isinstance(first, dict) else {}


def overview(rdir: Path, paths: list[Path] | None = None,
             counted: Callable[[Path], tuple[int, int]] | None = None,
             manifest: dict[str, Any] | None = None) -> tuple[RunData, int, Any]:
    """(a RunData with manifest, segments and state but no records, rows, last step).

    A reader that already counts each segment's rows as it follows them (the dashboard,
    read/side.py) passes `paths` and `counted(path) -> (data size, rows)`, and the
    `manifest` it may read: the row lines are then not counted again."""
    if manifest is None:
        manifest = manifest_of(rdir)
    segments: dict[str, dict[str, Any]] = {}
    rows = 0
    owner_last: tuple[float, Any] | None = None  # (time, x) of the owner's latest row
    furthest: Any = None  # the largest x of any writer's row
    for path in list_segments(rdir) if paths is None else paths:
        known = counted(path) if counted is not None else None
        try:
            with open(path, "rb") as fh:
                # One moment for the count and the tail alike; the data, not the zeros
                # a live mmap writer keeps after it.
                size = known[0] if known is not None else \
                    data_end_fd(fh.fileno(), os.fstat(fh.fileno()).st_size)
                head = fh.readline()
                tail, torn_row = _tail(fh, size)
        except FileNotFoundError:
            continue
        rows += known[1] if known is not None else _count_rows(path, size) - torn_row
        info = segments[path.stem] = segment_info(_first(head), tail[-1] if tail else None)
        for rec in tail:
            if rec.get("k") != "row" or not isinstance(rec.get("x"), int):
                continue
            x = rec["x"]
            furthest = x if furthest is None else max(furthest, x)
            if info["role"] == "owner" and (owner_last is None
                                            or rec.get("t", 0.0) >= owner_last[0]):
                owner_last = (rec.get("t", 0.0), x)
    data = RunData(id=manifest.get("id", rdir.name), dir=rdir, manifest=manifest, records=[],
                   segments=segments)
    return data, rows, owner_last[1] if owner_last is not None else furthest
