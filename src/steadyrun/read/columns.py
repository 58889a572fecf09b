"""One segment's rows as columns (Arrow): what the columnar cache (read/colcache.py)
holds, and what an open segment is converted to at each read.

Why: a dict per row costs ~1.5 µs to build (the orjson floor of a 1 M-row run is over a
second), and a DataFrame needs columns anyway.

The table: a column per row key (null where a row lacks it), plus `_t` (time) and `_x`
(global step); keys cannot start with `_` (store/values.check_key), so these never
clash. Rows are in time order (stable sort by `_t`, as `open_run` sorts its records).
Non-finite values are back in place (NaN, inf).

Building: the segment's row lines, cut out of the bytes without parsing the others,
go through Arrow's JSON reader (C++, no Python object per value), 64 MiB of lines at a
time. A piece it rejects (a torn line, a hand-made line, a key whose type changes from
number to bool) is built again from `parse_lines` records in Python: slower, and exact.
`build` says whether the segment is closed (its last record is `close`): only those
are cached; an open one (which may end in NUL bytes, store/segment_reader.py) is
converted in memory at every read.

pyarrow is imported inside functions only: `import steadyrun` loads the stdlib alone.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from ..store.segment_reader import data_end_fd, parse_lines
from ..store.values import restore_values

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

PIECE = 64 << 20  # bytes of lines converted at a time: bounds the memory of a build
JSON_BLOCK = 16 << 20  # Arrow's JSON reader block (larger blocks measured ~20 % faster)
ROW_LINE = b'{"k":"row",'  # how store/records.py starts every row line
KIND_LINE = b'{"k":"'
_NOT_A_ROW = re.compile(rb'\n(?!\{"k":"row",)')  # a newline whose next line is no row
FRAMES_HINT = "pip install 'steadyrun[frames]'"


def require(module: str, what: str = "this") -> Any:
    """Import an optional library, or say which extra brings it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"steadyrun: {what} needs {module}, an optional dependency: "
                          f"{FRAMES_HINT}") from exc


# ---------------------------------------------------------------------- building
def build(path: Path, stamp_of: Callable[[Path], Any]) -> tuple[pa.Table | None, Any]:
    """(the segment's rows as a sorted table or None if it has none, its `stamp_of` to
    cache it under, or None when it is not closed or changed while it was read).

    Each piece is read once into memory and handed on as memoryview slices: no copy of
    the bytes is made on the common path (a segment of row lines between its open and
    close records), as the copies cost as much as a tenth of the orjson floor.
    """
    before = stamp_of(path)
    tables = []
    last_line = b""
    torn = False
    size = PIECE
    pos = 0
    try:
        with open(path, "rb") as fh:
            # A live or killed mmap writer's segment runs on in zeros after its data
            # (store/segment_reader.data_end_fd): they are not read. NUL bytes inside
            # the data are a bad line, as for every reader.
            file_size = os.fstat(fh.fileno()).st_size
            limit = data_end_fd(fh.fileno(), file_size)
            unwritten_end = limit < file_size  # a live or killed writer: not closed
            while True:
                fh.seek(pos)
                block = fh.read(min(size, limit - pos))
                end = len(block)
                cut = block.rfind(b"\n", 0, end) + 1
                at_end = pos + len(block) >= limit
                if cut == 0 and not at_end:  # one line longer than a piece
                    size *= 2
                    continue
                if cut:
                    last_line = block[block.rfind(b"\n", 0, cut - 1) + 1:cut]
                    piece = piece_table(block, cut)
                    if piece is not None:
                        tables.append(piece)
                if at_end:
                    torn = cut < end or unwritten_end
                    break
                pos += cut
                size = PIECE
    except FileNotFoundError:
        return None, None
    closed = not torn and last_line.startswith(b'{"k":"close"')
    table = sort_by_time(concat(tables)) if tables else None
    return table, before if closed and before == stamp_of(path) else None


def piece_table(block: bytes, cut: int) -> pa.Table | None:
    """The complete lines `block[:cut]` to a table of their rows (unsorted), or None
    when none is a row."""
    import pyarrow as pa
    import pyarrow.json as pj

    view = memoryview(block)
    parts: list[memoryview] = []
    pos = 0
    starts = [m.start() + 1 for m in _NOT_A_ROW.finditer(block, 0, cut)]
    if not block.startswith(ROW_LINE):
        starts.insert(0, 0)
    for start in starts:
        if start >= cut:
            break
        end = block.find(b"\n", start, cut) + 1
        if not block.startswith(KIND_LINE, start):  # empty, hand-made or torn: parse it
            try:
                rec = orjson.loads(view[start:end - 1])
            except orjson.JSONDecodeError:
                return python_table(block[:cut])
            if not isinstance(rec, dict) or rec.get("k") == "row":
                return python_table(block[:cut])
        if start > pos:
            parts.append(view[pos:start])
        pos = end
    if cut > pos:
        parts.append(view[pos:cut])
    if not parts:
        return None
    rows = parts[0] if len(parts) == 1 else b"".join(parts)
    try:
        raw = pj.read_json(pa.py_buffer(rows),
                           read_options=pj.ReadOptions(block_size=JSON_BLOCK))
        return flatten(raw)
    except (pa.ArrowException, KeyError):
        return python_table(block[:cut])


def flatten(raw: pa.Table) -> pa.Table:
    """Arrow's reading of row records ({t, x, v: {...}, nf: {...}}) to cache columns:
    `_t`, `_x`, then each key of `v`, with the non-finite values of `nf` put back."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names = raw.schema.names
    if "v" not in names or not pa.types.is_struct(raw.schema.field("v").type):
        raise KeyError("v")
    cols: dict[str, Any] = {
        "_t": pc.fill_null(raw["t"].cast(pa.float64()), 0.0) if "t" in names
        else pa.array([0.0] * raw.num_rows),
        "_x": raw["x"] if "x" in names else pa.nulls(raw.num_rows, pa.int64())}
    v = raw["v"]
    for i, field in enumerate(v.type):
        cols[field.name] = pc.struct_field(v, [i])
    if "nf" in names and pa.types.is_struct(raw.schema.field("nf").type):
        nf = raw["nf"]
        for i, field in enumerate(nf.type):
            tag = pc.struct_field(nf, [i])
            if tag.null_count == len(tag):
                continue
            base = cols.get(field.name, pa.nulls(raw.num_rows, pa.float64()))
            cols[field.name] = pc.if_else(pc.is_valid(tag), tag.cast(pa.float64()),
                                          base.cast(pa.float64()))
    for key, col in cols.items():
        if col.type == pa.null():  # only ever null (a key logged only as NaN)
            cols[key] = col.cast(pa.float64())
    return pa.table(cols)


def python_table(body: bytes) -> pa.Table | None:
    """The exact path: records from `parse_lines` (salvaging glued lines), rows' values
    restored, one Python list per key."""
    import pyarrow as pa

    records, _ = parse_lines(body)
    rows = [r for r in records if r.get("k") == "row" and isinstance(r.get("v"), dict)]
    if not rows:
        return None
    n = len(rows)
    values: dict[str, list[Any]] = {}
    for i, rec in enumerate(rows):
        for key, val in (restore_values(rec) if rec.get("nf") else rec["v"]).items():
            col = values.get(key)
            if col is None:
                col = values[key] = [None] * n
            col[i] = val
    cols = {"_t": to_array([r.get("t", 0.0) for r in rows]),
            "_x": to_array([r.get("x") for r in rows])}
    for key, col in values.items():
        if not key.startswith("_"):
            cols[key] = to_array(col)
    if cols["_t"].type != pa.float64():
        cols["_t"] = cols["_t"].cast(pa.float64())
    return pa.table(cols)


def to_array(values: list[Any]) -> pa.Array:
    """Arrow's own inference; numbers of clashing kinds (bool and int, beyond int64) as
    float64; anything else as text."""
    import pyarrow as pa

    try:
        arr = pa.array(values)
        return arr.cast(pa.float64()) if arr.type == pa.null() else arr
    except (pa.ArrowException, OverflowError):
        pass
    try:
        return pa.array([None if v is None else float(v) for v in values], pa.float64())
    except (TypeError, ValueError):
        return pa.array([None if v is None else str(v) for v in values], pa.string())


# ---------------------------------------------------------------------- merging
def concat(tables: list[pa.Table]) -> pa.Table:
    """Tables with different keys or number types as one (missing -> null, int64 and
    double -> double); a key that is a number here and text there becomes text."""
    import pyarrow as pa

    if len(tables) == 1:
        return tables[0]
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException:
        types: dict[str, set[Any]] = {}
        for t in tables:
            for f in t.schema:
                types.setdefault(f.name, set()).add(f.type)
        mixed = {k for k, ts in types.items() if len(ts - {pa.null()}) > 1}
        fixed = []
        for t in tables:
            for k in mixed & set(t.schema.names):
                t = t.set_column(t.schema.get_field_index(k), k, t[k].cast(pa.string()))
            fixed.append(t)
        return pa.concat_tables(fixed, promote_options="permissive")


def sort_by_time(table: pa.Table) -> pa.Table:
    """Rows in time order, ties in their order here (a stable sort), as `open_run`
    sorts records; a table already in order is returned as it is (no copy)."""
    import pyarrow.compute as pc

    t = table["_t"]
    if table.num_rows < 2 or pc.all(pc.greater_equal(t[1:], t[:-1])).as_py():
        return table
    return table.take(pc.sort_indices(table, [("_t", "ascending")]))
