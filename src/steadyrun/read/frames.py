"""What `RunData.history()` and `.column()` return: a list, built only when it is used
as one, that also converts straight to Arrow, pandas or polars.

Why lazy: `history("train").to_pandas()` must not build a dict per row (the JSON path
costs over a second per 1 M rows) when the columnar cache (read/colcache.py) has the
columns ready. Used as a list (`==`, len, iteration, indexing), the object is the list
the reader always returned, built from the parsed records as before.

The columnar path reads the segments as they are when it is called, closed ones from
their cache, and keeps only the asked keys (projection: other columns are never
decoded). pyarrow, pandas and polars are optional (`pip install 'steadyrun[frames]'`):
imported on the first conversion, with that hint if missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..store.steps import step_metric_of
from .colcache import Shapes, open_cache, split_shapes, stamp_of, wide, write_cache
from .columns import build, concat, require

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa


class Frame(Sequence):  # type: ignore[type-arg]
    """A list made on first use, with `to_arrow()`, `to_pandas()` and `to_polars()`."""

    #: which of its columns a row must hold to belong to the frame: "any" or one name
    required: str = "any"

    def __init__(self, make_list: Callable[[], list[Any]], segments: Callable[[], list[Path]]
                 ) -> None:
        self._make = make_list
        self._segments = segments
        self._items: list[Any] | None = None

    @property
    def list(self) -> list[Any]:
        if self._items is None:
            self._items = self._make()
        return self._items

    def __len__(self) -> int:
        return len(self.list)

    def __getitem__(self, i: Any) -> Any:
        return self.list[i]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.list)

    def __contains__(self, item: object) -> bool:
        return item in self.list

    def __reversed__(self) -> Iterator[Any]:
        return reversed(self.list)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Frame):
            other = other.list
        return self.list == other

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __add__(self, other: Any) -> list[Any]:
        return self.list + list(other)

    def __radd__(self, other: Any) -> list[Any]:
        return list(other) + self.list

    def __repr__(self) -> str:
        return repr(self.list)

    # ------------------------------------------------------------------ columns
    def columns(self, names: list[str]) -> list[str]:
        """The keys of this frame among a run's row keys, in the frame's column order."""
        raise NotImplementedError

    def to_arrow(self) -> pa.Table:
        """A pyarrow Table with one column per key; rows in time order, as the list."""
        require("pyarrow", f"{type(self).__name__}.to_arrow()")
        return read_rows(self._segments(), self.columns, self.required)

    def to_pandas(self, copy: bool = True) -> Any:
        """A pandas DataFrame (NaN and inf kept; a column with gaps is float64).

        `copy=False`: the columns the cache holds whole become numpy arrays over the
        memory-mapped cache itself (no copy, no memory beyond the pages read), and are
        read-only: writing into that frame in place raises. The default is an ordinary
        frame, copied once out of the Arrow table.
        """
        require("pyarrow", f"{type(self).__name__}.to_pandas()")
        require("pandas", f"{type(self).__name__}.to_pandas()")
        if copy:
            return self.to_arrow().to_pandas()
        # split_blocks: a block per column, so a single-chunk column without nulls is
        # wrapped where it lies instead of copied into one 2-D block
        return self.to_arrow().to_pandas(split_blocks=True)

    def to_polars(self) -> Any:
        """A polars DataFrame (from the Arrow table, without a copy where it can)."""
        require("pyarrow", f"{type(self).__name__}.to_polars()")
        pl = require("polars", f"{type(self).__name__}.to_polars()")
        return pl.from_arrow(self.to_arrow())


class History(Frame):
    """`history(ns)`: the rows holding a key of namespace `ns` ("" the root, None every
    row); columns: its step metric first, then its keys in the order first logged."""

    def __init__(self, namespace: str | None, make_list: Callable[[], list[Any]],
                 segments: Callable[[], list[Path]]) -> None:
        super().__init__(make_list, segments)
        self.namespace = namespace

    def columns(self, names: list[str]) -> list[str]:
        keys = [n for n in names if not n.startswith("_")]
        if self.namespace is None:
            return keys
        ns = self.namespace.rstrip("/")
        step_key = f"{ns}/step" if ns else "step"
        mine = [k for k in keys if step_metric_of(k) == step_key]
        if step_key in mine:
            mine.remove(step_key)
            mine.insert(0, step_key)
        return mine


class Column(Frame):
    """`column(key)`: (step, value) pairs; as a table, the key's step metric and the key,
    over the rows holding the key."""

    def __init__(self, key: str, make_list: Callable[[], list[Any]],
                 segments: Callable[[], list[Path]]) -> None:
        super().__init__(make_list, segments)
        self.key = key
        self.required = key

    def columns(self, names: list[str]) -> list[str]:
        sk = step_metric_of(self.key)
        if self.key not in names:
            return []
        return [self.key] if sk == self.key or sk not in names else [sk, self.key]


# ---------------------------------------------------------------------- reading
def segment_source(path: Path) -> Shapes | None:
    """A segment's rows: its cache, else built now (and cached if the segment is closed;
    an open one stays one wide table, converted again at the next read)."""
    cached = open_cache(path)
    if cached is not None:
        return cached
    table, stamp = build(path, stamp_of)
    if stamp is None:
        return wide(table) if table is not None else None
    if table is None:  # closed, without rows: cache that too
        import pyarrow as pa

        table = pa.table({"_t": pa.array([], pa.float64()), "_x": pa.array([], pa.int64())})
    holder = [table]
    del table  # split_shapes frees the table column by column
    shapes = split_shapes(holder)
    write_cache(path, shapes, stamp)
    return open_cache(path) or shapes  # mapped: the built copy is freed


def read_rows(paths: list[Path], columns: Callable[[list[str]], list[str]],
              required: str = "any", meta: tuple[str, ...] = ()) -> pa.Table:
    """The asked columns over every segment: each segment's rows that hold one of them
    (or the `required` one), segments merged in time order as `open_run` merges them.
    One shape of one segment holding them all (the common case) is returned as it is in
    the mapped cache: no copy. `meta` keeps row fields too (`_t` the time, `_x` the
    global step), first: a chart's time axis needs them."""
    return rows_of([s for s in map(segment_source, paths) if s is not None], columns,
                   required, meta)


def rows_of(segments: list[Shapes], columns: Callable[[list[str]], list[str]],
            required: str = "any", meta: tuple[str, ...] = ()) -> pa.Table:
    """`read_rows` over segments already opened (`segment_source`): a reader that asks
    for many keys in turn (a dashboard's charts) opens each segment once."""
    import pyarrow as pa
    import pyarrow.compute as pc

    names: dict[str, None] = {}
    for keys, _ in segments:
        names.update(dict.fromkeys(keys))
    want = columns(list(names))
    parts = []
    for i, (_, shapes) in enumerate(segments):
        for keys, table in shapes:
            have = [c for c in want if c in keys]
            if not have or (required != "any" and required not in have):
                continue
            table = table.select(["_r", *dict.fromkeys(("_t", *meta)), *have])
            need = [table[required]] if required != "any" else [table[c] for c in have]
            if all(c.null_count for c in need):  # a wide table: keep the rows holding one
                mask = pc.is_valid(need[0])
                for c in need[1:]:
                    mask = pc.or_(mask, pc.is_valid(c))
                table = table.filter(mask)
            parts.append((i, table))
    if not parts:
        return pa.table({c: pa.array([], pa.float64()) for c in (*meta, *want)})
    if len(parts) == 1:
        table = parts[0][1]
    else:  # `_r` orders rows within a segment, `_seg` ties of `_t` across segments
        table = concat([t.append_column("_seg", pa.nulls(len(t), pa.int32()).fill_null(i))
                        for i, t in parts])
        table = table.take(pc.sort_indices(
            table, [("_t", "ascending"), ("_seg", "ascending"), ("_r", "ascending")]))
    return table.select([*meta, *(c for c in want if c in table.column_names)])
