"""The Transformers adapter: `Trainer(..., callbacks=[SteadyrunCallback()])`.

What Transformers' WandbCallback (and the wrappers teams built on it) got wrong, and what
this does instead:

- Steps: every row is logged at `state.global_step` (`run.log(..., step=)`), train keys
  under `train/` and `eval_*` keys under `eval/` (`test_*` under `test/`), so each
  namespace has its own exact-key axis (`train/step`, `eval/step`) written as data, and
  an evaluation never moves the train axis (DESIGN.md section 3).
- The end-of-training numbers (`train_runtime`, `train_loss`, `total_flos`, ...) and
  `predict()`'s metrics are final scores: they go to the summary, never to one-point
  charts (section 4).
- `args.to_dict()` and `model.config` go to the config under `args` and `model` (nested,
  so a model field never silently overwrites a training argument of the same name), and
  through steadyrun's redaction: `hub_token` and the like never leave the machine.
- `on_save` records the checkpoint and writes `run.state_dict()` into
  `checkpoint-N/steadyrun_state.json`; `trainer.train(resume_from_checkpoint=...)` finds
  it and continues the same run, with its steps.
- Only the main process writes (`state.is_world_process_zero`); the others start no run.
- Nothing heavy happens at the end of training: no second Trainer is built to save the
  model (transformers#34701: WandbCallback did, and crashed after a finished training).

The run is started lazily, at the first event of the main process that needs it
(`on_train_begin` normally, `on_log` for an `evaluate()` without training), and stays
open after `train()` so that a later `evaluate()` or `predict()` lands in it; it is
finished at interpreter exit (steadyrun's exit hook), or by `callback.finish()`.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import transformers
from transformers.trainer_callback import TrainerCallback, TrainerControl, TrainerState
from transformers.training_args import TrainingArguments

from ..api import init
from ..log.callsite import skip_frames_of
from ..log.inert import InertRun
from ..log.run import Run
from ..store.values import SteadyrunWarning

# A warning made during trainer.train() names the user's line, not transformers/trainer.py.
skip_frames_of(transformers)

__all__ = ["END_KEYS", "STATE_FILE", "SteadyrunCallback", "register"]

STATE_FILE = "steadyrun_state.json"
# What `Trainer._finalize_training` logs once, at the end: final scores, kept under the
# names `trainer.train().metrics` uses (and WandbCallback's summary used).
END_KEYS = frozenset({"train_runtime", "train_samples_per_second", "train_steps_per_second",
                      "train_tokens_per_second", "train_loss", "total_flos"})
_SPLITS = ("eval", "test", "train")
_warned_wandb = False


def register(name: str = "steadyrun") -> None:
    """Make `TrainingArguments(report_to="steadyrun")` add a `SteadyrunCallback()`.

    Opt-in, because it touches one private name: Transformers turns `report_to` into
    callbacks through its module-level table
    `transformers.integrations.integration_utils.INTEGRATION_TO_CALLBACK` (read by
    `get_reporting_integration_callbacks`, which `Trainer.__init__` calls; neither
    `TrainingArguments` nor the Trainer check the names elsewhere) and has no public way
    to add a third-party name. So this adds one entry, `name -> SteadyrunCallback`, and
    nothing else: no function is replaced. Calling it again is a no-op; a name already
    taken by another callback is refused (ValueError) rather than overwritten. The
    callback Transformers makes takes no arguments: set the project and the mode through
    `WANDB_PROJECT`, `STEADYRUN_DIR`, `STEADYRUN_MODE`, or pass
    `callbacks=[SteadyrunCallback(...)]` instead.
    """
    from transformers.integrations import integration_utils

    table = integration_utils.INTEGRATION_TO_CALLBACK
    taken = table.get(name)
    if taken is SteadyrunCallback:
        return
    if taken is not None:
        raise ValueError(f"steadyrun: report_to name {name!r} is already Transformers' "
                         f"{taken.__name__}; pass another name to register()")
    table[name] = SteadyrunCallback


class SteadyrunCallback(TrainerCallback):
    """Logs a Trainer's training into one steadyrun run (which ships it to W&B).

    `init_kwargs` go to `steadyrun.init` (project, name, tags, group, mode, dir, ...);
    the run's name defaults to `args.run_name` when that is set and is not the output
    folder. `resume` (a `run.state_dict()`, a checkpoint folder or a state file)
    overrides where a resumed training finds its run; by default it is read from
    `checkpoint-N/steadyrun_state.json` of the checkpoint being resumed.
    """

    def __init__(self, *, resume: Mapping[str, Any] | str | os.PathLike[str] | None = None,
                 **init_kwargs: Any) -> None:
        self._init_kwargs = init_kwargs
        self._resume = resume
        self._run: Run | InertRun | None = None
        self._last_eval: tuple[int, dict[str, Any]] | None = None  # (step, eval metrics)
        self._told: set[str] = set()

    @property
    def run(self) -> Run | InertRun | None:
        """The run this callback writes to; None before it starts, and on other ranks."""
        return self._run

    def finish(self) -> None:
        """Finish the run now (otherwise it is finished at interpreter exit)."""
        if self._run is not None:
            self._run.finish()

    # ------------------------------------------------------------------ events
    def on_init_end(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            _warn_if_wandb_too(args)

    def on_train_begin(self, args: TrainingArguments, state: TrainerState,
                       control: TrainerControl, model: Any = None, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        live = self._live()
        if state.is_hyper_param_search and live is not None:
            live.finish()  # a trial is a run of its own
            live = None
        # The Trainer has already loaded the checkpoint's TrainerState: a global step
        # above 0 here means `train(resume_from_checkpoint=...)`.
        saved = self._saved_state(args, state) if state.global_step > 0 else None
        if live is not None:
            if saved is not None and saved.get("run_id") != live.id:
                self._say("open", f"steadyrun: resuming from a checkpoint of run "
                          f"{saved.get('run_id')}, but this callback already writes run "
                          f"{live.id} (an evaluate() before train()?): it goes on in "
                          f"{live.id}")
            return
        self._start(args, state, model, saved)

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
               logs: dict[str, Any] | None = None, model: Any = None, **kwargs: Any) -> None:
        run = self._ensure(args, state, model)
        if run is None or not logs:
            return
        # The one log of `_finalize_training` (final scores) is the one with total_flos:
        # with include_num_input_tokens_seen every log holds a running train_runtime.
        if "total_flos" in logs:
            run.summary.update({"train/epoch" if k == "epoch" else k: v
                                for k, v in logs.items()})
            return
        split = _split_of(logs)
        row: dict[str, Any] = {}
        final: dict[str, Any] = {}
        for key, value in logs.items():
            if key in END_KEYS:
                final[key] = value
            else:
                row[_series_key(key, split)] = value
        if final:
            run.summary.update(final)
        if row:
            run.log(row, step=state.global_step)

    def on_evaluate(self, args: TrainingArguments, state: TrainerState,
                    control: TrainerControl, metrics: dict[str, Any] | None = None,
                    **kwargs: Any) -> None:
        # on_log has logged them; kept for the checkpoint saved at this step (its metric).
        if state.is_world_process_zero and metrics:
            self._last_eval = (state.global_step, dict(metrics))

    def on_predict(self, args: TrainingArguments, state: TrainerState,
                   control: TrainerControl, metrics: dict[str, Any] | None = None,
                   **kwargs: Any) -> None:
        run = self._ensure(args, state, kwargs.get("model"))
        if run is not None and metrics:  # final scores of a test set: the summary
            run.summary.update({_series_key(k, "test"): v for k, v in metrics.items()})

    def on_save(self, args: TrainingArguments, state: TrainerState, control: TrainerControl,
                **kwargs: Any) -> None:
        run = self._ensure(args, state, kwargs.get("model"))
        if run is None or not isinstance(run, Run):
            return
        step = state.global_step
        folder = Path(args.output_dir) / f"checkpoint-{step}"
        if not folder.is_dir():  # a hyperparameter search saves under a trial's folder
            self._say("nofolder", f"steadyrun: no checkpoint folder {folder}: checkpoints "
                      f"are not recorded and a resumed training starts a new run")
            return
        try:  # written first, so that the checkpoint's record lists it
            _write_json(folder / STATE_FILE, run.state_dict())
        except OSError as exc:  # a full disk must not stop the training
            self._say("write", f"steadyrun: cannot write {folder / STATE_FILE} ({exc}): a "
                      f"resume from this checkpoint starts a new run")
        metric, goal = self._checkpoint_metric(args, step)
        run.log_checkpoint(folder, step=step, metric=metric, goal=goal,
                           metadata={"global_step": step, "epoch": state.epoch})

    def on_train_end(self, args: TrainingArguments, state: TrainerState,
                     control: TrainerControl, **kwargs: Any) -> None:
        # Only made durable: nothing is built or uploaded here (transformers#34701), and
        # the run stays open for an evaluate() or predict() after train().
        live = self._live() if state.is_world_process_zero else None
        if live is not None:
            live.flush()

    # ------------------------------------------------------------------ helpers
    def _live(self) -> Run | InertRun | None:
        """The run while it is open (not finished)."""
        return self._run if self._run is not None and not self._run.finished else None

    def _ensure(self, args: TrainingArguments, state: TrainerState,
                model: Any) -> Run | InertRun | None:
        """The run, started on the first event that needs one; None on other ranks, and
        after `finish()` until the next `train()` (which starts a new run)."""
        if not state.is_world_process_zero:
            return None
        if self._run is None:
            self._start(args, state, model, None)
        return self._live()

    def _start(self, args: TrainingArguments, state: TrainerState, model: Any,
               saved: Mapping[str, Any] | None) -> None:
        _warn_if_wandb_too(args)
        kwargs = dict(self._init_kwargs)
        if state.trial_name:  # a hyperparameter search: a run per trial, grouped
            kwargs.setdefault("name", state.trial_name)
            kwargs.setdefault("group", args.run_name or args.output_dir)
        elif args.run_name and args.run_name != args.output_dir:
            kwargs.setdefault("name", args.run_name)
        if saved is not None:
            kwargs["resume"] = saved
        run = self._run = init(**kwargs)
        run.config.update(_trainer_config(args, model))
        if model is not None and hasattr(model, "parameters"):
            params = list(model.parameters())
            run.summary.update({
                "model/parameters": sum(p.numel() for p in params),
                "model/trainable_parameters": sum(p.numel() for p in params
                                                  if p.requires_grad)})
        best = args.metric_for_best_model
        if best:  # the summary keeps the best value, not the last
            run.define_metric(_series_key(_eval_name(best), "eval"),
                              goal="maximize" if args.greater_is_better else "minimize")

    def _saved_state(self, args: TrainingArguments,
                     state: TrainerState) -> Mapping[str, Any] | None:
        """The run state saved with the checkpoint training resumes from, if any.

        Callbacks are not told which checkpoint `train(resume_from_checkpoint=...)` was
        given, so it is looked for where it is: `resume=`, then
        `args.resume_from_checkpoint`, then `<output_dir>/checkpoint-<global step>`
        (what `resume_from_checkpoint=True` picks)."""
        if isinstance(self._resume, Mapping):
            return self._resume
        places = [self._resume, args.resume_from_checkpoint,
                  Path(args.output_dir) / f"checkpoint-{state.global_step}"]
        for place in places:
            if not place or isinstance(place, bool):
                continue
            path = Path(place)
            path = path / STATE_FILE if path.is_dir() else path
            try:
                data = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and data.get("run_id"):
                return data
        self._say("nostate", f"steadyrun: training resumes at step {state.global_step}, "
                  f"but no {STATE_FILE} was found in the checkpoint: a new run is started. "
                  f"Pass SteadyrunCallback(resume=<checkpoint folder>) to continue the old "
                  f"one.")
        return None

    def _checkpoint_metric(self, args: TrainingArguments,
                           step: int) -> tuple[float | None, str]:
        """The checkpoint's value of `metric_for_best_model`, from this step's evaluation,
        so that the best checkpoint gets the alias `best`."""
        goal = "maximize" if args.greater_is_better else "minimize"
        if not args.metric_for_best_model or self._last_eval is None \
                or self._last_eval[0] != step:
            return None, goal
        value = self._last_eval[1].get(_eval_name(args.metric_for_best_model))
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
            and math.isfinite(value)
        return (float(value) if ok else None), goal

    def _say(self, what: str, message: str) -> None:
        if what not in self._told:
            self._told.add(what)
            warnings.warn(message, SteadyrunWarning, stacklevel=3)


def _split_of(logs: Mapping[str, Any]) -> str:
    """The namespace of one `on_log` dict: `eval` or `test` when it holds such keys, the
    prefix of its `<prefix>_runtime` (`evaluate(metric_key_prefix="val")`), else `train`."""
    for split in ("eval", "test"):
        if any(k.startswith(split + "_") for k in logs):
            return split
    for key in logs:
        if key.endswith("_runtime") and key != "train_runtime" and "/" not in key:
            return key[:-len("_runtime")]
    return "train"


def _series_key(key: str, split: str) -> str:
    """`eval_loss` -> `eval/loss`, `loss` -> `train/loss` (in a train log), `epoch` ->
    `eval/epoch` (in an eval log); a key that already names its namespace (`custom/x`)
    is kept."""
    for prefix in (split, *_SPLITS):
        if key.startswith(prefix + "_"):
            return f"{prefix}/{key[len(prefix) + 1:]}"
    if "/" in key:
        return key
    return f"{split}/{key}"


def _eval_name(metric: str) -> str:
    return metric if metric.startswith("eval_") else f"eval_{metric}"


def _trainer_config(args: TrainingArguments, model: Any) -> dict[str, Any]:
    """`args` and `model` as plain JSON: Transformers' own serialisation (enums as values,
    `*_token` fields masked, dtypes as names); steadyrun redacts again by key name."""
    out: dict[str, Any] = {}
    try:
        out["args"] = json.loads(args.to_json_string())
    except (TypeError, ValueError):
        out["args"] = args.to_dict()  # steadyrun skips (and says) what is not JSON
    config = getattr(model, "config", None)
    if isinstance(config, Mapping):
        out["model"] = dict(config)
    elif config is not None and hasattr(config, "to_json_string"):
        try:
            out["model"] = json.loads(config.to_json_string(use_diff=False))
        except (TypeError, ValueError):
            out["model"] = config.to_dict()
    return out


def _warn_if_wandb_too(args: TrainingArguments) -> None:
    """Transformers 4.x reports to every installed integration by default, wandb
    included: its WandbCallback then opens a second W&B run beside the one steadyrun
    ships. Said once per process."""
    global _warned_wandb
    report_to = args.report_to or []
    if _warned_wandb or "wandb" not in ([report_to] if isinstance(report_to, str)
                                        else report_to):
        return
    _warned_wandb = True
    warnings.warn("steadyrun: report_to includes 'wandb', so Transformers' WandbCallback "
                  "opens a second W&B run beside the one steadyrun ships this training "
                  "to. Pass report_to='none' (or 'steadyrun' after "
                  "steadyrun.integrations.transformers.register()).", SteadyrunWarning,
                  stacklevel=4)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)
