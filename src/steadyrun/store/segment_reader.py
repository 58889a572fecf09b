"""Reading segments: complete lines only, from a byte offset, torn tails counted.

Shared by the reader (whole file) and the sidecar (incremental, from its cursor), so
both agree on what a record is. A line is complete when it ends in a newline; the last
line of a segment whose writer was killed may not, and is left for later (the sidecar)
or counted as torn (the reader). A complete line that is not valid JSON (a torn write
followed by more appends) is also counted, never fatal.
"""

from __future__ import annotations

import contextlib
import gc
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from .layout import SEGMENT_SUFFIX, segments_dir


@dataclass
class Chunk:
    records: list[dict[str, Any]] = field(default_factory=list)
    end: int = 0  # byte offset just after the last complete line read
    bad_lines: int = 0  # complete lines that were not valid records
    tail_bytes: int = 0  # bytes after `end` with no newline yet (torn or still being written)


FIRST_PIECE = 64 << 10


def read_from(path: Path, offset: int = 0, max_bytes: int | None = None) -> Chunk:
    after = b""  # the byte after a partial read
    try:
        with open(path, "rb") as fh:
            fh.seek(offset)
            if max_bytes is None:
                data = fh.read()
            else:
                # A follower caught up with a live mmap writer would read megabytes of
                # zeros on every poll: a first small piece that reaches them is enough.
                data = fh.read(min(max_bytes, FIRST_PIECE))
                if len(data) == FIRST_PIECE < max_bytes and data[-1]:
                    data += fh.read(max_bytes - FIRST_PIECE)
                after = fh.read(1)
    except FileNotFoundError:
        return Chunk(end=offset)
    # An mmap writer's file runs on in zeros past its data (log/segment_file.py): they
    # are not data. The record just before them may be in the middle of its copy, with
    # a hole of zeros inside it even when its newline is already there: it is not
    # complete yet (a killed writer's last record stays so, and reads as a torn tail).
    end = _zeros_start(data)
    at_end = end < len(data)
    if at_end:
        data = data[:end]
        last = data.rfind(b"\n", 0, len(data) - 1) + 1
        if data.find(b"\0", last) >= 0:
            data = data[:last] + data[last:].replace(b"\n", b"")  # its newline ignored
    cut = data.rfind(b"\n") + 1
    chunk = Chunk(end=offset + cut, tail_bytes=len(data) - cut)
    if max_bytes is not None and cut < len(data) and not at_end:
        # Partial reads cut mid-line; only a true end of data can hold a torn tail. A
        # data byte right after the piece means the data goes on; only otherwise is
        # data_end asked, which reads a live mmap writer's megabytes of zeros from the
        # end back (asked for every piece, it was most of the CPU of the writer's digest
        # and of the training process: benchmarks row a7 went from 6 to 65 us a row).
        if after not in (b"", b"\0"):
            chunk.tail_bytes = 0
        else:
            size = data_end(path)
            chunk.tail_bytes = size - chunk.end if offset + len(data) >= size else 0
    if cut:
        chunk.records, chunk.bad_lines = parse_lines(data[:cut])
    return chunk


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while records are built in bulk.

    Parsed records are trees of dicts and numbers: they cannot form cycles, yet every
    few hundred new dicts would make the collector rescan all young ones, and the older
    generations over and over as they grow (about half of the load time of a 1 M-row
    run). It runs again, as it was, when the block ends.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


PARSE_CHUNK = 1 << 20  # bytes of lines parsed per orjson call
_ONLY_DICTS = frozenset((dict,))


def parse_lines(body: bytes) -> tuple[list[dict[str, Any]], int]:
    """Complete lines to records; (records, lines that were not valid records).

    Fast path: about 1 MiB of lines at a time becomes one JSON array (records never hold
    a raw newline, JSON escapes it, so newlines turn into commas) and one orjson call.
    Pieces of that size stay in the CPU caches and reuse the same memory, which makes a
    large segment load about twice as fast as one array of the whole body would. A piece
    with an empty or broken line is parsed again line by line.
    """
    out: list[dict[str, Any]] = []
    bad = 0
    n = len(body)
    pos = 0
    with gc_paused():
        while pos < n:
            end = body.rfind(b"\n", pos, pos + PARSE_CHUNK) + 1
            if end <= pos:  # one line longer than a piece
                end = body.find(b"\n", pos) + 1 or n
            piece = body[pos:end - 1] if body[end - 1:end] == b"\n" else body[pos:end]
            pos = end
            if not piece:  # an empty line
                bad += 1
                continue
            try:
                recs = orjson.loads(b"".join((b"[", piece.replace(b"\n", b","), b"]")))
                if _ONLY_DICTS.issuperset(map(type, recs)):
                    out.extend(recs)
                    continue
            except orjson.JSONDecodeError:
                pass
            bad += _parse_each(piece.split(b"\n"), out)
    return out, bad


def _parse_each(lines: list[bytes], out: list[dict[str, Any]]) -> int:
    """The slow path: line by line, appending good records to `out`; returns the bad."""
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
    return bad


def _salvage(line: bytes) -> Any:
    start = line.find(b'{"k":', 1)
    if start > 0:
        try:
            return orjson.loads(line[start:])
        except orjson.JSONDecodeError:
            return None
    return None


def list_segments(rdir: Path) -> list[Path]:
    seg = segments_dir(rdir)
    if not seg.is_dir():
        return []
    return sorted(seg.glob(f"*{SEGMENT_SUFFIX}"))


TAIL_BLOCK = 1 << 20


def _zeros_from(size: int, read: Callable[[int, int], bytes]) -> int:
    """Where the run of NUL bytes that ends `size` bytes starts (`size` if none), with
    `read(lo, hi)` giving bytes lo..hi. The zeros are read from the end back, a block at
    a time, so the cost is that of the zeros (at most about two windows of a live mmap
    writer, 8 MiB) and nothing for a closed segment, whose last byte is a newline."""
    if not size or read(size - 1, size) != b"\0":
        return size
    n = size
    while n:
        lo = max(0, n - TAIL_BLOCK)
        kept = len(read(lo, n).rstrip(b"\0"))
        if kept:
            return lo + kept
        n = lo
    return 0


def _zeros_start(data: bytes) -> int:
    """`_zeros_from` over bytes in memory."""
    return _zeros_from(len(data), lambda lo, hi: data[lo:hi])


def data_end_fd(fd: int, size: int) -> int:
    """Where the data of a segment ends: before the zeros an mmap writer preallocated."""
    return _zeros_from(size, lambda lo, hi: os.pread(fd, hi - lo, lo))


def data_end(path: Path) -> int:
    """`data_end_fd` for a path; 0 for a segment that vanished."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return 0
    try:
        return data_end_fd(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
