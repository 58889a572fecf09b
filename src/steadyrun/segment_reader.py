"""Reading segments: complete lines only, from a byte offset, torn tails counted.

Shared by the reader (whole file) and the sidecar (incremental, from its cursor), so
both agree on what a record is. A line is complete when it ends in a newline; the last
line of a segment whose writer was killed may not, and is left for later (the sidecar)
or counted as torn (the reader). A complete line that is not valid JSON (a torn write
followed by more appends) is also counted, never fatal.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson


@dataclass
class Chunk:
    records: list[dict[str, Any]] = field(default_factory=list)
    end: int = 0  # byte offset just after the last complete line read
    bad_lines: int = 0  # complete lines that were not valid records
    tail_bytes: int = 0  # bytes after `end` with no newline yet (torn or still being written)


def read_from(path: Path, offset: int = 0, max_bytes: int | None = None) -> Chunk:
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            data = fh.read() if max_bytes is None else fh.read(max_bytes)
    except FileNotFoundError:
        return Chunk(end=offset)
    cut = data.rfind(b"\n") + 1
    chunk = Chunk(end=offset + cut, tail_bytes=len(data) - cut)
    if max_bytes is not None and cut < len(data):
        # Partial reads cut mid-line; only a true end of file can hold a torn tail.
        size = os.path.getsize(path)
        chunk.tail_bytes = size - chunk.end if offset + len(data) >= size else 0
    if cut:
        chunk.records, chunk.bad_lines = parse_lines(data[:cut])
    return chunk


def parse_lines(body: bytes) -> tuple[list[dict[str, Any]], int]:
    """Fast path: one orjson call over the whole body; per line only if something is bad."""
    lines = body.split(b"\n")
    if lines and not lines[-1]:
        lines.pop()
    try:
        recs = orjson.loads(b"[" + b",".join(lines) + b"]")
        if all(type(r) is dict for r in recs):
            return recs, 0
    except orjson.JSONDecodeError:
        pass
    out: list[dict[str, Any]] = []
    bad = 0
    for line in lines:
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            # A torn write can glue a half record to the next one: the half is lost and
            # counted, what follows it is kept.
            bad += 1
            rec = _salvage(line)
            if type(rec) is dict:
                out.append(rec)
            continue
        if type(rec) is dict:
            out.append(rec)
        else:
            bad += 1
    return out, bad


def _salvage(line: bytes) -> Any:
    start = line.find(b'{"k":', 1)
    if start > 0:
        try:
            return orjson.loads(line[start:])
        except orjson.JSONDecodeError:
            return None
    return None


def list_segments(rdir: Path) -> list[Path]:
    seg = rdir / "segments"
    if not seg.is_dir():
        return []
    return sorted(seg.glob("*.jsonl"))


def iter_all(rdir: Path) -> Iterator[tuple[Path, Chunk]]:
    for path in list_segments(rdir):
        yield path, read_from(path)
