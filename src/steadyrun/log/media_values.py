"""Values that `run.log` takes besides numbers: `Image`, `Table`, `Histogram`.

Why they exist: a script written for wandb logs `{"pred": wandb.Image(x)}` and
`{"scores": wandb.Table(...)}` in the same `log` call as its numbers. With
`import steadyrun as wandb` those are these classes; `Run.log` takes them out of the row
and records each at the row's x through `log_image`, `log_table` and `log_histogram` (its
`_clean_numbers` sets them aside), on
the key's namespace axis like every value (DESIGN.md 3.1 and 4). They only hold what they
were given: nothing is converted until the run records them, so building one costs
nothing on the training thread and imports nothing (no numpy, no PIL, no wandb).

`flatten` turns wandb.log's nested mappings into dotted keys (`{"a": {"b": 1}}` is the
key `a.b`), for the module-level `steadyrun.log` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class Image:
    """An image to log: an array (HxW, HxWxC), a PIL image, a matplotlib figure, a
    tensor or a path to an image file (what `run.log_image` takes)."""

    def __init__(self, data_or_path: Any, mode: str | None = None,
                 caption: str | None = None, **_ignored: Any) -> None:
        # `mode`, `grouping`, `boxes`, `masks`, `classes`, `file_type`, `normalize` are
        # W&B rendering options; the PNG written locally is the pixels as given.
        self.data = data_or_path
        self.caption = caption


class Table:
    """Rows under named columns (`columns=`, `data=` or `rows=`, or `dataframe=`);
    `add_data(*cells)` appends a row, as in wandb."""

    def __init__(self, columns: Sequence[Any] | None = None,
                 data: Sequence[Sequence[Any]] | None = None,
                 rows: Sequence[Sequence[Any]] | None = None, dataframe: Any = None,
                 **_ignored: Any) -> None:
        if dataframe is not None:
            columns = [str(c) for c in dataframe.columns]
            data = dataframe.astype(object).values.tolist()
        self.data: list[list[Any]] = [list(r) for r in (data if data is not None else rows or [])]
        width = len(self.data[0]) if self.data else 0
        self.columns = [str(c) for c in columns] if columns is not None else \
            [f"c{i}" for i in range(width)]

    def add_data(self, *cells: Any) -> None:
        self.data.append(list(cells))

    def add_column(self, name: str, data: Sequence[Any]) -> None:
        values = list(data)
        if self.data and len(values) != len(self.data):
            raise ValueError(f"Table.add_column({name!r}): {len(values)} values for "
                             f"{len(self.data)} rows")
        self.columns.append(str(name))
        if not self.data:
            self.data = [[v] for v in values]
        else:
            for row, value in zip(self.data, values, strict=True):
                row.append(value)

    def __len__(self) -> int:
        return len(self.data)


class Histogram:
    """The values to bin (a sequence, an array or a tensor), binned where they live when
    the run records them (`run.log_histogram`). `np_histogram=(counts, edges)` is taken
    as already binned."""

    def __init__(self, sequence: Any = None, np_histogram: Any = None,
                 num_bins: int = 64) -> None:
        if sequence is None and np_histogram is None:
            raise ValueError("Histogram needs `sequence` or `np_histogram`")
        self.values = sequence
        self.binned = np_histogram
        self.bins = num_bins


MEDIA = (Image, Table, Histogram)


def flatten(metrics: Mapping[Any, Any]) -> Mapping[Any, Any]:
    """wandb.log's nested dicts as dotted keys (`{"a": {"b": 1}}` is `a.b`, as in W&B).

    Only the module-level `steadyrun.log` (wandb.log) flattens: `run.log` keeps its rule
    that a value is a number (a dict there is rejected, warned and recorded)."""
    if not any(isinstance(v, Mapping) for v in metrics.values()):
        return metrics
    out: dict[Any, Any] = {}

    def visit(prefix: str, mapping: Mapping[Any, Any]) -> None:
        for k, v in mapping.items():
            key = f"{prefix}.{k}" if prefix else k
            if isinstance(v, Mapping) and v and all(isinstance(s, str) for s in v):
                visit(str(key), v)
            else:
                out[key] = v

    visit("", metrics)
    return out
