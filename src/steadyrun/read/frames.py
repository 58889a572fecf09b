"""What `RunData.history()` and `.column()` return: a list, built only when it is used
as one, that also converts straight to Arrow, pandas or polars.

Why lazy: `history("train").to_pandas()` must not build a dict per row (the JSON path
costs over a second per 1 M rows) when the columnar cache (read/columns.py) has the
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
from .columns import build, concat, open_cache, require, sort_by_time, write_cache

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

    def to_pandas(self) -> Any:
        """A pandas DataFrame (NaN and inf kept; a column with gaps is float64)."""
        require("pyarrow", f"{type(self).__name__}.to_pandas()")
        require("pandas", f"{type(self).__name__}.to_pandas()")
        return self.to_arrow().to_pandas()

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
def segment_source(path: Path) -> Any:
    """A segment's rows: its cache's reader, else a table built now (and cached when
    the segment is closed)."""
    reader = open_cache(path)
    if reader is not None:
        return reader
    table, stamp = build(path)
    if table is None and stamp is not None:  # closed, without rows: cache that too
        import pyarrow as pa

        table = pa.table({"_t": pa.array([], pa.float64()), "_x": pa.array([], pa.int64())})
    if table is not None and stamp is not None:
        write_cache(path, table, stamp)
    return table


def read_rows(paths: list[Path], columns: Callable[[list[str]], list[str]],
              required: str = "any") -> pa.Table:
    """The asked columns over every segment: each segment's rows that hold one of them
    (or the `required` one), segments merged in time order as `open_run` merges them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    sources = [s for s in map(segment_source, paths) if s is not None]
    names: dict[str, None] = {}
    for src in sources:
        names.update(dict.fromkeys(src.schema.names))
    want = columns(list(names))
    parts = []
    for src in sources:
        have = [c for c in want if c in src.schema.names]
        if not have or (required != "any" and required not in have):
            continue
        table = src.read_all() if isinstance(src, pa.ipc.RecordBatchFileReader) else src
        table = table.select(["_t", *have])
        need = [table[required]] if required != "any" else [table[c] for c in have]
        if all(c.null_count for c in need):  # else a column is whole: every row holds one
            mask = pc.is_valid(need[0])
            for c in need[1:]:
                mask = pc.or_(mask, pc.is_valid(c))
            table = table.filter(mask)
        parts.append(table)
    if not parts:
        return pa.table({c: pa.array([], pa.float64()) for c in want})
    table = parts[0] if len(parts) == 1 else sort_by_time(concat(parts))
    return table.select([c for c in want if c in table.schema.names])
