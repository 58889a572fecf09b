"""The chunk layer: file header, 32 KiB blocks, chunk reassembly, protobuf records."""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    from wandb.proto.wandb_internal_pb2 import Record


FILE_HEADER = struct.Struct("<4sHB")
CHUNK_HEADER = struct.Struct("<IHB")
HEADER_LEN = 7
BLOCK_SIZE = 32 * 1024
HEADER_IDENT = b":W&B"
HEADER_MAGIC = 0xBEE1
HEADER_VERSION = 0

FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4

# CRC-32 of the single type byte, used as the starting value so that the
# checksum covers ``type || payload`` exactly like wandb's writers do.
_TYPE_CRC = {t: zlib.crc32(bytes([t])) for t in (FULL, FIRST, MIDDLE, LAST)}



@dataclass
class ScanStats:
    """Counters filled in while scanning, so damage is visible but not fatal.

    ``torn`` counts records that could not be recovered (a torn tail, a chunk
    with a bad checksum or impossible length, a record cut off by corruption,
    or a payload protobuf could not parse).  ``problems`` keeps a short text per
    incident for debugging.
    """

    records: int = 0
    torn: int = 0
    bytes_read: int = 0
    problems: list[str] = field(default_factory=list)

    def absorb(self, other: ScanStats) -> None:
        """Another reader's counts, of the records after these (a log read in block
        ranges: importer/parallel.py, doctor/parallel.py)."""
        self.records += other.records
        self.torn += other.torn
        self.bytes_read += other.bytes_read
        self.problems.extend(other.problems[: max(0, 100 - len(self.problems))])

    def tear(self, path: Path, offset: int, why: str) -> None:
        self.torn += 1
        if len(self.problems) < 100:
            self.problems.append(f"{path}@{offset}: {why}")


def _check_file_header(path: Path, head: bytes) -> bool:
    """Return False if the header is still being written; raise if it is not W&B's.

    A header shorter than 7 bytes that matches so far means the writer has
    just created the file; that is "no records yet", not an error.
    """
    expected = FILE_HEADER.pack(HEADER_IDENT, HEADER_MAGIC, HEADER_VERSION)
    if len(head) < HEADER_LEN:
        if expected.startswith(head):
            return False
        raise ValueError(f"{path}: not a W&B transaction log (bad header {head!r})")
    ident, magic, version = FILE_HEADER.unpack(head[:HEADER_LEN])
    if ident != HEADER_IDENT or magic != HEADER_MAGIC:
        raise ValueError(f"{path}: not a W&B transaction log (bad header {head[:7]!r})")
    if version != HEADER_VERSION:
        raise ValueError(f"{path}: unsupported W&B transaction log version {version}")
    return True


@dataclass
class Skip:
    """Records `iter_payloads` passes over without yielding or verifying them: a W&B
    run of a million rows holds about three million records, and the generator's yield
    and the caller's look at each cost more than the chunk itself.

    `tags`: kinds skipped always, by the first field tag of the record's payload
    (protobuf writes fields in number order: an optional `num`, then the one kind).
    `derived`: also skip summary records without `_info` (wandb-core's own, derived from
    a history row; the client stamps every record it sends), except those holding the
    bytes `unless` (the doctor keeps summaries with a string). A caller may switch
    `derived` while iterating. `count`: how many were skipped."""

    tags: frozenset[int] = frozenset()
    derived: bool = False
    unless: bytes | None = None
    count: int = 0


_SUMMARY_TAG = 0x1A
_INFO_TAG = b"\xc2\x0c"  # field 200 (`_info`), written last


def iter_payloads(
    path: str | os.PathLike[str],
    stats: ScanStats | None = None,
    *,
    verify_crc: bool = True,
    skip: Skip | None = None,
    first_block: int = 0,
    stop_block: int | None = None,
) -> Iterator[bytes]:
    """Yield the raw reassembled record payloads of one ``.wandb`` file.

    Kept separate from :func:`iter_records` so the block/chunk logic can be
    used (and tested) without importing wandb.  Recovery follows LevelDB's
    reader: after a bad chunk the rest of its block is skipped and reading
    resumes at the next FULL/FIRST chunk, so one flipped byte costs one record
    rather than the rest of the run. With `skip`, some whole-chunk records are read
    but not yielded (see Skip). `stats.records` counts every record, skipped or not,
    and is up to date at each yield (importer/scan.py numbers records by it).

    `first_block`/`stop_block` read only the records that *start* in those 32 KiB
    blocks (importer/parallel.py reads one log in pieces at once): chunks that
    continue a record from before `first_block` are passed over, and a record that
    starts before `stop_block` is read to its end.
    """
    p = Path(path)
    st = stats if stats is not None else ScanStats()
    partial: list[bytes] | None = None  # chunks of a FIRST..LAST record
    partial_at = 0
    # skipping continuation chunks after damage (or, from a later block, of a record
    # that started before it: another reader's)
    recovering = first_block > 0
    unpack, crc32, type_crc = CHUNK_HEADER.unpack_from, zlib.crc32, _TYPE_CRC
    full_crc = _TYPE_CRC[FULL]
    skip_tags = skip.tags if skip is not None else frozenset()
    records, skipped = st.records, 0  # counted here, written back at each yield and end
    try:
        with open(p, "rb") as fh:
            block_no = first_block
            if first_block:
                fh.seek(first_block * BLOCK_SIZE)
            while True:
                if stop_block is not None and block_no >= stop_block and partial is None:
                    return  # (a record begun before stop_block was read to its LAST chunk)
                block = fh.read(BLOCK_SIZE)
                n = len(block)
                st.bytes_read += n
                pos = 0
                if block_no == 0 and not first_block:
                    if block[:HEADER_LEN].strip(b"\x00") == b"" and block.strip(b"\x00") == b"":
                        # Nothing but zeros (space allocated, never written: a full disk, or a
                        # writer killed at once). An empty log, counted as damage when non-empty.
                        if n:
                            st.tear(p, 0, "zeroed file with no header (never written)")
                        return
                    if not _check_file_header(p, block[:HEADER_LEN]):
                        return
                    pos = HEADER_LEN
                base = block_no * BLOCK_SIZE
                damaged = False
                view = memoryview(block)
                while pos + HEADER_LEN <= n:
                    checksum, length, ctype = unpack(block, pos)
                    if not length and not checksum and not ctype:
                        # Zeroed rest of block (preallocated or padded): skip it.
                        if partial is not None:
                            st.tear(p, base + pos, "zeroed block inside a multi-chunk record")
                            partial, recovering = None, True
                        damaged = True
                        break
                    start = pos + HEADER_LEN
                    end = start + length
                    if end > n:
                        if n < BLOCK_SIZE:
                            why = "truncated chunk at end of file (torn tail)"
                        else:
                            why = "chunk length overflows block"
                        if partial is not None:
                            partial = None
                            why += " inside a multi-chunk record"
                        st.tear(p, base + pos, why)
                        recovering = damaged = True
                        break
                    if ctype == FULL and partial is None:  # the usual record: one chunk
                        # What wandb-core writes itself (no `_info`, the client's stamp): its
                        # console, stats and derived summaries are the ones to skip. A record
                        # skipped unread needs no checksum: a bad length in its header puts
                        # the next chunk out of line, and that one's checksum (or the next
                        # kept record's) fails, as if the length were checked.
                        if skip is not None and length and block.find(
                                _INFO_TAG, end - 64 if end - 64 > start else start, end) < 0:
                            tag = block[start]
                            if tag == 0x08:  # `num`, a varint: the kind's tag follows it
                                i = start + 1
                                while i < end and block[i] & 0x80:
                                    i += 1
                                tag = block[i + 1] if i + 1 < end else -1
                            if tag in skip_tags or (
                                    tag == _SUMMARY_TAG and skip.derived and (
                                        skip.unless is None
                                        or block.find(skip.unless, start, end) < 0)):
                                pos = end
                                recovering = False
                                records += 1
                                skipped += 1
                                continue
                        if verify_crc and crc32(view[start:end], full_crc) != checksum:
                            st.tear(p, base + pos, "checksum mismatch")
                            recovering, damaged = True, True
                            break
                        pos = end
                        recovering = False
                        records += 1
                        st.records = records
                        yield block[start:end]
                        continue
                    data = block[start:end]
                    if ctype not in type_crc or (
                        verify_crc and crc32(data, type_crc[ctype]) != checksum
                    ):
                        why = "bad chunk type" if ctype not in type_crc else "checksum mismatch"
                        st.tear(p, base + pos, why)
                        partial, recovering, damaged = None, True, True
                        break
                    pos = end
                    if ctype == FULL or ctype == FIRST:
                        if partial is not None:
                            st.tear(p, partial_at, "multi-chunk record without LAST chunk")
                            if stop_block is not None and block_no >= stop_block:
                                return  # this record is the next reader's
                        recovering = False
                        if ctype == FULL:
                            partial = None
                            records += 1
                            st.records = records
                            yield data
                        else:
                            partial, partial_at = [data], base + pos - length - HEADER_LEN
                    elif partial is None:
                        # MIDDLE/LAST with no FIRST: the remains of a record we
                        # already counted as damaged, or an orphan of its own.
                        if not recovering:
                            st.tear(p, base + pos - length - HEADER_LEN,
                                    "continuation chunk without FIRST chunk")
                            recovering = True
                    elif ctype == MIDDLE:
                        partial.append(data)
                    else:  # LAST
                        payload = b"".join(partial)
                        payload += data
                        partial = None
                        records += 1
                        st.records = records
                        yield payload
                        if stop_block is not None and block_no >= stop_block:
                            return  # the record begun before stop_block: read to its end
                view.release()
                if n < BLOCK_SIZE:
                    tail = b"" if damaged else block[pos:]
                    if tail.strip(b"\x00"):
                        st.tear(p, base + pos, "truncated chunk header at end of file (torn tail)")
                        partial = None
                    break
                block_no += 1
        if partial is not None:
            st.tear(p, partial_at, "file ends inside a multi-chunk record (torn tail)")
    finally:
        st.records = records
        if skip is not None:
            skip.count += skipped


def _record_class() -> type[Record]:
    """Import wandb's protobuf lazily; importing wandb runs its whole __init__."""
    from wandb.proto import wandb_internal_pb2

    return wandb_internal_pb2.Record


def iter_records(
    path: str | os.PathLike[str],
    stats: ScanStats | None = None,
    *,
    verify_crc: bool = True,
) -> Iterator[Record]:
    """Yield each ``Record`` of one ``.wandb`` file, lazily and in write order.

    Streaming keeps memory flat for long runs; damaged records are skipped and
    counted in ``stats.torn`` so a crashed run can still be inspected.
    """
    from google.protobuf.message import DecodeError

    record_cls = _record_class()
    st = stats if stats is not None else ScanStats()
    bad = 0  # records that do not decode: not counted as records (iter_payloads did)
    try:
        for payload in iter_payloads(path, st, verify_crc=verify_crc):
            rec = record_cls()
            try:
                rec.ParseFromString(payload)
            except DecodeError as exc:
                bad += 1
                st.tear(Path(path), -1, f"protobuf decode failed: {exc}")
                continue
            yield rec
    finally:
        st.records -= bad


def has_exit_record(path: str | os.PathLike[str]) -> bool:
    """Whether the run wrote its RunExitRecord, i.e. ``finish()`` got through."""
    return any(rec.WhichOneof("record_type") == "exit" for rec in iter_records(path))


# --------------------------------------------------------------------------
# Locating files


