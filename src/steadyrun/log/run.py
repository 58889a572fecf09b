"""The `Run` handle: turns API calls into records on this process's segment.

Everything here runs on the training thread, so `log` is written for speed: numbers of
known keys take a fast path of type checks, one step stamp, one orjson encode and one
copy into the segment (log/segment_file.py), after which the row survives SIGKILL. Anything unusual (a new key, a non-number, NaN, a
pending row) goes through `_log_slow`, which applies the same rules with full checks.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from ..store import records
from ..store.cursor import stepped_bound
from ..store.layout import MANIFEST
from ..store.manifest import update_manifest
from ..store.steps import StepTracker, is_step_metric, step_metric_of
from ..store.values import Rejected, check_key, nonfinite_tag, to_number
from .config_input import RunMapping
from .deferred import DeferredRows, deferrable, hold
from .media_values import MEDIA
from .port import RunPort
from .run_baseline import RunBaseline
from .run_extras import RunExtras
from .run_said import RunSaid
from .segment_writer import SegmentWriter

_time = time.time
_dumps = orjson.dumps
_NUMERIC = frozenset((float, int))
_PLAIN = frozenset((float, int, bool, type(None)))


class Run(RunSaid, RunExtras, RunBaseline):
    """One process's handle on a run. Rank-0 owner, child process or extra rank alike.

    Made by `log/run_start.start_run` (which `steadyrun.init` calls), never by hand: it
    opens the segment writer, the heartbeat, the metadata collector and the sidecar handle
    that a Run holds. Collaborators that act for it get its `RunPort`, not the Run.
    """

    def __init__(self, *, run_id: str, rdir: Path, writer: SegmentWriter, manifest: dict[str, Any],
                 role: str, mode: str, strict: bool, steps: dict[str, Any] | None = None,
                 global_step: int = 0, key_prefix: str = "") -> None:
        self.id = run_id
        self.dir = rdir
        self.mode = mode
        self.role = role
        self.strict = strict
        self.project = manifest.get("project")
        self.name = manifest.get("name")
        self._manifest = manifest
        self._writer = writer
        self._append = writer.append
        self._steps = StepTracker(steps)
        self._step = global_step
        self._prefix = key_prefix
        self._known: set[str] = set()
        self._pending: dict[str, Any] | None = None
        self._pending_nf: dict[str, str] | None = None
        self._pending_step: int | None = None
        self._warned: set[Any] = set()
        self._overwritten: dict[str, int] = {}  # key -> values replaced in a pending row
        self._rejected_counts: dict[tuple[str, str, str], int] = {}  # per problem
        # The writer's (re-entrant) lock: one lock orders the step counter and the segment.
        self._lock = writer.lock
        self._acquire = self._lock.acquire
        self._release = self._lock.release
        # (key set, step metrics to stamp) of the fast path, swapped as one object so a
        # thread never pairs one key set with another's plan.
        self._fast: tuple[Any, tuple[str, ...], bytes] = (None, (), b"")
        self._finished = False
        self._late_warned = False
        self._failed = False
        self._error: dict[str, str] | None = None  # the uncaught exception, mark_failed
        self._console: Any = None  # log/console.Capture, when this run holds the process's
        self._media_counter = 0
        self.summary = RunMapping(self._on_summary)
        self.config = RunMapping(self._on_config)
        self._sidecar: Any = None  # ship.handle.SidecarHandle of the owner (run_start)
        self._digest: Any = None  # digest_keeper.DigestKeeper of this segment (run_start)
        self.log_interval = 10  # set by init: log_training_step rows, tensor reads
        self.gpu_stats_interval = 100
        self._deferred = DeferredRows()  # rows holding tensors, read once per interval
        self._trainer: Any = None  # training.StepLogger, made by the first log_training_step
        self._watched: Any = None  # (model, log, log_freq, bins) of run.watch
        self._sized_model: Any = None  # the model whose parameter count is in the summary
        self._metadata: Any = None  # metadata.Collector of the owner (run_start)
        self._checkpoints: Any = None  # checkpoints.CheckpointLog, made on first use
        self._port = RunPort(
            id=run_id, dir=rdir, config=self.config, save=self.save,
            record=lambda rec: self._append(records.encode(rec)), reject=self._bad,
            current_step=self._artifact_step, finished=lambda: self._finished,
            wait_metadata=self._wait_metadata)

    # ------------------------------------------------------------------ time series
    def log(self, metrics: Mapping[str, Any], step: int | None = None, commit: bool = True,
            reduce: str | None = None) -> None:
        """Append a row. Never raises on bad input unless the run is strict."""
        if reduce is not None:
            from .distributed import all_reduce_metrics

            metrics = all_reduce_metrics(metrics, reduce)
            if self.role.startswith("rank"):
                # Every rank reduced; rank 0 alone records the result. This rank's step
                # still moves as rank 0's does (DESIGN section 3.2: every committed call
                # without step= advances it): it stood still here, so a rank's own rows
                # sat at other x than rank 0's for the same iteration (rank 0 at 1, 3,
                # 5, ..., rank 1 at 0, 1, 2, ...; tests/test_ranks_wandb.py).
                if commit and step is None:
                    if self._pending is not None:
                        self._log_slow({}, None, True)  # its pending row, as rank 0 does
                    else:
                        with self._lock:
                            self._step += 1
                return
        # Fast path: the same keys as the last fast row, plain int/float values, auto step.
        # It encodes the row here (one orjson call) and copies it into the segment: in the
        # page cache when log() returns.
        if step is None and commit and self._pending is None:
            fast_keys, plan, tail = self._fast
            try:
                same = metrics.keys() == fast_keys
            except AttributeError:
                same = False
            if not same:
                plan, tail = self._learn_fast(metrics)
            if plan is not None and _NUMERIC.issuperset(map(type, metrics.values())):
                self._acquire()
                x = self._step
                last = self._steps.last
                for sk in plan:
                    if last.get(sk, x) > x:
                        break  # a step metric would go back: the slow path says so
                else:
                    try:
                        line = _dumps({"k": "row", "t": _time(), "x": x, "v": metrics})
                    except TypeError:  # orjson.JSONEncodeError: an int beyond 64 bits
                        line = b":null"
                    # orjson writes NaN and inf as null, and a plain number never is: a
                    # null means a non-finite value, which the slow path names in `nf`.
                    if b":null" not in line:
                        for sk in plan:
                            last[sk] = x
                        self._step = x + 1
                        # The step metrics go in as bytes before the closing `}}`: no
                        # copy of the caller's dict (`tail` is `,"train/step":%d}}\n`).
                        line = line[:-2] + tail % ((x,) * len(plan))
                        rest = self._writer.put_locked(line)  # into the segment
                        if rest:
                            self._writer.refused(line, rest)
                        self._release()
                        return
                self._release()
        self._log_slow(metrics, step, commit)

    def _learn_fast(self, metrics: Any) -> tuple[tuple[str, ...] | None, bytes]:
        """Admit a key set to the fast path: valid keys, no user-given step metric.

        Returns the step metrics to stamp (None: not admitted) and the end of the row's
        bytes with them, a %-format of the step. Anything the fast path cannot write as
        it is (NaN, an int beyond 64 bits) goes on to the slow path, which raises in a
        strict run, so strict runs take the fast path too.
        """
        if self._finished or self._prefix or not isinstance(metrics, dict) or not metrics:
            return None, b""
        known = self._known
        if not known.issuperset(metrics):
            return None, b""
        plan = tuple(dict.fromkeys(step_metric_of(k) for k in metrics))
        if any(sk in metrics for sk in plan):
            return None, b""
        tail = b"".join(b"," + _dumps(sk).replace(b"%", b"%%") + b":%d" for sk in plan)
        tail += b"}}\n"
        self._fast = (dict.fromkeys(metrics).keys(), plan, tail)
        return plan, tail

    def _log_slow(self, metrics: Any, step: Any, commit: bool) -> None:
        if self._finished:
            if getattr(self, "_forked", False):
                return
            self._bad("log", None, "the run is finished; log() after finish() is ignored",
                      RuntimeError)
            return
        if not isinstance(metrics, Mapping):
            self._bad("<metrics>", metrics, f"log() takes a mapping of key to number, got "
                                            f"{type(metrics).__name__}")
            return
        # Image, Table and Histogram values (wandb's forms) are taken out of the row and
        # recorded at the x it gets, after it (media_values.py).
        media: list[tuple[str, Any]] = []
        values, nf = self._clean_numbers(metrics, media)
        if step is not None:
            step = self._clean_step(step)
        with self._lock:
            if self._pending is not None:
                replaced = self._pending.keys() & values.keys()
                if replaced:
                    self._overwrote(replaced)
                self._pending.update(values)
                values = self._pending
                if nf or self._pending_nf:
                    nf = {**(self._pending_nf or {}), **(nf or {})}
                    for k in values:
                        if nf.get(k) and values[k] is not None:
                            del nf[k]
                if step is None:
                    step = self._pending_step
            regressions = None
            due = False
            if not commit or not values:
                if commit:
                    self._pending = self._pending_nf = self._pending_step = None
                else:
                    self._pending, self._pending_nf, self._pending_step = values, nf, step
                # Media of an uncommitted row: at the x it gets when committed without step=
                x = step if step is not None else self._step if values else None
            else:
                self._pending = self._pending_nf = self._pending_step = None
                if step is None:
                    x = self._step
                    self._step = x + 1
                else:
                    x = step
                regressions = self._steps.stamp(values, x)
                if _PLAIN.issuperset(map(type, values.values())):
                    self._append(records.encode(records.row(x, _time(), values, nf)))
                else:  # it holds tensors: written with its interval's one host transfer
                    due = self._deferred.add(x, _time(), values, nf, self.log_interval)
        if media:
            self._log_media(media, x)
        if due:
            self._read_deferred()
        if regressions:
            for sk, prev, new in regressions:
                self._regressed(sk, prev, new)

    def _clean_numbers(self, metrics: Mapping[Any, Any], media: list[tuple[str, Any]]
                       ) -> tuple[dict[str, Any], dict[str, str]]:
        """(the row's numbers, which of them are non-finite); the media values go to
        `media` under their keys as given (the media methods add this writer's prefix)."""
        values: dict[str, Any] = {}
        nf: dict[str, str] = {}
        prefix = self._prefix
        for k, v in metrics.items():
            try:
                if k not in self._known:
                    check_key(k)
                    self._known.add(k)
                if type(v) not in _NUMERIC and isinstance(v, MEDIA):
                    media.append((k, v))  # log_image/log_table/... add the prefix
                    continue
                if type(v) not in _NUMERIC and deferrable(v) and not is_step_metric(k):
                    values[prefix + k if prefix else k] = hold(k, v)  # read later, no sync
                    continue
                num = to_number(k, v)
            except Rejected as exc:
                self._bad(k, v, exc.reason, exc.exc_type)
                continue
            key = prefix + k if prefix else k
            if type(num) is float and num - num != 0.0:
                nf[key] = nonfinite_tag(num)
                num = None
            values[key] = num
        return values, nf

    def _clean_step(self, step: Any) -> int | None:
        try:
            num = to_number("step=", step)
            if isinstance(num, float):
                if num != int(num):
                    raise Rejected("step=", f"step must be a whole number, got {num}", ValueError)
                num = int(num)
            return int(num)
        except (Rejected, ValueError, OverflowError) as exc:
            reason = exc.reason if isinstance(exc, Rejected) else str(exc)
            self._bad("step=", step, reason + "; the global step is used instead",
                      getattr(exc, "exc_type", ValueError))
            return None

    # ------------------------------------------------------------------ lifecycle
    @property
    def step(self) -> int:
        """The global step the next auto-stepped row will get."""
        return self._step

    def state_dict(self) -> dict[str, Any]:
        """Store it in checkpoints; `steadyrun.init(resume=state)` continues from here.

        `sinks` holds, per sink of the run, the next sequence number (W&B: `_step`) past
        every record the run holds now: what a resume under another root needs so that
        W&B never gets a `_step` twice. Counting it writes this process's queue out."""
        self._writer.flush()
        pending = len(self._deferred) + (self._pending is not None)
        ships = self.mode in ("auto", "online", "offline")
        best = self._checkpoints.best if self._checkpoints is not None else []
        best_checkpoint = best[0] if best else self._best_checkpoint
        return {"run_id": self.id, "global_step": self._step, "steps": dict(self._steps.last),
                "sinks": {name: {"next_step": n + pending}
                          for name, n in stepped_bound(self.dir, ships).items()},
                **({"best_checkpoint": best_checkpoint} if best_checkpoint is not None
                   else {})}

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a subprocess: its plain `steadyrun.init()` joins this run."""
        from .context import ENV, write_context

        path = write_context(self.dir, self.id, self.mode)
        env = dict(os.environ if base is None else base)
        env[ENV] = str(path.resolve())
        return env

    def flush(self) -> None:
        """Everything logged before this call is durable (fsynced) when it returns."""
        self._settle(final=False)
        self._writer.flush()
        if self._digest is not None:
            self._digest.update(limit=None)

    def finish(self, exit_code: int | None = None, timeout: float | None = None) -> None:
        """Close this process's segment; the owner also waits (bounded) for the sidecar."""
        if self._finished:
            return
        if self._pending is not None:
            self._log_slow({}, None, True)
        self._settle(final=True)
        self._baseline_final()  # the last rows and the summary vs the baseline
        with self._lock:
            if self._finished:
                return
            if exit_code is None:
                exit_code = 1 if self._failed else 0
            state = "finished" if exit_code == 0 else "failed"
            for key, n in self._overwritten.items():
                self._append(records.encode(records.event("overwritten_count", key=key,
                                                          count=n)))
            for (key, value_type, _), n in self._rejected_counts.items():
                if n > 1:
                    self._append(records.encode(records.event(
                        "rejected_count", key=key, value_type=value_type, count=n)))
            self._append(records.encode(records.closed(exit_code, state)))
            self._finished = True
            self._fast = (None, (), b"")  # later log() calls take the slow path, which refuses them
        if self._console is not None:  # (a crash's traceback was printed by now)
            self._console.stop()
            self._console = None
        self._writer.close()
        if self._digest is not None:
            self._digest.update(limit=None)
        self._append = self._late_append  # what comes after finish() is kept apart
        lost = self._writer.lost_rows  # rows the disk refused
        if self.role == "owner":
            dropped: dict[str, Any] = {"dropped_rows": lost} if lost else {}
            if self._error is not None and state == "failed":
                dropped["error"] = self._error
            try:
                update_manifest(self.dir, state=state, exit_code=exit_code,
                                finished_at=time.time(), global_step=self._step,
                                last_steps=dict(self._steps.last), **dropped)
            except OSError as exc:
                # A folder gone read-only or full must not fail the end of training.
                where = ("the run's end is still recorded in its segment"
                         if self._writer.error is None else
                         "its segment could not be written either, so the run will read as "
                         "crashed")
                print(f"steadyrun: cannot update {self.dir / MANIFEST} ({exc}); {where}",
                      file=sys.stderr)
        if self._sidecar is not None:
            self._sidecar.finish(timeout, lost=lost)
        from . import live_runs

        live_runs.forget(self)

    @property
    def finished(self) -> bool:
        """Whether `finish()` has closed this process's segment."""
        return self._finished

    def mark_failed(self, exc_type: type[BaseException] | None = None,
                    exc: BaseException | None = None) -> None:
        """An uncaught exception is on its way: the run ends as failed (live_runs.py),
        and says why: the exception's type and message (redacted, cut at 2,000
        characters) go into an `exception` event and run.json's `error`, which `show`,
        `runs` and the dashboard print."""
        self._failed = True
        if exc_type is None or self._finished:
            return
        from ..store.redact import redact_text

        name = getattr(exc_type, "__qualname__", str(exc_type))
        module = getattr(exc_type, "__module__", "builtins")
        if module not in ("builtins", "__main__"):
            name = f"{module}.{name}"
        message = redact_text(str(exc) if exc is not None else "")[:2000]
        self._error = {"type": name, "message": message}
        with self._lock:
            if not self._finished:
                self._append(records.encode(records.event("exception", exc_type=name,
                                                          message=message)))

    def note_seeds(self, seeds: dict[str, Any]) -> None:
        """Seeds set after `init` (`set_seeds`): they join the metadata record, or, for a
        run without one, its config."""
        if self._metadata is not None:
            self._metadata.note_seeds(seeds)
        else:
            self.config.update({"seeds": dict(seeds)})

    def detach_after_fork(self) -> None:
        """In a forked child: drop every call; the parent's writer owns the segment."""
        self._append = _drop
        self._writer = _ForkedWriter()
        self._sidecar = None
        if self._console is not None:
            # the parent's thread reads the pipe this child writes to: its lines are the
            # parent's
            from . import console

            console.forget_after_fork()
            self._console = None
        self._finished = True
        self._forked = True

    def __enter__(self) -> Run:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None:
            self.mark_failed(exc_type, exc)
            self.alert("run failed", f"{exc_type.__name__}: {exc}", "ERROR")
        self.finish()

    def __repr__(self) -> str:
        return f"<steadyrun.Run {self.id} {self.role} at {self.dir}>"

    def _read_deferred(self) -> None:
        """Write the buffered tensor rows: one host transfer per device (deferred.py)."""
        with self._lock:
            rows = self._deferred.take()
        if not rows:
            return
        from .deferred import materialise

        try:
            lines = materialise(rows)
        except Exception as exc:  # a broken device; say so rather than lose it silently
            self._bad("<tensors>", None, f"could not read {len(rows)} rows of logged "
                                         f"tensors: {exc!r}", RuntimeError)
            return
        for line in lines:
            self._append(line)

    def _wait_metadata(self) -> None:
        if self._metadata is not None:
            self._metadata.wait()

    def _artifact_step(self) -> int:
        """An artifact's step: the step logger's last step, else the last auto step."""
        trainer = self._trainer
        if trainer is not None and trainer.last_step is not None:
            return int(trainer.last_step)
        return max(self._step - 1, 0)

    def _settle(self, final: bool) -> None:
        """Before flush and finish: metadata recorded, tensor rows written; at finish also
        the steps since the last training row."""
        self._wait_metadata()
        if final and self._trainer is not None:
            self._trainer.close()
        if self._deferred.rows:
            self._read_deferred()


def _drop(item: Any) -> None:
    return None


class _ForkedWriter:
    def append(self, item: Any) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None
