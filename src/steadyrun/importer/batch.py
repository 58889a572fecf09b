"""W&B history rows of one shape converted a batch at a time: the import's fast path.

Why: a W&B run of a million rows must import in seconds (issue 16: 10 s), and turning
each row into a dict, splitting it by x, writing it with orjson and folding it into the
digest one row at a time costs about 20 us a row in Python. Most rows of a run repeat
one of a few *shapes* (the same keys in the same order, every value a number), and for
a shape whose keys are all drawn over `_step` the steadyrun record is the same text with
the numbers changed. So, for consecutive rows of one such shape:

- the values' JSON texts are read from the record's wire format (txlog/plain_rows.py)
  and kept as they are: a W&B number's text is already a JSON number;
- a batch is parsed with one `orjson.loads` (a NaN, an Infinity, a null or a string in
  it fails the parse or the type check: the whole batch then takes the row-wise path);
- each line is the shape's template filled with the row's texts (`bytes % tuple`), its
  keys in one order (sorted) whatever order W&B wrote them in (a JSON object's keys
  have none; wandb-core writes a row's items in Go's map order, which varies);
- the digest folds the batch's columns (store/digest.fold_columns: min, max, index);
- the summary that W&B derives from rows takes the batch's last row.

The result equals the row-wise path's (tests/test_import.py checks both on real W&B
runs, record by record). Rows of any other shape (a key drawn over another step metric,
a media value, a key steadyrun refuses, a `_` key of W&B's that is not `_step`,
`_timestamp` or `_runtime`) take the row-wise path, in order: a batch is written before
any record that does not join it is handled.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import orjson

from ..ship.wandb.txlog.plain_rows import HISTORY_HEAD, ITEM_BARE, VALUE_TAG
from ..store import digest
from ..store.steps import step_metric_of

_head, _items = HISTORY_HEAD.match, ITEM_BARE.findall
_BATCH = 2048  # rows held at most: memory stays flat
_W_KEYS = ("_step", "_timestamp", "_runtime")
_NUMBER = frozenset((int, float))
_INT, _FLOAT = frozenset((int,)), frozenset((float,))


class Shape:
    """What rows of one tuple of raw keys become."""

    def __init__(self, names: list[str], user: list[int], stamps: list[str], step_i: int,
                 time_i: int) -> None:
        self.names = names
        self.user = user  # indexes of the keys a row's `v` holds, in the row's order
        self.stamps = stamps  # namespace step keys stamped with x (not in the row)
        self.step_i, self.time_i = step_i, time_i
        fields = [orjson.dumps(names[i]).replace(b"%", b"%%") + b":%s" for i in user]
        fields += [orjson.dumps(sk).replace(b"%", b"%%") + b":%s" for sk in stamps]
        self.template = b'{"k":"row","t":%s,"x":%s,"v":{' + b",".join(fields) + \
            b'},"ws":%s}\n'
        self.fill = itemgetter(time_i, step_i, *user, *([step_i] * len(stamps)), step_i)


class Batches:
    """Takes plain history records (`take`), writes them a shape's batch at a time.

    `writer` is the import's `Rows` (the row-wise path and the segment); `state` the
    scan's: its counters, the summary ops, and `history(payload, seq)`, the row-wise
    handling a batch falls back to."""

    def __init__(self, writer: Any, state: Any) -> None:
        self.writer = writer
        self.state = state
        self.orders: dict[tuple[bytes, ...], tuple[Shape | None, Any]] = {}
        self.shapes: dict[tuple[str, ...], Shape | None] = {}
        self.rule: Any = None
        self.shape: Shape | None = None
        self.rows: list[tuple[tuple[bytes, ...], bytes, int]] = []  # texts, record, seq

    def take(self, payload: bytes, seq: int) -> bool:
        """True: the row joined a batch (written later, in order). False: the caller
        handles the record itself (after `flush`). What plain_rows.ITEM_BARE says a caller
        checks is checked here, inline: this runs for each of a million rows."""
        head = _head(payload)
        if head is None:
            return False
        start = head.end()
        items = _items(payload, start)
        if not items or payload.count(VALUE_TAG, start) != len(items):
            return False
        keys, lens, texts = zip(*items, strict=True)
        if lens[-1][0] != len(texts[-1]):
            return False  # (plain_rows.ITEM_BARE: only the last text can run on)
        if self.writer.rule is not self.rule:  # new metric definitions: new shapes
            self.rule = self.writer.rule
            self.orders.clear()
            self.shapes.clear()
        order = self.orders.get(keys)
        if order is None:
            order = self._order(keys)
        shape = order[0]
        if shape is None:
            return False
        if shape is not self.shape:
            if self.rows:
                self.flush()
            self.shape = shape
        rows = self.rows
        rows.append((order[1](texts), payload, seq))
        if len(rows) >= _BATCH:
            self.flush()
        return True

    def _order(self, keys: tuple[bytes, ...]) -> tuple[Shape | None, Any]:
        """The shape of rows with these raw keys, and the getter that puts a row's
        texts in the shape's order. wandb-core writes a row's items in Go's map order,
        which starts at a random place: one shape comes in several orders (for a row of
        up to 8 keys, 8 rotations), all written as one batch in one order."""
        if len(self.orders) >= 10_000:
            self.orders.clear()
        names: list[str] | None = None
        try:
            names = [k[1:].decode() for k in keys]
        except UnicodeDecodeError:
            pass
        if not names or any(k[0] != len(k) - 1 for k in keys) or len(set(names)) < len(keys):
            got: tuple[Shape | None, Any] = (None, None)
        else:
            canon = tuple(sorted(names))
            shape = self.shapes.get(canon, 0)
            if shape == 0:
                shape = self.shapes[canon] = self._shape(list(canon))
            got = (shape, itemgetter(*map(names.index, canon)))
        self.orders[keys] = got
        return got

    def _shape(self, names: list[str]) -> Shape | None:
        if "_step" not in names or "_timestamp" not in names:
            return None
        rule, good = self.writer.rule, self.writer.good
        user = [i for i, k in enumerate(names) if k not in _W_KEYS]
        if rule is None or not user or not all(good(names[i]) and rule.axis_of(names[i])
                                               is None for i in user):
            return None
        present = {names[i] for i in user}
        stamps = [step_metric_of(names[i]) for i in user]
        stamps = [sk for sk in dict.fromkeys(stamps) if sk not in present]
        return Shape(names, user, stamps, names.index("_step"), names.index("_timestamp"))

    def flush(self) -> None:
        if not self.rows:
            return
        texts, payloads, seqs = zip(*self.rows, strict=True)
        self.rows = []
        shape = self.shape
        assert shape is not None
        columns = self._columns(shape, texts)
        if columns is not None:
            self._write(shape, texts, columns, seqs[-1])
            return
        # Not all plain numbers: each row that is goes in a batch, each that is not
        # row by row, in order. Which path a row takes depends on the row alone, never
        # on where a batch began, so the bytes written do not depend on how the log
        # was read (importer/parallel.py reads it in ranges).
        good: list[int] = []
        for i, t in enumerate(texts):
            if self._columns(shape, [t]) is not None:
                good.append(i)
                continue
            self._write_some(shape, texts, seqs, good)
            good = []
            self.state.history(payloads[i], seqs[i])
        self._write_some(shape, texts, seqs, good)

    def _write_some(self, shape: Shape, texts: Sequence[tuple[bytes, ...]], seqs: Sequence[int],
                    which: list[int]) -> None:
        if which:
            some = [texts[i] for i in which]
            columns = self._columns(shape, some)
            assert columns is not None  # each row passed alone
            self._write(shape, some, columns, seqs[which[-1]])

    def _write(self, shape: Shape, texts: Sequence[tuple[bytes, ...]], columns: list[Any],
               last_seq: int) -> None:
        fill, template = shape.fill, shape.template
        blob = b"".join([template % fill(t) for t in texts])
        xs, ts = columns[shape.step_i], columns[shape.time_i]
        names = shape.names
        values = {names[i]: columns[i] for i in shape.user}
        for sk in shape.stamps:
            values[sk] = xs
        n = len(texts)
        self.writer.out.put_rows(blob, n, lambda d: digest.fold_columns(d, values, xs, ts))
        self.writer.took(n, ts[-1])
        state = self.state
        state.records += n
        state.rows += n
        if state.derive:
            ops = state.ops
            for name, col in zip(names, columns, strict=True):
                ops[(name,)] = (last_seq, col[-1])

    @staticmethod
    def _columns(shape: Shape, texts: Sequence[tuple[bytes, ...]]) -> list[Any] | None:
        """The batch's values as columns, or None unless every one is a plain number
        (`_step` an int, `_timestamp` a float, the rest ints or floats, no bool)."""
        try:
            rows = orjson.loads(b"[[" + b"],[".join([b",".join(t) for t in texts]) + b"]]")
        except orjson.JSONDecodeError:  # NaN, Infinity, a 65-bit integer
            return None
        columns = list(zip(*rows, strict=True))
        for i, col in enumerate(columns):
            types = set(map(type, col))
            want = _INT if i == shape.step_i else _FLOAT if i == shape.time_i else _NUMBER
            if not types <= want:
                return None
        return columns
