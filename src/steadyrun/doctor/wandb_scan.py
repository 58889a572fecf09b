"""One pass over a W&B run's transaction log, keeping only what the checks need.

A run of a million rows must be read in seconds with flat memory, so rows are never
kept: each is folded into the count of its *shape* (the set of user keys it holds),
with the first and last row index and `_step` of that shape. Every per-key question the
checks ask (how many rows hold K, how many hold K and its step metric, where K's only
row is) is a sum over the few shapes. Step metrics' values are followed (did the value
ever change?), every other value is skipped.

Speed: decoding a history record with protobuf and walking its items costs ~15 us in
Python (15 s for 1 M rows), so history records take a fast path: the items of a plain
record are read from its wire format (ship/wandb/txlog/plain_rows.py, shared with
`steadyrun import`), and a cache maps the tuple of raw keys (rows repeat a few shapes,
in a few item orders) to what the row counts toward. Anything not plain (nested keys,
long keys or values, typed values, old writers) is parsed with wandb's protobuf
classes, same result. Records
of other kinds (run, environment, metric, exit, console output) are few and are parsed
with protobuf; summary records are parsed only when they hold a string (the secret
check's concern), since wandb-core writes one per row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..ship.wandb.txlog import HEADER_LEN, ScanStats, iter_payloads
from ..ship.wandb.txlog.chunks import Skip
from ..ship.wandb.txlog.plain_rows import KEYS, VALUE_TAG, plain_items
from ..ship.wandb.txlog.ranges import processes
from ..store.segment_reader import gc_paused
from .folders import DoctorInputError, WandbTarget
from .wandb_records import Records, StepTrack, decode

# A Record's optional `num` (field 1, varint), then its payload's tag: 0x12 history, 0x1a
# summary. Anything else is a rarer record, parsed with protobuf.
_HEAD = re.compile(rb"(?:\x08[\x80-\xff]{0,9}[\x00-\x7f])?([\x12\x1a])[\x80-\xff]{0,4}[\x00-\x7f]")
_PROCS: int | None = None  # processes per log; None: by its size (tests set it)
_SKIP_TAGS = frozenset((0x3A, 0x5A))  # system stats, telemetry: nothing checked in them
_STEP_NAME = re.compile(r"(^|[/._])(step|epoch|global_step|iteration|iter)$")
_CACHE_MAX = 50_000


@dataclass
class Shape:
    count: int = 0
    first_row: int = 0
    last_row: int = 0
    first_raw: bytes | None = None  # the `_step` value, decoded only when asked
    last_raw: bytes | None = None
    # the last row's (prepared order, record) when it came by the keys-only path: its
    # `_step` is read from it at the end
    pending: tuple[Any, bytes] | None = None

    @property
    def first_step(self) -> Any:
        return _step_of(self.first_raw, self.first_row)

    @property
    def last_step(self) -> Any:
        return _step_of(self.last_raw, self.last_row)


@dataclass
class _Prepared:
    shape: Shape
    step_i: int
    time_i: int
    tracked: list[tuple[StepTrack, int]]


@dataclass
class WandbScan:
    """What one pass over a run's log found (rows are counted, never kept)."""

    target: WandbTarget
    rows: int = 0
    shapes: dict[frozenset[str], Shape] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    steps: dict[str, StepTrack] = field(default_factory=dict)
    drops: list[dict[str, Any]] = field(default_factory=list)
    console_lines: int = 0
    exit_code: int | None = None
    run: dict[str, Any] = field(default_factory=dict)
    env: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    summary_strings: dict[str, str] = field(default_factory=dict)
    last_time: float | None = None
    stats: ScanStats = field(default_factory=ScanStats)

    def key_rows(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for keys, shape in self.shapes.items():
            for k in keys:
                out[k] = out.get(k, 0) + shape.count
        return out


def _value(raw: bytes) -> bytes:
    """A value's text from `length byte + text` (what the fast path matched; the text may
    run on into the next field); a 0 length byte means the rest (_prefixed, long)."""
    n = raw[0]
    return raw[1:1 + n] if n else raw[1:]


def _prefixed(text: bytes) -> bytes:
    return bytes([len(text)]) + text if 0 < len(text) < 256 else b"\x00" + text


def _pick(values: tuple[bytes, ...], i: int) -> bytes | None:
    return values[i] if i >= 0 else None


def _values_of(payload: bytes) -> tuple[bytes, ...] | None:
    items = plain_items(payload)
    return tuple(v for _, v in items) if items is not None else None


def _step_of(raw: bytes | None, row: int) -> Any:
    if raw is None:
        return row
    try:
        return int(_value(raw))
    except ValueError:
        return row


def _kind(value: Any) -> str:
    if isinstance(value, bool) or isinstance(value, (int, float)):
        return "number"
    if isinstance(value, dict):
        return "media" if "_type" in value else "dict"
    return "string" if isinstance(value, str) else "other"


class _Scanner:
    def __init__(self, target: WandbTarget) -> None:
        from wandb.proto import wandb_internal_pb2 as pb

        self.pb = pb
        self.out = WandbScan(target)
        self.cache: dict[tuple[bytes, ...], _Prepared | None] = {}
        # a new step metric: rows of cached shapes must now follow its values
        self.records = Records(self.out, on_step_metric=self.cache.clear)
        self.last: tuple[_Prepared, tuple[bytes, ...]] | None = None

    # ------------------------------------------------------------------ rows
    def prepare(self, keys: tuple[str, ...], values: tuple[bytes, ...]) -> _Prepared:
        """What a row of these keys (in this item order) counts toward."""
        out = self.out
        user = frozenset(k for k in keys if not k.startswith("_"))
        shape = out.shapes.get(user)
        if shape is None:
            shape = out.shapes[user] = Shape()
        tracked = []
        for i, k in enumerate(keys):
            if k in user and k not in out.kinds:
                out.kinds[k] = _kind(decode(_value(values[i])))
            if k in user and (k in out.steps or _STEP_NAME.search(k)):
                tracked.append((out.steps.setdefault(k, StepTrack()), i))
        return _Prepared(shape, keys.index("_step") if "_step" in keys else -1,
                         keys.index("_timestamp") if "_timestamp" in keys else -1, tracked)

    def prepare_fast(self, chains: tuple[bytes, ...], values: tuple[bytes, ...]) -> _Prepared | None:
        """None when an item's lengths do not add up: the record takes the protobuf path."""
        if any(c[0] != len(c) - 1 for c in chains) or any(len(v) - 1 < v[0] for v in values):
            return None
        prep = self.prepare(tuple(c[1:].decode("utf-8", "replace") for c in chains), values)
        if len(self.cache) < _CACHE_MAX:
            self.cache[chains] = prep
        return prep

    def row(self, prep: _Prepared, values: tuple[bytes, ...]) -> None:
        """Count one row (the scan loop inlines this for the fast path)."""
        out = self.out
        shape = prep.shape
        if not shape.count:
            shape.first_row, shape.first_raw = out.rows, _pick(values, prep.step_i)
        shape.count += 1
        shape.last_row, shape.last_raw = out.rows, _pick(values, prep.step_i)
        for track, i in prep.tracked:
            track.see(_value(values[i]))
        out.rows += 1
        self.last = (prep, values)

    def history_slow(self, rec: Any) -> None:
        keys, values = [], []
        for it in rec.history.item:
            keys.append(".".join(it.nested_key) if it.nested_key else it.key)
            values.append(_prefixed((it.value_json or "null").encode()))
        if "_step" not in keys and rec.history.HasField("step"):
            keys.append("_step")
            values.append(_prefixed(str(rec.history.step.num).encode()))
        vals = tuple(values)
        self.row(self.prepare(tuple(keys), vals), vals)

    def record(self, rec: Any) -> None:
        if rec.WhichOneof("record_type") == "history":
            self.history_slow(rec)
        else:
            self.records.record(rec)

    def finish(self) -> None:
        self.records.finish()
        self.resolve_pending()
        if self.last is not None and self.last[0].time_i >= 0:
            self.out.last_time = self.last_time()

    def last_time(self) -> float | None:
        prep, values = self.last  # type: ignore[misc]
        try:
            return float(_value(values[prep.time_i]))
        except ValueError:
            return None

    def resolve_pending(self) -> None:
        """Read `_step` (and the last row's time) from rows that came keys-only."""
        for shape in self.out.shapes.values():
            if shape.pending is not None:
                prep, payload = shape.pending
                values = _values_of(payload)
                if values is not None and prep.step_i >= 0:
                    shape.last_raw = values[prep.step_i]
                shape.pending = None
        if self.last is not None and isinstance(self.last[1], bytes):
            prep, payload = self.last
            values = _values_of(payload)
            self.last = (prep, values) if values is not None else None


def scan(target: WandbTarget) -> WandbScan:
    """Stream the run's `.wandb` files once. A file with no whole record (empty, cut in
    its first record) or with a header that is not W&B's is unreadable: DoctorInputError.
    A header and nothing else is what a run killed at once leaves: read, and unfinished."""

    kit = {"stream": _stream, "scanner": _Scanner, "shape": Shape, "skip_tags": _SKIP_TAGS}
    sc = _Scanner(target)
    stats = sc.out.stats
    with gc_paused():  # as importer/scan.py: millions of small tuples, no cycle
        _scan_files(sc, target, kit, stats)
    sc.finish()
    return sc.out


def _scan_files(sc: _Scanner, target: WandbTarget, kit: dict[str, Any],
                stats: ScanStats) -> None:
    from .parallel import stream_parallel

    for path in target.files:
        before = stats.records
        try:
            procs = processes(path.stat().st_size) if _PROCS is None else _PROCS
            if procs > 1:
                stream_parallel(sc, path, procs, kit)
            else:
                _stream(sc, path)
        except ValueError as exc:  # chunks.py: not W&B's header, unsupported version
            raise DoctorInputError(str(exc)) from None
        except OSError as exc:
            raise DoctorInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
        if stats.records == before:
            size = path.stat().st_size
            if size == HEADER_LEN and not stats.torn:
                continue  # the header alone: a run killed before wandb-core's first flush
            why = "empty" if size == 0 else f"truncated: no whole record in its {size} bytes"
            raise DoctorInputError(f"{path}: W&B transaction log is {why}")


def _stream(sc: _Scanner, path: Path, *, first_block: int = 0,
            stop_block: int | None = None, controls: list[bytes] | None = None) -> None:
    """The hot loop: history rows on the fast path inline (no call per row), numeric
    summaries skipped, the rest parsed with protobuf.

    A row of a known item order whose shape follows no step-like key needs only its
    keys: they are read alone (a regex with one group costs a third of one with the
    values), and its `_step` and `_timestamp` are read at the end from the last such
    row kept per shape (Shape.pending, _Scanner.finish)."""
    from google.protobuf.message import DecodeError

    stats, out, cache = sc.out.stats, sc.out, sc.cache
    head_match, record_cls = _HEAD.match, sc.pb.Record
    keys_of, count = KEYS.findall, bytes.count
    skip = Skip(tags=_SKIP_TAGS, derived=True, unless=b'"')
    for payload in iter_payloads(path, stats, skip=skip, first_block=first_block,
                                 stop_block=stop_block):
        head = head_match(payload)
        if head is not None:
            if head.group(1) == b"\x1a":
                if b'"' not in payload:
                    continue  # a summary of numbers: wandb-core writes one per row
            else:
                start = head.end()
                keys = keys_of(payload, start)
                if keys and count(payload, VALUE_TAG, start) == len(keys):
                    prep = cache.get(tuple(keys))
                    if prep is not None and not prep.tracked:
                        shape = prep.shape
                        if shape.count:
                            shape.count += 1
                            shape.last_row = out.rows
                            shape.pending = (prep, payload)
                            out.rows += 1
                            sc.last = (prep, payload)
                            continue
                items = plain_items(payload)  # None: not plain, protobuf reads it
                if items is not None:
                    chains, values = zip(*items, strict=False)
                    prep = cache.get(chains) or sc.prepare_fast(chains, values)
                    if prep is not None:
                        shape, step_i = prep.shape, prep.step_i
                        if not shape.count:
                            shape.first_row = out.rows
                            shape.first_raw = values[step_i] if step_i >= 0 else None
                        shape.count += 1
                        shape.last_row = out.rows
                        shape.pending = None
                        if step_i >= 0:
                            shape.last_raw = values[step_i]
                        for track, i in prep.tracked:
                            track.see(_value(values[i]))
                        out.rows += 1
                        sc.last = (prep, values)
                        continue
        rec = record_cls()
        try:
            rec.ParseFromString(payload)
        except DecodeError as exc:
            stats.tear(path, -1, f"protobuf decode failed: {exc}")
            continue
        if controls is not None and rec.WhichOneof("record_type") != "history":
            controls.append(payload)
        sc.record(rec)
