"""Decoding records into plain Python: history, summary, config, metrics, files."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .chunks import ScanStats, iter_records
from .files import find_run_files, run_id_of

if TYPE_CHECKING:  # pragma: no cover - typing only
    pass


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


def set_path(target: dict[str, Any], path: list[str], value: Any) -> None:
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

    def apply_config(self, cfg: Any) -> None:
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
                    set_path(self.wandb_config, path[1:], value)
            else:
                set_path(self.config, path, value)
        for it in cfg.remove:
            path = _item_path(it)
            if path[0] != "_wandb":
                _del_path(self.config, path)
            elif len(path) > 1:
                _del_path(self.wandb_config, path[1:])

    def apply_summary(self, summ: Any) -> None:
        for it in summ.update:
            set_path(self.summary, _item_path(it), _item_value(it))
        for it in summ.remove:
            _del_path(self.summary, _item_path(it))

    def apply_files(self, files: Any) -> None:
        for f in files.files:
            if f.path not in self.files:
                self.files.append(f.path)

    def apply_end(self, rec: Any, kind: str) -> bool:
        """A files, alert or exit record (False for any other kind): shared by `load`
        and the importer's own pass."""
        if kind == "files":
            self.apply_files(rec.files)
        elif kind == "alert":
            self.apply_alert(rec.alert)
        elif kind == "exit":
            self.exit_code = rec.exit.exit_code
        else:
            return False
        return True

    def apply_alert(self, a: Any) -> None:
        self.alerts.append({"title": a.title, "text": a.text, "level": a.level,
                            "wait_duration": a.wait_duration})

    def apply_run(self, run: Any) -> None:
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
            self.apply_config(run.config)
        if run.HasField("summary"):
            self.apply_summary(run.summary)


class MetricDefs:
    """A run's `define_metric` records, merged as W&B merges them: a later record of the
    same name adds to the earlier one unless it asks to overwrite. Shared by `load` and
    the importer's own streamed pass (steadyrun import)."""

    def __init__(self) -> None:
        from wandb.proto import wandb_internal_pb2 as pb

        self._pb = pb
        self.merged: dict[str, Any] = {}  # metric name or glob -> merged MetricRecord
        self.order: list[str] = []  # non-glob metric names in first-definition order

    def add(self, m: Any) -> None:
        name = m.name or m.glob_name
        if not name:
            return
        if name in self.merged and not m._control.overwrite:
            self.merged[name].MergeFrom(m)
        else:
            copy = self._pb.MetricRecord()
            copy.CopyFrom(m)
            self.merged[name] = copy
        if m.name and m.name not in self.order:
            self.order.append(m.name)

    def as_dicts(self) -> dict[str, dict[str, Any]]:
        out = {}
        for name, m in self.merged.items():
            step_metric = m.step_metric or None
            # The sender's config form refers to the step metric by 1-based position in
            # definition order instead of by name.
            if step_metric is None and 0 < m.step_metric_index <= len(self.order):
                step_metric = self.order[m.step_metric_index - 1]
            out[name] = _metric_to_dict(m, step_metric)
        return out


def load(
    paths_or_dir: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    run_id: str | None = None,
    *,
    verify_crc: bool = True,
    on_row: Callable[[dict[str, Any]], None] | None = None,
    on_record: Callable[[Any], None] | None = None,
    keep_records: bool = True,
) -> TxLog:
    """Decode one run from its ``.wandb`` file(s) into a :class:`TxLog`.

    A directory is searched with :func:`find_run_files`; several files of the
    same run id (a run resumed into a second offline folder) are replayed in
    order so the result reads like one run.  Mixing different run ids is
    refused because merging them silently would produce a plausible but
    false history.

    Streaming, for runs of millions of rows (`steadyrun doctor` and `import`):
    with `on_row`, each history row is handed to it in order and not kept in
    ``history``; with ``keep_records=False`` the raw protobufs are not kept;
    `on_record` sees every record as it is read (console output, media, ...).
    Memory then stays flat: the TxLog holds only summary, config, metrics,
    files, alerts and the run's fields.
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
            paths = [x for x in paths if run_id_of(x) == run_id]
    if not paths:
        where = f" for run id {run_id!r}" if run_id else ""
        raise FileNotFoundError(f"no run-*.wandb files{where} under {paths_or_dir}")
    ids = {run_id_of(x) for x in paths} - {None}
    if len(ids) > 1:
        raise ValueError(f"several runs found ({sorted(ids)}); pass run_id to pick one")

    log = TxLog(paths=list(paths))
    defs = MetricDefs()
    stats = ScanStats()
    for path in paths:
        # An earlier piece's exit is superseded by the resume that follows it;
        # only the last piece tells whether the run as a whole finished.
        log.exit_code = None
        for rec in iter_records(path, stats, verify_crc=verify_crc):
            if keep_records:
                log.records.append(rec)
            if on_record is not None:
                on_record(rec)
            kind = rec.WhichOneof("record_type")
            if kind == "history":
                row: dict[str, Any] = {}
                for it in rec.history.item:
                    set_path(row, _item_path(it), _item_value(it))
                if "_step" not in row and rec.history.HasField("step"):
                    row["_step"] = rec.history.step.num
                if on_row is not None:
                    on_row(row)
                else:
                    log.history.append(row)
            elif kind == "summary":
                log.apply_summary(rec.summary)
            elif kind == "config":
                log.apply_config(rec.config)
            elif kind == "run":
                log.apply_run(rec.run)
            elif kind == "metric":
                defs.add(rec.metric)
            elif log.apply_end(rec, kind):
                pass
            elif kind == "header":
                producer = rec.header.version_info.producer
                if producer:
                    log.producers.append(producer)
    log.metrics = defs.as_dicts()
    log.torn = stats.torn
    log.problems = stats.problems
    return log


# --------------------------------------------------------------------------
# CLI


