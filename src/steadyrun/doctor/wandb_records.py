"""The W&B records other than history rows, read with wandb's protobuf classes: the run
and its environment (who, where, when), metric definitions, config, string summaries,
console output (where wandb's "Tried to log to step" warnings are) and the exit record.
They are few (history rows take wandb_scan's fast path), so clarity wins over speed here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DROP_WARNING = re.compile(r"Tried to log to step (\d+) that is less than the current step (\d+)")


def decode(text: bytes | str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text if isinstance(text, str) else text.decode("utf-8", "replace")


@dataclass
class StepTrack:
    """A step metric's values: whether it ever changed, and its first value (as text)."""

    first: bytes | None = None
    changed: bool = False

    def see(self, value: bytes) -> None:
        if self.first is None:
            self.first = value
        elif not self.changed and value != self.first:
            self.changed = True


class Records:
    def __init__(self, out: Any, on_step_metric: Callable[[], None]) -> None:
        """`out`: the WandbScan being filled (typed loosely: wandb_scan imports this)."""
        self.out = out
        self.on_step_metric = on_step_metric
        self.metric_order: list[str] = []  # step_metric_index refers to this order
        self.console: dict[int, str] = {}  # per stream, the line not yet ended

    def record(self, rec: Any) -> None:
        kind = rec.WhichOneof("record_type")
        out = self.out
        if kind == "summary":
            for it in rec.summary.update:
                path = ".".join(it.nested_key) if it.nested_key else it.key
                value = decode(it.value_json) if it.value_json else None
                if isinstance(value, str):
                    out.summary_strings[path] = value
                else:
                    out.summary_strings.pop(path, None)
        elif kind in ("output_raw", "output"):
            self._console(rec.output_raw if kind == "output_raw" else rec.output)
        elif kind == "metric":
            self._metric(rec.metric)
        elif kind == "config":
            self._config(rec.config)
        elif kind == "run":
            r = rec.run
            for key, value in (("run_id", r.run_id), ("project", r.project),
                               ("group", r.run_group), ("job_type", r.job_type),
                               ("name", r.display_name), ("host", r.host)):
                if value:
                    out.run[key] = value
            if r.HasField("start_time"):
                out.run.setdefault("start_time", r.start_time.seconds + r.start_time.nanos / 1e9)
            if r.HasField("config"):
                self._config(r.config)
        elif kind == "environment":
            e = rec.environment
            for key in ("program", "code_path", "host", "writer_id", "username"):
                if getattr(e, key):
                    out.env[key] = getattr(e, key)
            if e.args:
                out.env["args"] = list(e.args)
            if e.HasField("started_at"):
                out.env["started_at"] = e.started_at.seconds + e.started_at.nanos / 1e9
            if e.slurm:
                out.env["slurm"] = dict(e.slurm)
        elif kind == "exit":
            out.exit_code = rec.exit.exit_code

    def _console(self, o: Any) -> None:
        """Console text arrives in pieces per stream; whole lines are numbered in the
        order they complete, which is the order of files/output.log."""
        buf = self.console.get(o.output_type, "") + o.line
        *lines, rest = buf.split("\n")
        self.console[o.output_type] = rest
        for line in lines:
            self._line(line)

    def _line(self, line: str) -> None:
        self.out.console_lines += 1
        for m in DROP_WARNING.finditer(line):
            self.out.drops.append({"step": int(m.group(1)), "current": int(m.group(2)),
                                   "line": self.out.console_lines})

    def _metric(self, m: Any) -> None:
        name = m.name or m.glob_name
        if not name:
            return
        if m.name and m.name not in self.metric_order:
            self.metric_order.append(m.name)
        step_metric = m.step_metric or None
        if step_metric is None and 0 < m.step_metric_index <= len(self.metric_order):
            step_metric = self.metric_order[m.step_metric_index - 1]
        entry = self.out.metrics.setdefault(name, {"glob": bool(m.glob_name),
                                                   "step_metric": None, "step_sync": False})
        if step_metric:
            entry["step_metric"] = step_metric
            entry["step_sync"] = bool(m.options.step_sync)
            if step_metric not in self.out.steps:
                self.out.steps[step_metric] = StepTrack()
                self.on_step_metric()

    def _config(self, cfg: Any) -> None:
        for it in cfg.update:
            path = ".".join(it.nested_key) if it.nested_key else it.key
            if path == "_wandb" or path.startswith("_wandb."):
                continue
            value = decode(it.value_json)
            if isinstance(value, dict) and "value" in value and set(value) <= {"value", "desc"}:
                value = value["value"]
            self.out.config[path] = value
        for it in cfg.remove:
            self.out.config.pop(".".join(it.nested_key) if it.nested_key else it.key, None)

    def finish(self) -> None:
        for rest in self.console.values():  # a last line without its newline
            if rest:
                self._line(rest)
