"""One pass over a W&B run's transaction logs, streamed: history rows to a callback,
everything else (run fields, config, metric definitions, files, summary) kept.

Why not `txlog.load` as it is: it decodes every record, and a W&B run writes about two
summary records per history row (wandb-core keeps the summary up to date with each
row), so a 1 M-row run is 3 M records, 2 M of them summaries: decoding those costs more
than the rows themselves. Here:

- the record's kind is read from the payload's first bytes (protobuf writes its fields
  in number order: `num`, then the record's one kind), so system stats, console output
  and telemetry are skipped without being decoded;
- a summary record that wandb-core derived from a history row (one without `_info`: the
  client stamps every record it sends with its stream, wandb-core does not stamp the
  ones it makes) is skipped, and the summary is rebuilt from the rows' last values and
  the user's own summary records, in record order. Only while that is exact: when a
  metric asks W&B for a summary (`summary="max"`, ...) or the log's writer does not
  stamp its records, every summary record is decoded from then on, as `txlog.load` does.

The result's summary, config, metrics, files and run fields equal `txlog.load`'s
(tests/test_import.py checks it on real W&B runs).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ..ship.wandb.txlog import ScanStats, TxLog, iter_payloads
from ..ship.wandb.txlog.chunks import Skip
from ..ship.wandb.txlog.decode import MetricDefs, set_path
from ..ship.wandb.txlog.plain_rows import plain_items
from ..ship.wandb.txlog.ranges import kind_tag
from ..store.segment_reader import gc_paused

# The first field tag of a record of each kind we skip unread (field << 3 | 2).
SKIP_TAGS = frozenset((0x22, 0x3A, 0x5A, 0x6A))  # output, stats, telemetry, output_raw
HISTORY_TAG, _SUMMARY = 0x12, 0x1A
_INFO_TAG = b"\xc2\x0c"  # field 200 (`_info`), written last
_REMOVE = object()
_loads = orjson.loads
_JSONError = orjson.JSONDecodeError


def _value(text: str) -> Any:
    try:
        return _loads(text)
    except _JSONError:  # NaN, Infinity (W&B writes them bare), or a 65-bit integer
        try:
            return json.loads(text)
        except ValueError:
            return text


def _item_value(item: Any) -> Any:
    text = item.value_json
    if text:
        return _value(text)
    from ..ship.wandb.txlog.decode import _item_value as typed  # the rare typed encoding

    return typed(item)


def _path(item: Any) -> tuple[str, ...]:
    nk = item.nested_key
    return tuple(nk) if nk else (item.key,)


_KEYS: dict[bytes, str] = {}


def _fast_row(payload: bytes) -> dict[str, Any] | None:
    """A history record's row read from its wire format (txlog/plain_rows.py), or None
    when it is not plain: then protobuf reads it, same result."""
    items = plain_items(payload)
    if items is None:
        return None
    row: dict[str, Any] = {}
    keys = _KEYS
    for kraw, vraw in items:
        key = keys.get(kraw)
        if key is None:
            try:
                key = kraw[1:].decode()
            except UnicodeDecodeError:
                return None
            if len(keys) < 100_000:
                keys[kraw] = key
        try:
            row[key] = _loads(vraw[1:])
        except _JSONError:
            row[key] = _value(vraw[1:].decode(errors="replace"))
    return row


class Scan:
    """What the pass keeps besides the rows: a TxLog (no history, no records) whose
    summary is rebuilt as described above, plus counts. Also the pass's state while it
    runs: `history` is the row-wise handling of one history record (importer/batch.py
    falls back to it), `control` that of any other record kept."""

    def __init__(self, logs: list[Path], on_row: Callable[[dict[str, Any], int], None],
                 *, rule_for: Callable[[dict[str, dict[str, Any]]], None] | None = None
                 ) -> None:
        from wandb.proto import wandb_internal_pb2 as pb

        self.log = TxLog(paths=list(logs))
        self.rows = 0
        self.records = 0
        self.seq = 0  # records met so far, skipped ones included (the summary ops' order)
        self.ops: dict[tuple[str, ...], tuple[int, Any]] = {}  # summary path -> (seq, op)
        self.derive = False  # rows feed the summary (derived records are skipped)
        self.run_stamped: bool | None = None
        self.on_row = on_row
        self.rule_for = rule_for
        self.defs = MetricDefs()
        # Records skipped unread, and the derived summaries while `derive` holds.
        self.skip = Skip(tags=SKIP_TAGS)
        self.stats = ScanStats()
        self.path: Path | None = None
        self._record = pb.Record

    @property
    def skipped(self) -> int:
        """Records passed over unread (console, system stats, derived summaries)."""
        return self.skip.count

    def summary(self) -> dict[str, Any]:
        from ..ship.wandb.txlog.decode import _del_path

        out: dict[str, Any] = {}
        for path, (_, op) in sorted(self.ops.items(), key=lambda item: item[1][0]):
            if op is _REMOVE:
                _del_path(out, list(path))
            else:
                set_path(out, list(path), op)
        return out

    def state(self) -> tuple[Any, ...]:
        """What decides how a row converts: compared by importer/parallel.py."""
        return (self.defs.as_dicts(), self.derive, self.run_stamped)

    def feed(self, path: Path, *, verify_crc: bool = True, batches: Any = None,
             first_block: int = 0, stop_block: int | None = None,
             controls: list[tuple[int, bytes]] | None = None,
             control_ops: dict[tuple[str, ...], tuple[int, Any]] | None = None) -> None:
        """Read one log (or the records that start in its blocks [first, stop)): rows
        to `on_row` or `batches`, every other record kept to `control`, and appended
        to `controls` (with its seq) when given; the summary ops of those records go
        to `control_ops` when given (importer/parallel.py replays them itself)."""
        self.path = path
        take = batches.take if batches is not None else None
        skip = self.skip
        ops = self.ops if control_ops is None else control_ops
        stats = self.stats
        base = self.seq - stats.records  # a record's seq: base + the reader's count
        # The cycle collector paused while rows stream: a million rows allocate
        # millions of small tuples and it ran over them all the time (12 % of the
        # import), for no cycle: the pass makes none, and memory stays flat (w1).
        try:
            with gc_paused():
                for payload in iter_payloads(path, stats, verify_crc=verify_crc, skip=skip,
                                             first_block=first_block, stop_block=stop_block):
                    seq = base + stats.records
                    if take is not None and take(payload, seq):  # a row of a plain shape
                        continue
                    self._one(payload, seq, batches, controls, ops)
        finally:
            self.seq = base + stats.records
        if batches is not None:
            batches.flush()

    def _one(self, payload: bytes, seq: int, batches: Any,
             controls: list[tuple[int, bytes]] | None,
             ops: dict[tuple[str, ...], tuple[int, Any]]) -> None:
        """A record the batches did not take."""
        if payload[0] == 0x08:  # `num` first: skip its varint (inlined kind_tag)
            i = 1
            while payload[i] & 0x80:
                i += 1
            tag = payload[i + 1] if i + 1 < len(payload) else -1
        else:
            tag = payload[0]
        if tag in SKIP_TAGS:
            return
        if tag == _SUMMARY and self.derive and _INFO_TAG not in payload[-64:]:
            self.skip.count += 1  # derived from a row: rebuilt from the rows
            return
        if batches is not None:
            batches.flush()  # what came before, first
        if tag == HISTORY_TAG:
            self.history(payload, seq)
            return
        rec = self.parse(payload, seq)
        if rec is None:
            return
        if rec.WhichOneof("record_type") == "history":
            self.history_record(rec, seq)
            return
        if controls is not None:
            controls.append((seq, payload))
        self.control(rec, seq, ops)

    def control(self, rec: Any, seq: int, ops: dict[tuple[str, ...], tuple[int, Any]]
                ) -> None:
        """A record other than a row: the run's fields, config, summary, metric
        definitions, files, alerts, exit."""
        log, kind = self.log, rec.WhichOneof("record_type")
        if kind == "summary":
            for it in rec.summary.update:
                ops[_path(it)] = (seq, _item_value(it))
            for it in rec.summary.remove:
                ops[_path(it)] = (seq, _REMOVE)
        elif kind == "run":
            log.apply_run(rec.run)
            if self.run_stamped is None:
                self.run_stamped = rec.HasField("_info")
                self.derive = self.run_stamped and not _asks_summary(self.defs.merged)
                self.skip.derived = self.derive
            if rec.run.HasField("summary"):
                for it in rec.run.summary.update:
                    ops[_path(it)] = (seq, _item_value(it))
        elif kind == "config":
            log.apply_config(rec.config)
        elif kind == "metric":
            self.defs.add(rec.metric)
            if _asks_summary(self.defs.merged):
                self.derive = False  # W&B computes it (min, max, ...): read its records
                self.skip.derived = False
            if self.rule_for is not None:
                self.rule_for(self.defs.as_dicts())
        else:
            log.apply_end(rec, kind)

    def finish(self) -> Scan:
        log = self.log
        log.metrics = self.defs.as_dicts()
        log.summary = self.summary()
        log.torn = self.stats.torn
        log.problems = self.stats.problems
        return self

    def history(self, payload: bytes, seq: int) -> None:
        """One history record, row by row: its wire format when plain, else protobuf."""
        row = _fast_row(payload)
        if row is not None:
            if self.derive:
                ops = self.ops
                for key, v in row.items():
                    ops[(key,)] = (seq, v)
            step = row.get("_step")
            if type(step) is int:
                self.records += 1
                self.rows += 1
                self.on_row(row, step)
                return
        rec = self.parse(payload, seq)
        if rec is not None:
            self.history_record(rec, seq)

    def parse(self, payload: bytes, seq: int) -> Any:
        rec = self._record()
        try:
            rec.ParseFromString(payload)
        except Exception as exc:  # noqa: BLE001 - protobuf's DecodeError: damage
            self.stats.torn += 1
            self.stats.problems.append(f"{self.path}: record {seq} does not decode: {exc}")
            return None
        self.records += 1
        return rec

    def history_record(self, rec: Any, seq: int) -> None:
        row: dict[str, Any] = {}
        derive, ops = self.derive, self.ops
        for it in rec.history.item:
            nk = it.nested_key
            if not nk:
                key = it.key
                p: tuple[str, ...] | None = None
            elif len(nk) == 1:
                key = nk[0]
                p = None
            else:  # a nested dict (a media value is one) logged leaf by leaf
                p = tuple(nk)
                key = ""
            text = it.value_json
            if text:
                try:
                    v = _loads(text)
                except _JSONError:
                    v = _value(text)
            else:
                v = _item_value(it)
            if p is None:
                row[key] = v
            else:
                set_path(row, nk, v)
            if derive:
                ops[p or (key,)] = (seq, v)
        step = row.get("_step")
        if type(step) is not int:
            step = rec.history.step.num if rec.history.HasField("step") else self.rows
        self.rows += 1
        self.on_row(row, step)


def _asks_summary(merged: dict[str, Any]) -> bool:
    return any(m.HasField("summary") and any(
        getattr(m.summary, op) for op in ("min", "max", "mean", "best", "last", "none", "copy",
                                          "first")) for m in merged.values())


def first_run_fields(path: Path, limit: int = 10_000) -> dict[str, Any]:
    """The run record's fields (start time, name, host...) from the log's first
    records, before the rows are converted: the `open` record that starts the
    segment carries them."""
    from wandb.proto import wandb_internal_pb2 as pb

    log = TxLog()
    for n, payload in enumerate(iter_payloads(path, ScanStats())):
        if n >= limit:
            break
        tag = kind_tag(payload)
        if tag in SKIP_TAGS or tag in (HISTORY_TAG, _SUMMARY):
            continue
        rec = pb.Record()
        try:
            rec.ParseFromString(payload)
        except Exception:  # noqa: BLE001 - damage is counted by the real pass
            continue
        if rec.WhichOneof("record_type") == "run":
            log.apply_run(rec.run)
            break
    return dict(log.run)
