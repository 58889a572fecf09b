"""The segment's bytes (log/segment_file.py) and how readers see a live mmap segment.

Real files, read back with the readers' own `read_from` and `data_end`.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import orjson
import pytest

import steadyrun.log.segment_file as sf
from steadyrun.log.segment_writer import SegmentWriter
from steadyrun.store import records
from steadyrun.store.segment_reader import data_end, read_from


def _row(i: int, pad: int = 0) -> bytes:
    return records.encode(records.row(i, float(i), {"v": float(i), "pad": "x" * pad}))


def test_a_live_mmap_segment_runs_on_in_zeros_that_no_reader_takes_for_data(tmp_path):
    path = tmp_path / "seg.jsonl"
    f = sf.SegmentFile(path, "mmap")
    lines = [_row(i) for i in range(100)]
    for line in lines:
        assert f.put(line) == b""
    data = b"".join(lines)
    assert path.stat().st_size > len(data)  # a window allocated ahead
    assert path.read_bytes()[len(data):].strip(b"\0") == b""
    assert data_end(path) == f.data_end == len(data)
    chunk = read_from(path)
    assert [r["x"] for r in chunk.records] == list(range(100))
    assert chunk.tail_bytes == 0 and chunk.bad_lines == 0 and chunk.end == len(data)
    # The sidecar's way: pieces from its offset.
    off, seen = 0, []
    while True:
        part = read_from(path, off, max_bytes=1000)
        if part.end == off:
            break
        seen += [r["x"] for r in part.records]
        off = part.end
    assert seen == list(range(100))
    f.close()
    assert path.stat().st_size == len(data)  # the zeros cut at close
    assert path.read_bytes() == data


def test_a_record_caught_mid_copy_is_incomplete_even_with_its_newline(tmp_path):
    """A copy may store a record's end before its middle: a reader must wait for it."""
    path = tmp_path / "seg.jsonl"
    first = _row(0)
    second = bytearray(_row(1))
    second[5:15] = bytes(10)  # a hole of zeros; its newline is already there
    path.write_bytes(first + bytes(second) + bytes(4096))
    chunk = read_from(path)
    assert [r["x"] for r in chunk.records] == [0]
    assert chunk.end == len(first) and chunk.bad_lines == 0
    assert chunk.tail_bytes == len(second) - 1  # incomplete (a dead writer: torn)
    path.write_bytes(first + _row(1) + bytes(4096))  # the copy done
    later = read_from(path, chunk.end)
    assert [r["x"] for r in later.records] == [1]


def test_zeros_inside_the_data_are_a_bad_line_not_the_end(tmp_path):
    path = tmp_path / "seg.jsonl"
    path.write_bytes(_row(0) + b"\0\0\0garbage\n" + _row(1))
    chunk = read_from(path)
    assert [r["x"] for r in chunk.records] == [0, 1] and chunk.bad_lines == 1


def test_records_cross_windows_prepared_ahead_or_not(tmp_path):
    path = tmp_path / "seg.jsonl"
    f = sf.SegmentFile(path, "mmap")
    lines = [_row(i, pad=997) for i in range(1200)]  # ~1.2 MB: several windows
    for i, line in enumerate(lines):
        if i % 300 == 0 and (want := f.next_window()) is not None:
            mm = f.build_window(*want)  # what the writer thread does
            assert mm is not None
            f.offer(*want, mm)
        assert f.put(line) == b""
    off, seen = 0, []  # a follower's pieces, larger than the first small read
    while (part := read_from(path, off, max_bytes=150_000)).end > off:
        seen += [r["x"] for r in part.records]
        off = part.end
    assert seen == list(range(1200)) and part.tail_bytes == 0
    f.close()
    assert path.read_bytes() == b"".join(lines)


def test_a_record_larger_than_a_window(tmp_path):
    path = tmp_path / "seg.jsonl"
    f = sf.SegmentFile(path, "mmap")
    big = _row(1, pad=sf.MAX_WINDOW + 12345)
    for line in (_row(0), big, _row(2)):
        assert f.put(line) == b""
    f.close()
    assert [r["x"] for r in read_from(path).records] == [0, 1, 2]


def test_no_fallocate_here_falls_back_to_pwrite(tmp_path, monkeypatch):
    def refuse(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(sf.os, "posix_fallocate", refuse)
    path = tmp_path / "seg.jsonl"
    f = sf.SegmentFile(path, "mmap")
    lines = [_row(i) for i in range(10)]
    for line in lines:
        assert f.put(line) == b""
    assert f.mode == "write" and "not supported" in f.why
    assert path.read_bytes() == b"".join(lines)  # no zeros in write mode
    f.close()


def test_the_mode_follows_the_filesystem(tmp_path, monkeypatch):
    monkeypatch.delenv(sf.MODE_ENV, raising=False)
    assert sf.filesystem_of(Path("/proc/self")) == "proc"
    if sf.filesystem_of(Path("/dev/shm")) == "tmpfs":
        assert sf.choose_mode(Path("/dev/shm/x.jsonl"))[0] == "mmap"
    mode, why = sf.choose_mode(Path("/proc/self/x.jsonl"))
    assert mode == "write" and "proc" in why  # not known to be local: never mapped
    monkeypatch.setenv(sf.MODE_ENV, "write")
    assert sf.choose_mode(tmp_path / "x.jsonl") == ("write", f"{sf.MODE_ENV}=write")


@pytest.mark.parametrize("mode", ["mmap", "write"])
def test_the_writer_appends_are_in_the_file_at_once(tmp_path, mode):
    """No flush, no writer thread: what `append` took is in the file when it returns."""
    path = tmp_path / "seg.jsonl"
    w = SegmentWriter(path, interval=60, mode=mode)
    try:
        for i in range(500):
            w.append(_row(i))
            if i % 100 == 99:
                assert read_from(path).records[-1]["x"] == i
    finally:
        w.close()
    body = path.read_bytes()
    assert [orjson.loads(line)["x"] for line in body.splitlines()] == list(range(500))
    assert not os.path.exists(path.with_name(f".{path.stem}.reserve"))
