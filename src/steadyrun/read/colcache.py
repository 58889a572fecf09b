"""The columnar cache: a closed segment's rows, kept as Arrow tables in
`cache/<writer>.arrow` (store/layout.py) so that a DataFrame is a memory map, not a parse.

Why shapes: rows are heterogeneous (a train row, a val row every 100 steps). One wide
table would need a filter, a copy of every asked column, to give one namespace's rows;
on a 1 M-row run that copy and its page faults were most of a warm read. So the rows are
split by shape (the exact set of keys a row holds), each shape a dense table (no nulls)
in time order with `_r`, the row's rank in the segment's time order. A namespace held by
one shape, the common case, is then a zero-copy slice of the mapped file, down to the
numpy arrays of `to_pandas()`; several shapes are merged by `_r`. More than MAX_SHAPES
shapes (keys logged in random subsets) are kept as one wide table with nulls instead.

File: each shape an uncompressed Arrow IPC file (one record batch: single-chunk
columns, the condition for zero-copy to numpy), written one after another; then a JSON
index (shapes: keys, byte range, rows; the segment's stamp), its length (8 bytes) and
MAGIC. Uncompressed so that only the pages of asked columns are ever read.

Validation: the index records the segment's size, mtime_ns and a hash of its last
4 KiB. A cache that does not match its segment, cannot be parsed (torn, foreign,
empty) or whose tables disagree with the index is ignored, and rebuilt by the reader.
Writes go to a temp file renamed into place; an unwritable folder just gets no cache.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..store.layout import column_cache_path

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

CACHE_VERSION = 2
MAGIC = b"SRCOLS02"
TAIL_CHECK = 4096  # bytes at the end of a segment whose hash the cache records
MAX_SHAPES = 64  # more shapes than this: one wide table with nulls

Shape = tuple[list[str], "pa.Table"]  # (its keys, its rows: _r, _t, _x, keys...)
Shapes = tuple[list[str], list[Shape]]  # (every key of the segment in first-logged order,
#                                          its shapes)


def stamp_of(path: Path) -> dict[str, Any] | None:
    """What a cache records of its segment, or None if the segment is gone."""
    try:
        st = os.stat(path)
        with open(path, "rb") as fh:
            fh.seek(max(0, st.st_size - TAIL_CHECK))
            tail = fh.read(TAIL_CHECK)
    except OSError:
        return None
    return {"v": CACHE_VERSION, "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "tail": hashlib.blake2b(tail, digest_size=16).hexdigest()}


def _key_weight(key: str) -> int:
    """A fixed random 64-bit odd number per key: a row's shape code is the sum of the
    weights of the keys it holds (wrapping), so shapes are found in vectorised passes."""
    w = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "little",
                       signed=True)
    return w | 1


def ranks(n: int) -> pa.Array:
    """0 .. n-1 as int64, without a Python int per row."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if n == 0:
        return pa.array([], pa.int64())
    return pc.subtract(pc.cumulative_sum(pa.nulls(n, pa.int64()).fill_null(1)), 1)


def wide(table: pa.Table) -> Shapes:
    """The whole table as one shape, nulls where a row lacks a key: the cache's form for
    too many shapes, and an open segment's (converted at every read: no split)."""
    keys = [k for k in table.column_names if not k.startswith("_")]
    return keys, [(keys, table.add_column(0, "_r", ranks(table.num_rows)))]


def split_shapes(holder: list[pa.Table]) -> Shapes:
    """The time-ordered wide table (read/columns.py) as dense tables, one per shape, in
    the order each shape first appears.

    `holder` holds the only reference to the table: it is taken out and emptied column
    by column as the shapes are built, so the peak is one copy of the rows and one
    column, not two copies (a 10 M-row segment: ~1 GB of columns).
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    table = holder.pop()
    pool = pa.default_memory_pool()
    pool.release_unused()  # what the JSON reader freed (mimalloc keeps it otherwise)
    keys = [k for k in table.column_names if not k.startswith("_")]
    partial = [k for k in keys if table[k].null_count]
    if not partial:
        return wide(table)
    code: Any = pa.scalar(0, pa.int64())
    for k in partial:  # add/multiply wrap around on overflow: a 64-bit hash of the shape
        code = pc.add(code, pc.multiply(pc.is_valid(table[k]).cast(pa.int64()),
                                        _key_weight(k)))
    uniq = pc.unique(code)
    if len(uniq) > MAX_SHAPES:
        return wide(table)
    rows_of = [pc.indices_nonzero(pc.equal(code, value)) for value in uniq]
    del code
    haves = []
    for rows in rows_of:
        first = table.slice(rows[0].as_py(), 1)
        haves.append([k for k in keys if first[k].null_count == 0])
    held = dict.fromkeys(keys, 0)
    for rows, have in zip(rows_of, haves, strict=True):
        for k in have:
            held[k] += len(rows)
    if any(held[k] != len(table) - table[k].null_count for k in keys):
        return wide(table)  # a hash collision: never seen, never wrong
    cols: list[dict[str, Any]] = [{"_r": rows.cast(pa.int64())} for rows in rows_of]
    for name in ["_t", "_x", *keys]:
        column = table[name]
        table = table.remove_column(table.schema.get_field_index(name))
        for rows, have, out in zip(rows_of, haves, cols, strict=True):
            if name[0] == "_" or name in have:
                out[name] = column.take(rows).combine_chunks()  # one chunk: zero-copy reads
        del column
        pool.release_unused()  # hand the freed column back for the next one
    return keys, [(have, pa.table(out)) for have, out in zip(haves, cols, strict=True)]


def write_cache(path: Path, segment: Shapes, stamp: dict[str, Any]) -> None:
    import pyarrow as pa

    all_keys, shapes = segment
    cpath = column_cache_path(path)
    tmp = cpath.with_name(f".{cpath.name}.{os.getpid()}.{os.urandom(3).hex()}.tmp")
    index: dict[str, Any] = {**stamp, "keys": all_keys, "shapes": []}
    try:
        cpath.parent.mkdir(mode=0o700, exist_ok=True)
        with pa.OSFile(str(tmp), "wb") as sink:
            for keys, table in shapes:
                start = sink.tell()
                with pa.ipc.new_file(sink, table.schema) as w:
                    w.write_table(table, max_chunksize=max(1, table.num_rows))
                index["shapes"].append({"keys": keys, "at": start, "size": sink.tell() - start,
                                        "rows": table.num_rows})
            body = orjson.dumps(index)
            sink.write(body + len(body).to_bytes(8, "little") + MAGIC)
        os.chmod(tmp, 0o600)  # owner-only, as every file of a run
        os.replace(tmp, cpath)
    except OSError:
        tmp.unlink(missing_ok=True)


def open_cache(path: Path) -> Shapes | None:
    """The cached shapes of segment `path`, memory-mapped (zero-copy), or None when there
    is no cache, it cannot be read, or it was made from other bytes."""
    import pyarrow as pa

    try:
        with pa.memory_map(str(column_cache_path(path))) as mm:
            buf = mm.read_buffer()
        if buf.size < 16 or buf[-8:].to_pybytes() != MAGIC:
            return None
        n = int.from_bytes(buf[-16:-8].to_pybytes(), "little")
        index = orjson.loads(buf[buf.size - 16 - n:buf.size - 16].to_pybytes())
        shapes = index.pop("shapes")
        all_keys = index.pop("keys")
        if index != stamp_of(path):
            return None
        out: list[Shape] = []
        for s in shapes:
            # the writer records batch offsets from the start of the file it wrote into
            reader = pa.ipc.open_file(buf, footer_offset=s["at"] + s["size"])
            table = reader.read_all()
            if (table.num_rows != s["rows"]
                    or table.column_names != ["_r", "_t", "_x", *s["keys"]]):
                return None
            out.append((s["keys"], table))
        return all_keys, out
    except (OSError, KeyError, TypeError, ValueError, pa.ArrowException,
            orjson.JSONDecodeError):
        return None
