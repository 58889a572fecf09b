"""`SteadyrunLogger`: steadyrun as a Lightning logger, for the Trainer and for Fabric.

    from steadyrun.integrations.lightning import SteadyrunLogger
    trainer = Trainer(logger=SteadyrunLogger(project="digits", id=job_id))
    fabric = Fabric(loggers=[SteadyrunLogger(project="digits")])

Why not Lightning's WandbLogger: it hands W&B the Trainer's step and W&B drops what does
not increase (wandb#1626 after a resume, pytorch-lightning#5469 with gradient
accumulation, #13382 two calls per step), lets validation's per-batch counter zig-zag the
x-axis (#14892), declares `trainer/global_step` as the axis without always writing it
(#20611), opens a run on every rank under DDP (#11380), and waits on the network when
offline (wandb#4217). Here every call is a steadyrun record (DESIGN.md section 3): the
sidecar owns W&B's `_step`, each namespace has its own step written as data, and the
training process never talks to W&B.

How the Trainer's calls map (its `_LoggerConnector.log_metrics` is the caller):
- A call holding `epoch` (the connector adds it to every training-step and epoch-end
  call) is a train-axis row at `step=` Lightning's optimizer step (`_batches_that_stepped`,
  restored from checkpoints, so a resumed fit continues), `epoch` as `trainer/epoch`.
- A call without `epoch` while validating or testing is a per-batch evaluation row:
  its `step` is a counter that restarts at every validation (#14892), so its keys go to
  `val_batch/` (`test_batch/`) with that counter as `<ns>/batch` and the global step as
  `<ns>/global_step`; the row's x is the run's auto step, which only these rows advance,
  so the namespace never goes back, across validations and resumes alike.
- A call without `epoch` while training: the module logged a metric named `step`, which
  Lightning took out of the row and used as the step (#17720); it is put back as `step`.
- Anything else (Fabric's `log_dict`, calls outside a Trainer's loops) is logged as
  given: `run.log(metrics, step=step)`.
The Trainer is known from `log_graph(model)`, which it calls with the module at the start
of every fit, validate and test (Fabric never does): public API, no stack inspection.

Ranks: Lightning calls its loggers on every rank, and its DDP launcher sets `LOCAL_RANK`
but not `RANK`, so `steadyrun.init` alone could not tell rank 1 from rank 0 before
torch.distributed is up. The decorators below use Lightning's own rank
(`rank_zero_only.rank`, set from the launcher's variables and then from the strategy),
and a non-zero `NODE_RANK` (another node's local rank 0): other ranks start no run and
write nothing; their `experiment` is an `InertRun`.
"""

from __future__ import annotations

import json
import os
import weakref
from argparse import Namespace
from collections.abc import Callable, Mapping
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import lightning
from lightning.fabric.utilities.logger import _convert_params, _sanitize_callable_params
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.loggers.logger import Logger

from ..api import attach, init
from ..log.callsite import skip_frames_of
from ..log.inert import InertRun
from ..log.run import Run
from ..read.reader import open_run
from ..store.layout import new_run_id

# A warning made inside trainer.fit() names the user's line, not lightning's loop files.
skip_frames_of(lightning)

F = TypeVar("F", bound=Callable[..., Any])

# Evaluation stages (Lightning's RunningStage values) and the prefix of their per-batch rows.
_BATCH_NAMESPACE = {"validate": "val_batch", "test": "test_batch", "predict": "predict_batch"}


def _rank() -> int:
    """This process's global rank as Lightning knows it; a non-zero NODE_RANK counts too:
    before the strategy sets the global rank, another node's local rank 0 reads as 0."""
    rank = int(getattr(rank_zero_only, "rank", 0) or 0)
    node = os.environ.get("NODE_RANK", "")
    if rank == 0 and node.isdigit() and int(node) > 0:
        return int(node)
    return rank


def _rank_zero_only(fn: F) -> F:
    """Run `fn` on global rank 0 only; elsewhere it does nothing and returns None."""

    @wraps(fn)
    def on_rank_zero(*args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs) if _rank() == 0 else None

    return on_rank_zero  # type: ignore[return-value]


def _rank_zero_experiment(fn: Callable[[SteadyrunLogger], Run | InertRun]
                          ) -> Callable[[SteadyrunLogger], Run | InertRun]:
    """The run on rank 0; elsewhere an InertRun (the Run's surface, every call a no-op),
    so `logger.experiment.summary.update(...)` in a module works on every rank."""

    @wraps(fn)
    def experiment(self: SteadyrunLogger) -> Run | InertRun:
        rank = _rank()
        return fn(self) if rank == 0 else InertRun(reason=f"rank {rank}")

    return experiment


def _number(value: Any) -> float | None:
    """A checkpoint score (a 0-d tensor, a float or None) as a float, or None."""
    if value is None:
        return None
    try:
        return float(value.item() if hasattr(value, "item") else value)
    except (TypeError, ValueError):
        return None


class SteadyrunLogger(Logger):
    """A Lightning logger (Trainer and Fabric) that writes one steadyrun run.

    `project`, `name` (the run's name), `config`, `tags`, `group`, `job_type`, `notes`,
    `mode`, `dir` and any other keyword go to `steadyrun.init`. `id` is the run id and
    the logger's `version`; without it one is made here, so every rank and a pickled
    copy (`ddp_spawn`) agree on it before any run is open. To continue a run after a
    restart, pass the same `id` (e.g. your job's id): `resume="allow"` (the default)
    continues it when it exists. Lightning builds `logger.experiment` before it restores
    a checkpoint, so the id cannot come from the checkpoint; a saved
    `run.state_dict()` may be given as `resume=` instead. `log_model=True` uploads every
    checkpoint to W&B (otherwise they are recorded locally; STEADYRUN_LOG_MODEL also
    turns uploads on).
    """

    def __init__(self, project: str | None = None, name: str | None = None,
                 id: str | None = None, resume: str | Mapping[str, Any] | None = None,
                 dir: str | os.PathLike[str] | None = None, log_model: bool = False,
                 **init_kwargs: Any) -> None:
        super().__init__()
        if isinstance(resume, Mapping):
            run_id = str(resume["run_id"])
        elif isinstance(resume, str) and resume not in ("allow", "must", "never", "auto"):
            run_id = id or resume  # resume="<id>": that run, which must exist
        else:
            run_id = id or new_run_id()
        self._id = run_id
        self._resume: str | Mapping[str, Any] = resume if resume is not None else "allow"
        self._project = project
        self._dir = dir
        self._log_model = log_model
        self._init_kwargs = {"project": project, "name": name, "dir": dir, **init_kwargs}
        self._run: Run | InertRun | None = None
        self._attach = False  # a spawned worker whose parent holds the run open
        self._trainer: Any = None  # weakref to the Trainer, from log_graph
        self._config_seen: dict[str, Any] | None = None  # the run's config as known here
        self._last_step: int | None = None  # the last train-axis step logged
        self._logged_checkpoints: set[tuple[str, int]] = set()  # (path, mtime_ns)
        # Checkpoints older than this logger were logged by an earlier job (a resume).
        self._since_ns = _now_ns()

    # ------------------------------------------------------------------ identity
    @property
    def name(self) -> str:
        """The project: Lightning's folder name for this logger's checkpoints."""
        return self._project or os.environ.get("WANDB_PROJECT") or "lightning_logs"

    @property
    def version(self) -> str:
        """The steadyrun (and W&B) run id."""
        return self._id

    @property
    @_rank_zero_experiment
    def experiment(self) -> Run | InertRun:
        """The steadyrun Run (rank 0), opened on first use; an InertRun on other ranks."""
        if self._run is None:
            if self._attach:
                self._run = attach(self._id, dir=self._dir)
            else:
                resume = self._resume
                run_id = None if isinstance(resume, Mapping) else self._id
                self._run = init(id=run_id, resume=resume, **self._init_kwargs)
                # Reopened later (after finalize, a second fit or test), it is the same run.
                self._resume = "allow"
        return self._run

    # ------------------------------------------------------------------ metrics
    def log_graph(self, model: Any, input_array: Any = None) -> None:
        """No graph is recorded; this is how the logger learns of the Trainer, which calls
        it with the module at the start of every fit, validate and test."""
        try:
            trainer = model.trainer
        except (AttributeError, RuntimeError):  # a module not attached to a Trainer
            trainer = None
        self._trainer = weakref.ref(trainer) if trainer is not None else None

    def _stage(self) -> tuple[Any, str | None]:
        """(the Trainer, its running stage) while a Trainer runs; (None, None) otherwise."""
        trainer = self._trainer() if self._trainer is not None else None
        stage = getattr(getattr(trainer, "state", None), "stage", None)
        return trainer, (getattr(stage, "value", stage) if stage is not None else None)

    @_rank_zero_only
    def log_metrics(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        run = self.experiment
        trainer, stage = self._stage()
        row = dict(metrics)
        if stage is None or (step is None and "epoch" not in row):
            run.log(row, step=step)  # Fabric, or a call outside the Trainer's loops
        elif "epoch" in row:
            row["trainer/epoch"] = row.pop("epoch")
            self._last_step = step
            run.log(row, step=step)
        elif stage in _BATCH_NAMESPACE:
            ns = _BATCH_NAMESPACE[stage]
            row = {f"{ns}/{k}": v for k, v in row.items()}
            row[f"{ns}/batch"] = step
            row[f"{ns}/global_step"] = int(trainer.global_step)
            run.log(row)  # x: the auto step, which only these rows advance
        else:
            row["step"] = step  # the module's own `step` metric, which Lightning took out
            self._last_step = step
            run.log(row, step=step)

    @_rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any,
                        **kwargs: Any) -> None:
        """The config, minus what the run already holds with the same value: Lightning
        calls this at every fit, validate and test, and a resumed run has them already."""
        run = self.experiment
        plain = _sanitize_callable_params(_convert_params(params))
        # JSON's view, as the run stores it: a tuple equals its list, an object its str.
        plain = json.loads(json.dumps(plain, default=str))
        seen = self._known_config(run)
        new = {k: v for k, v in plain.items() if k not in seen or seen[k] != v}
        if new:
            run.config.update(new)
            seen.update(new)

    def _known_config(self, run: Run | InertRun) -> dict[str, Any]:
        if self._config_seen is None:
            self._config_seen = {}
            if run.dir is not None:
                run.flush()  # the config given to init is on disk to be read back
                self._config_seen = dict(open_run(run.dir).config)
        return self._config_seen

    # ------------------------------------------------------------------ media
    @_rank_zero_only
    def log_table(self, key: str, columns: list[str] | None = None,
                  data: list[list[Any]] | None = None, dataframe: Any = None,
                  step: int | None = None) -> None:
        """A table (WandbLogger's signature), at `step` of its key's namespace."""
        self.experiment.log_table(key, columns, data, dataframe=dataframe, step=step)

    @_rank_zero_only
    def log_text(self, key: str, columns: list[str] | None = None,
                 data: list[list[str]] | None = None, dataframe: Any = None,
                 step: int | None = None) -> None:
        """Text as a table, like WandbLogger."""
        self.log_table(key, columns, data, dataframe, step)

    @_rank_zero_only
    def log_image(self, key: str, images: list[Any], step: int | None = None,
                  **kwargs: Any) -> None:
        """Images (arrays, tensors, PIL images, paths) with WandbLogger's signature: each
        keyword is a list with one entry per image (`caption=[...]`). One image is logged
        under `key`; several under `key/0`, `key/1`... (a steadyrun image record holds one)."""
        if not isinstance(images, list):
            raise TypeError(f'Expected a list as "images", found {type(images)}')
        for k, v in kwargs.items():
            if len(v) != len(images):
                raise ValueError(f"Expected {len(images)} items but only found {len(v)} for {k}")
        captions = kwargs.get("caption") or [None] * len(images)
        run = self.experiment
        for i, (image, caption) in enumerate(zip(images, captions, strict=True)):
            name = key if len(images) == 1 else f"{key}/{i}"
            run.log_image(name, image, caption=caption, step=step)

    # ------------------------------------------------------------------ checkpoints, end
    @_rank_zero_only
    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """Record each checkpoint file the callback has saved since the last call.

        The one that is Lightning's `best_model_path` is logged with `best_model_score`
        as its metric, so it takes the alias `best` (its score beats every earlier one).
        Lightning's choice, not steadyrun's memory: after a resume only Lightning knows the
        best score so far, so the other checkpoints carry their score as metadata only."""
        run = self.experiment
        cb = checkpoint_callback
        goal = "maximize" if getattr(cb, "mode", "min") == "max" else "minimize"
        best_path = getattr(cb, "best_model_path", "")
        for path, score in self._new_checkpoints(cb):
            metric = _number(getattr(cb, "best_model_score", None)) if path == best_path else None
            meta = {"score": score, "monitor": getattr(cb, "monitor", None),
                    "original_filename": Path(path).name}
            run.log_checkpoint(path, aliases=["latest"], force=self._log_model,
                               step=self._last_step, metadata=meta,
                               metric=metric, goal=goal)

    def _new_checkpoints(self, cb: Any) -> list[tuple[str, float | None]]:
        """(path, score) of the callback's files that this logger has not logged, oldest
        first: its top-k, its best and its `last` (whose file is rewritten in place)."""
        scores: dict[str, float | None] = {}
        last = getattr(cb, "last_model_path", "")
        if last:
            scores[last] = None
        best = getattr(cb, "best_model_path", "")
        if best:
            scores[best] = _number(getattr(cb, "best_model_score", None))
        for path, score in dict(getattr(cb, "best_k_models", {}) or {}).items():
            scores[path] = _number(score)
        found = []
        for path, score in scores.items():
            try:
                mtime = os.stat(path).st_mtime_ns
            except OSError:
                continue
            if mtime >= self._since_ns and (path, mtime) not in self._logged_checkpoints:
                self._logged_checkpoints.add((path, mtime))
                found.append((mtime, path, score))
        return [(path, score) for _, path, score in sorted(found)]

    @_rank_zero_only
    def finalize(self, status: str) -> None:
        """End the run: `success` finishes it, any other status but `finished` fails it.

        `finished` is Lightning's SLURM requeue: the job is saved and comes back with the
        same id, so the run is only flushed. A later fit or test with this logger
        continues the same run (same id, resume="allow")."""
        run = self._run
        if run is None:
            return  # nothing was opened: open nothing now
        if status == "finished":
            run.flush()
            return
        if status != "success":
            run.mark_failed()
        run.finish()
        self._run = None

    def __getstate__(self) -> dict[str, Any]:
        """`ddp_spawn` pickles the logger into its workers: they get the run id, never the
        open run (nor the Trainer). A worker continues the run by id; when this process
        holds it open, the worker joins it as a writer of its own (`steadyrun.attach`)."""
        state = self.__dict__.copy()
        run = state.pop("_run", None)
        state["_run"] = None
        state["_trainer"] = None
        state["_attach"] = bool(run) and not run.finished
        return state


def _now_ns() -> int:
    """Now, as file times are stamped (less a second: coarse file systems round down)."""
    import time

    return time.time_ns() - 1_000_000_000
