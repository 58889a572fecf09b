"""Read W&B's transaction log (``run-<id>.wandb``) without the W&B service.

The transaction log is the only artifact of an offline run that records every
history row, summary change, config change and metric definition in the order
they happened, so it is what we check our own output against.  W&B writes it
from ``wandb-core`` (Go) as a LevelDB-style log:

* a 7-byte file header: ``":W&B"``, a little-endian uint16 magic ``0xBEE1`` and
  a uint8 version ``0``;
* then 32 KiB blocks (the file header counts toward the first block), each
  holding chunks with a 7-byte header: uint32 CRC-32 (IEEE, over the type byte
  followed by the payload), uint16 payload length, uint8 type (FULL=1,
  FIRST=2, MIDDLE=3, LAST=4).  A block tail shorter than a chunk header is
  zero padding;
* each reassembled payload is a serialized ``wandb_internal_pb2.Record``.

The reader tolerates what a crashed or still-running writer leaves behind: a
torn tail (``wandb-core`` only writes whole 32 KiB blocks between flushes, so a
killed run typically ends in a FIRST/MIDDLE chunk without its LAST) and
corrupt chunks.  Such damage is counted in :attr:`ScanStats.torn` instead of
raising, because a partial log is still the best evidence of what was logged.

``wandb`` is imported lazily (inside the functions that need the protobuf
classes) because ``import wandb`` costs most of a second, and code that only
lists run files should not pay for it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import struct
import sys
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from wandb.proto.wandb_internal_pb2 import Record

__all__ = [
    "BLOCK_SIZE",
    "HEADER_IDENT",
    "HEADER_MAGIC",
    "HEADER_VERSION",
    "ScanStats",
    "TxLog",
    "find_run_files",
    "has_exit_record",
    "iter_payloads",
    "iter_records",
    "load",
    "main",
    "wait_complete",
]

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

_RUN_FILE_RE = re.compile(r"^run-(?P<id>.+)\.wandb$")
_RUN_DIR_TS_RE = re.compile(r"(?:^|-)run-(?P<ts>\d{8}_\d{6})-")
_WANDB_DIR_NAMES = ("wandb", ".wandb")


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

    def _tear(self, path: Path, offset: int, why: str) -> None:
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


def iter_payloads(
    path: str | os.PathLike[str],
    stats: ScanStats | None = None,
    *,
    verify_crc: bool = True,
) -> Iterator[bytes]:
    """Yield the raw reassembled record payloads of one ``.wandb`` file.

    Kept separate from :func:`iter_records` so the block/chunk logic can be
    used (and tested) without importing wandb.  Recovery follows LevelDB's
    reader: after a bad chunk the rest of its block is skipped and reading
    resumes at the next FULL/FIRST chunk, so one flipped byte costs one record
    rather than the rest of the run.
    """
    p = Path(path)
    st = stats if stats is not None else ScanStats()
    partial: list[bytes] | None = None  # chunks of a FIRST..LAST record
    partial_at = 0
    recovering = False  # skipping continuation chunks after damage
    with open(p, "rb") as fh:
        block_no = 0
        while True:
            block = fh.read(BLOCK_SIZE)
            n = len(block)
            st.bytes_read += n
            pos = 0
            if block_no == 0:
                if not _check_file_header(p, block[:HEADER_LEN]):
                    return
                pos = HEADER_LEN
            base = block_no * BLOCK_SIZE
            damaged = False
            while pos + HEADER_LEN <= n:
                checksum, length, ctype = CHUNK_HEADER.unpack_from(block, pos)
                at = base + pos
                if checksum == 0 and length == 0 and ctype == 0:
                    # Zeroed rest of block (preallocated or padded): skip it.
                    if partial is not None:
                        st._tear(p, at, "zeroed block inside a multi-chunk record")
                        partial, recovering = None, True
                    damaged = True
                    break
                end = pos + HEADER_LEN + length
                if end > n:
                    if n < BLOCK_SIZE:
                        why = "truncated chunk at end of file (torn tail)"
                    else:
                        why = "chunk length overflows block"
                    if partial is not None:
                        partial = None
                        why += " inside a multi-chunk record"
                    st._tear(p, at, why)
                    recovering = damaged = True
                    break
                data = block[pos + HEADER_LEN : end]
                if ctype not in _TYPE_CRC or (
                    verify_crc and zlib.crc32(data, _TYPE_CRC[ctype]) != checksum
                ):
                    why = "bad chunk type" if ctype not in _TYPE_CRC else "checksum mismatch"
                    st._tear(p, at, why)
                    partial, recovering, damaged = None, True, True
                    break
                pos = end
                if ctype == FULL or ctype == FIRST:
                    if partial is not None:
                        st._tear(p, partial_at, "multi-chunk record without LAST chunk")
                    recovering = False
                    if ctype == FULL:
                        partial = None
                        st.records += 1
                        yield data
                    else:
                        partial, partial_at = [data], at
                elif partial is None:
                    # MIDDLE/LAST with no FIRST: the remains of a record we
                    # already counted as damaged, or an orphan of its own.
                    if not recovering:
                        st._tear(p, at, "continuation chunk without FIRST chunk")
                        recovering = True
                elif ctype == MIDDLE:
                    partial.append(data)
                else:  # LAST
                    payload = b"".join(partial)
                    payload += data
                    partial = None
                    st.records += 1
                    yield payload
            if n < BLOCK_SIZE:
                tail = b"" if damaged else block[pos:]
                if tail.strip(b"\x00"):
                    st._tear(p, base + pos, "truncated chunk header at end of file (torn tail)")
                    partial = None
                break
            block_no += 1
    if partial is not None:
        st._tear(p, partial_at, "file ends inside a multi-chunk record (torn tail)")


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
    for payload in iter_payloads(path, st, verify_crc=verify_crc):
        rec = record_cls()
        try:
            rec.ParseFromString(payload)
        except DecodeError as exc:
            st.records -= 1
            st._tear(Path(path), -1, f"protobuf decode failed: {exc}")
            continue
        yield rec


def has_exit_record(path: str | os.PathLike[str]) -> bool:
    """Whether the run wrote its RunExitRecord, i.e. ``finish()`` got through."""
    return any(rec.WhichOneof("record_type") == "exit" for rec in iter_records(path))


# --------------------------------------------------------------------------
# Locating files


def _run_id_of(path: Path) -> str | None:
    m = _RUN_FILE_RE.match(path.name)
    return m.group("id") if m else None


def _order_key(path: Path) -> tuple[str, int, str]:
    """Folder timestamp first (creation order at 1 s resolution), then mtime."""
    m = _RUN_DIR_TS_RE.search(path.parent.name)
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return (m.group("ts") if m else "", mtime, str(path))


def find_run_files(wandb_dir: str | os.PathLike[str], run_id: str | None = None) -> list[Path]:
    """All ``run-*.wandb`` files below a W&B directory, oldest first.

    Accepts the directory that contains ``wandb/`` (what ``WANDB_DIR`` points
    to), the ``wandb/`` (or ``.wandb/``) folder itself, a single run folder, or
    a ``.wandb`` file, because callers have any of those at hand.  The
    ``latest-run`` symlink is skipped so a run is never counted twice.  Oldest
    first is the order in which a resumed run's pieces must be replayed.
    """
    root = Path(wandb_dir)
    if root.is_file():
        files = [root]
    else:
        bases = [root] + [root / n for n in _WANDB_DIR_NAMES if (root / n).is_dir()]
        found: dict[Path, Path] = {}
        for base in bases:
            candidates = list(base.glob("run-*.wandb")) + list(base.glob("*run-*/run-*.wandb"))
            for f in candidates:
                if f.parent.is_symlink() or f.is_symlink() or not f.is_file():
                    continue
                found.setdefault(f.resolve(), f)
        files = list(found.values())
    if run_id is not None:
        files = [f for f in files if _run_id_of(f) == run_id]
    return sorted(files, key=_order_key)


# --------------------------------------------------------------------------
# Waiting for a writer to finish


def _open_for_write_by_any(path: Path) -> bool | None:
    """True if some process holds ``path`` open for writing; None if unknowable.

    Only Linux's /proc is consulted (dependency-free).  Read-only holders such
    as viewers do not count, since they never add data.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    try:
        target = path.resolve()
    except OSError:
        return None
    saw_any = False
    for pid_dir in proc.iterdir():
        if not pid_dir.name.isdigit():
            continue
        fd_dir = pid_dir / "fd"
        try:
            fds = list(fd_dir.iterdir())
        except OSError:
            continue
        saw_any = True
        for fd in fds:
            try:
                if Path(os.readlink(fd)) != target:
                    continue
                info = (pid_dir / "fdinfo" / fd.name).read_text()
            except OSError:
                continue
            flags = next(
                (
                    int(line.split()[1], 8)
                    for line in info.splitlines()
                    if line.startswith("flags:")
                ),
                0,
            )
            if flags & (os.O_WRONLY | os.O_RDWR):
                return True
    return False if saw_any else None


def wait_complete(
    path: str | os.PathLike[str],
    timeout: float = 30.0,
    *,
    poll: float = 0.05,
    stable_polls: int = 2,
    check_writers: bool = True,
    require_exit: bool = True,
) -> bool:
    """Wait until a run's log is final; return False if ``timeout`` expires.

    ``run.finish()`` can return before ``wandb-core`` has flushed its last
    block, and even the user process exiting does not mean ``wandb-core`` is
    done, so a reader that opens the file straight away may see a partial log.
    Final means: the RunExitRecord is present, the size has not changed for
    ``stable_polls`` consecutive polls and (on Linux, if ``check_writers``) no
    process still has the file open for writing.  ``path`` may be the
    ``.wandb`` file or anything :func:`find_run_files` accepts (then every
    file found must be final).  ``require_exit=False`` is for runs that were
    killed: it only waits for the writer to go away and the size to settle,
    since such a log never gets its exit record.
    """
    deadline = time.monotonic() + timeout
    p = Path(path)
    last_sizes: dict[Path, int] | None = None
    stable = 0
    exit_seen: dict[tuple[Path, int], bool] = {}
    while True:
        files = [p] if p.suffix == ".wandb" else (find_run_files(p) if p.exists() else [])
        sizes: dict[Path, int] = {}
        for f in files:
            try:
                sizes[f] = f.stat().st_size
            except OSError:
                pass
        if sizes and sizes == last_sizes:
            stable += 1
        else:
            stable = 0
        last_sizes = sizes
        if sizes and stable >= stable_polls:
            done = True
            for f, size in sizes.items() if require_exit else ():
                key = (f, size)
                if key not in exit_seen:
                    try:
                        exit_seen[key] = has_exit_record(f)
                    except (OSError, ValueError):
                        exit_seen[key] = False
                if not exit_seen[key]:
                    done = False
                    break
            if done and check_writers:
                done = not any(_open_for_write_by_any(f) for f in sizes)
            if done:
                return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


# --------------------------------------------------------------------------
# Decoding into plain Python


def _decode_json(text: str) -> Any:
    """W&B writes NaN/Infinity unquoted, which Python's json accepts."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _item_value(item: Any) -> Any:
    """Value of a History/Summary/ConfigItem.

    ``value_json`` is always written today; the typed oneof (written when
    ``x_history_value_encoding`` includes "typed") is the fallback.
    """
    if item.value_json:
        return _decode_json(item.value_json)
    which = item.WhichOneof("value") if "value" in item.DESCRIPTOR.oneofs_by_name else None
    if which is None or which == "none":
        return None
    if which == "json":
        return _decode_json(item.json)
    return getattr(item, which)


def _item_path(item: Any) -> list[str]:
    """wandb-core flattens nested dicts into ``nested_key``; old writers use ``key``."""
    return list(item.nested_key) if item.nested_key else [item.key]


def _set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
    node = target
    for part in path[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[path[-1]] = value


def _del_path(target: dict[str, Any], path: list[str]) -> None:
    node: Any = target
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)


def _is_wrapped(value: Any) -> bool:
    return isinstance(value, dict) and "value" in value and set(value) <= {"value", "desc"}


_SUMMARY_OPS = ("min", "max", "mean", "best", "last", "none", "copy", "first")
_GOALS = {0: None, 1: "minimize", 2: "maximize"}


def _metric_to_dict(m: Any, step_metric: str | None) -> dict[str, Any]:
    summary = [op for op in _SUMMARY_OPS if getattr(m.summary, op)]
    return {
        "name": m.name or m.glob_name,
        "glob": bool(m.glob_name),
        "step_metric": step_metric,
        "step_sync": bool(m.options.step_sync),
        "hidden": bool(m.options.hidden),
        "defined": bool(m.options.defined),
        "summary": summary,
        "goal": _GOALS.get(m.goal, m.goal),
        "expanded_from_glob": bool(m.expanded_from_glob),
    }


@dataclass
class TxLog:
    """A run's transaction log decoded into plain Python values.

    Everything is reconstructed the way the W&B backend would see it, so tests
    can assert on what a real W&B user gets rather than on our own buffers.
    ``records`` keeps every raw protobuf for what is not decoded here.
    """

    paths: list[Path] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    wandb_config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    run: dict[str, Any] = field(default_factory=dict)
    producers: list[str] = field(default_factory=list)
    torn: int = 0
    problems: list[str] = field(default_factory=list)
    records: list[Any] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """Whether a RunExitRecord was seen (the run called finish)."""
        return self.exit_code is not None

    def counts(self) -> dict[str, int]:
        """Record counts by type; a cheap fingerprint for comparisons and the CLI."""
        out: dict[str, int] = {}
        for rec in self.records:
            kind = rec.WhichOneof("record_type") or "unknown"
            out[kind] = out.get(kind, 0) + 1
        return out

    def column(self, key: str) -> list[tuple[int, Any]]:
        """``(_step, value)`` pairs of one top-level history key, for quick asserts."""
        return [(row.get("_step"), row[key]) for row in self.history if key in row]

    def as_dict(self, *, history: bool = False) -> dict[str, Any]:
        """JSON-ready overview; history rows only on request because they dominate size."""
        out: dict[str, Any] = {
            "paths": [str(p) for p in self.paths],
            "run": self.run,
            "complete": self.complete,
            "exit_code": self.exit_code,
            "torn": self.torn,
            "counts": {"history_rows": len(self.history), "records": self.counts()},
            "summary": self.summary,
            "config": self.config,
            "metrics": self.metrics,
            "files": self.files,
            "alerts": self.alerts,
        }
        if self.problems:
            out["problems"] = self.problems
        if history:
            out["history"] = self.history
        return out

    # -- decoding -----------------------------------------------------------

    def _apply_config(self, cfg: Any) -> None:
        updates = [(_item_path(it), _item_value(it)) for it in cfg.update]
        user = [v for path, v in updates if path[0] != "_wandb"]
        # Some writers store config values as {"value": v, "desc": ...}
        # (the config.yaml/server form).  Unwrap only when a whole record is
        # in that form so a user's own {"value": ...} dict survives.
        unwrap = bool(user) and all(_is_wrapped(v) for v in user)
        for path, value in updates:
            if unwrap and path[0] != "_wandb" and _is_wrapped(value):
                value = value["value"]
            if path[0] == "_wandb":
                if len(path) == 1:
                    if isinstance(value, dict):
                        self.wandb_config.update(value)
                else:
                    _set_path(self.wandb_config, path[1:], value)
            else:
                _set_path(self.config, path, value)
        for it in cfg.remove:
            path = _item_path(it)
            if path[0] != "_wandb":
                _del_path(self.config, path)
            elif len(path) > 1:
                _del_path(self.wandb_config, path[1:])

    def _apply_summary(self, summ: Any) -> None:
        for it in summ.update:
            _set_path(self.summary, _item_path(it), _item_value(it))
        for it in summ.remove:
            _del_path(self.summary, _item_path(it))

    def _apply_run(self, run: Any) -> None:
        info = {
            "run_id": run.run_id,
            "project": run.project,
            "entity": run.entity,
            "display_name": run.display_name,
            "group": run.run_group,
            "job_type": run.job_type,
            "notes": run.notes,
            "tags": list(run.tags),
            "host": run.host,
            "sweep_id": run.sweep_id,
            "resumed": bool(run.resumed),
            "starting_step": int(run.starting_step),
            "start_time": (
                run.start_time.seconds + run.start_time.nanos / 1e9
                if run.HasField("start_time")
                else None
            ),
        }
        for key, value in info.items():
            # A later (resumed) piece wins, but empty fields do not erase.
            if value not in (None, "", []) or key not in self.run:
                self.run[key] = value
        if run.HasField("config"):
            self._apply_config(run.config)
        if run.HasField("summary"):
            self._apply_summary(run.summary)


def load(
    paths_or_dir: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    run_id: str | None = None,
    *,
    verify_crc: bool = True,
) -> TxLog:
    """Decode one run from its ``.wandb`` file(s) into a :class:`TxLog`.

    A directory is searched with :func:`find_run_files`; several files of the
    same run id (a run resumed into a second offline folder) are replayed in
    order so the result reads like one run.  Mixing different run ids is
    refused because merging them silently would produce a plausible but
    false history.
    """
    if isinstance(paths_or_dir, (str, os.PathLike)):
        p = Path(paths_or_dir)
        if p.is_dir():
            paths = find_run_files(p, run_id)
        elif p.exists():
            paths = [p]
        else:
            raise FileNotFoundError(p)
    else:
        paths = [Path(x) for x in paths_or_dir]
        if run_id is not None:
            paths = [x for x in paths if _run_id_of(x) == run_id]
    if not paths:
        where = f" for run id {run_id!r}" if run_id else ""
        raise FileNotFoundError(f"no run-*.wandb files{where} under {paths_or_dir}")
    ids = {_run_id_of(x) for x in paths} - {None}
    if len(ids) > 1:
        raise ValueError(f"several runs found ({sorted(ids)}); pass run_id to pick one")

    from wandb.proto import wandb_internal_pb2 as pb

    log = TxLog(paths=list(paths))
    merged: dict[str, Any] = {}  # metric name or glob -> merged MetricRecord
    order: list[str] = []  # non-glob metric names in first-definition order
    stats = ScanStats()
    for path in paths:
        # An earlier piece's exit is superseded by the resume that follows it;
        # only the last piece tells whether the run as a whole finished.
        log.exit_code = None
        for rec in iter_records(path, stats, verify_crc=verify_crc):
            log.records.append(rec)
            kind = rec.WhichOneof("record_type")
            if kind == "history":
                row: dict[str, Any] = {}
                for it in rec.history.item:
                    _set_path(row, _item_path(it), _item_value(it))
                if "_step" not in row and rec.history.HasField("step"):
                    row["_step"] = rec.history.step.num
                log.history.append(row)
            elif kind == "summary":
                log._apply_summary(rec.summary)
            elif kind == "config":
                log._apply_config(rec.config)
            elif kind == "run":
                log._apply_run(rec.run)
            elif kind == "metric":
                m = rec.metric
                name = m.name or m.glob_name
                if not name:
                    continue
                if name in merged and not m._control.overwrite:
                    merged[name].MergeFrom(m)
                else:
                    copy = pb.MetricRecord()
                    copy.CopyFrom(m)
                    merged[name] = copy
                if m.name and m.name not in order:
                    order.append(m.name)
            elif kind == "files":
                for f in rec.files.files:
                    if f.path not in log.files:
                        log.files.append(f.path)
            elif kind == "alert":
                a = rec.alert
                log.alerts.append(
                    {
                        "title": a.title,
                        "text": a.text,
                        "level": a.level,
                        "wait_duration": a.wait_duration,
                    }
                )
            elif kind == "exit":
                log.exit_code = rec.exit.exit_code
            elif kind == "header":
                producer = rec.header.version_info.producer
                if producer:
                    log.producers.append(producer)
    for name, m in merged.items():
        step_metric = m.step_metric or None
        # The sender's config form refers to the step metric by 1-based
        # position in definition order instead of by name.
        if step_metric is None and m.step_metric_index > 0 and m.step_metric_index <= len(order):
            step_metric = order[m.step_metric_index - 1]
        log.metrics[name] = _metric_to_dict(m, step_metric)
    log.torn = stats.torn
    log.problems = stats.problems
    return log


# --------------------------------------------------------------------------
# CLI


def main(argv: list[str] | None = None) -> int:
    """Print a JSON overview of a run's transaction log; exit 1 if none found."""
    parser = argparse.ArgumentParser(
        prog="python -m steadyrun.wandb_txlog",
        description="Summarize a W&B transaction log (run-<id>.wandb) as JSON.",
    )
    parser.add_argument("path", help="a .wandb file, a run folder, or a W&B dir")
    parser.add_argument("--run-id", default=None, help="pick one run when a dir holds several")
    parser.add_argument("--history", action="store_true", help="include all history rows")
    parser.add_argument("--no-crc", action="store_true", help="skip checksum verification")
    args = parser.parse_args(argv)
    try:
        log = load(args.path, args.run_id, verify_crc=not args.no_crc)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    json.dump(log.as_dict(history=args.history), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
