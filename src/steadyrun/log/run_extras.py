"""The Run's calls beyond time series: metric definitions, tables, images, files, alerts,
and the training helpers of DESIGN.md section 5.

A mixin, so `run.py` stays about the hot path and the lifecycle. It is part of the Run
(the two files are one class), so it shares the Run's fields, listed on the class; every
method turns one call into one record through the same `_append` and `_bad` as
`Run.log`. Work done for the Run elsewhere (checkpoints.py, training.py) gets the Run's
`RunPort` or explicit callables, never the Run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from ..store import records
from ..store.layout import FILES, MEDIA, files_dir
from ..store.redact import redact_text, redact_tree, redact_value
from ..store.steps import step_metric_of
from ..store.values import Rejected, check_key, nonfinite_tag, to_number
from .config_input import clean_config


class RunExtras:
    """Mixed into `Run` (run.py), whose fields and methods these are."""

    # What run.py provides (declared for readers and type checkers).
    dir: Path
    summary: Any
    log_interval: int
    gpu_stats_interval: int
    _port: Any
    _step: int
    _steps: Any
    _trainer: Any
    _watched: Any
    _sized_model: Any
    _checkpoints: Any
    _media_counter: int
    _prefix: str  # an extra rank's `rank{N}/` (run.py), else ""
    _watch_calls: int = 0  # committed steadyrun.log() calls since watch (watch_tick)
    _best_checkpoint: float | None = None  # a resumed run's best so far (run_start)
    _leaderboard: Any = None  # read/leaderboard's table, given by api through start_run
    _append: Any
    _bad: Any
    _clean_step: Any

    # ------------------------------------------------------------------ summary, config
    def _on_summary(self, data: Any) -> dict[str, Any]:
        if not isinstance(data, Mapping):
            self._bad("<summary>", data, f"summary takes a mapping of key to value, got "
                                         f"{type(data).__name__}")
            return {}
        accepted: dict[str, Any] = {}
        nf: dict[str, str] = {}
        for k, v in data.items():
            try:
                check_key(k)
                if isinstance(v, str):
                    accepted[k] = redact_value(k, v)
                    continue
                num = to_number(k, v)
            except Rejected as exc:
                self._bad(k, v, exc.reason, exc.exc_type)
                continue
            if type(num) is float and num - num != 0.0:
                nf[k] = nonfinite_tag(num)
                accepted[k] = num
                continue
            accepted[k] = num
        if accepted:
            # An extra rank's summary goes under its `rank{N}/` like its rows (_own).
            # Unprefixed, every rank's `final` landed on one key of the one run and the
            # last writer won: in W&B rank 1's score replaced rank 0's
            # (tests/test_ranks_wandb.py). This rank's own view (`run.summary`) keeps the
            # keys it was given.
            out = {self._own(k): (None if k in nf else v) for k, v in accepted.items()}
            nf = {self._own(k): tag for k, tag in nf.items()}
            self._append(records.encode(records.summary(out, nf)))
        return accepted

    def log_summary(self, metrics: Mapping[str, Any], prefix: str | None = None) -> None:
        """Final scalars: they go to the summary, never to a chart."""
        if prefix:
            metrics = {f"{prefix.rstrip('/')}/{k}": v for k, v in metrics.items()}
        self.summary.update(metrics)

    def _on_config(self, data: dict[str, Any]) -> dict[str, Any]:
        cleaned = clean_config(data, lambda k, v, why: self._bad(f"config.{k}", v, why))
        if cleaned:
            self._append(records.encode(records.config(cleaned)))
        return cleaned

    # ------------------------------------------------------------------ other records
    def _own(self, key: str) -> str:
        """`key` as this writer records it: an extra rank's under its `rank{N}/` (DESIGN
        section 5), so its tables, images, histograms and metric rules land beside its
        rows, never on rank 0's keys in the one W&B run."""
        return self._prefix + key if self._prefix else key

    def define_metric(self, name: str, step_metric: str | None = None, goal: str | None = None,
                      summary: str | None = None, hidden: bool = False) -> None:
        """Exact-key axis and summary rules; the sink forwards them to W&B."""
        if goal is not None and goal not in records.GOALS:
            self._bad(name, goal, f"goal must be 'minimize' or 'maximize', got {goal!r}",
                      ValueError)
            goal = None
        step_metric = self._own(step_metric) if step_metric else step_metric
        self._append(records.encode(records.metric(self._own(name), step_metric, goal,
                                                   summary, hidden)))

    def log_table(self, key: str, columns: list[str] | None = None,
                  rows: list[list[Any]] | None = None, *, data: list[list[Any]] | None = None,
                  dataframe: Any = None, step: int | None = None) -> None:
        if dataframe is not None:
            columns = [str(c) for c in dataframe.columns]
            rows = dataframe.astype(object).values.tolist()
        rows = rows if rows is not None else (data or [])
        try:
            check_key(key)
            columns = [str(c) for c in (columns or [f"c{i}" for i in range(len(rows[0]) if rows else 0)])]
            if any(len(r) != len(columns) for r in rows):
                raise Rejected(key, f"every row must have {len(columns)} cells", ValueError)
            # Cells are free text like any other: the same redaction as config and summary.
            cells = [[redact_tree(c) for c in r] for r in rows]
            own = self._own(key)
            line = orjson.dumps(records.table(own, [redact_text(c) for c in columns], cells,
                                              self._x(step, own)),
                          option=orjson.OPT_SERIALIZE_NUMPY, default=_table_cell)
        except Rejected as exc:
            self._bad(key, rows, exc.reason, exc.exc_type)
            return
        except (TypeError, orjson.JSONEncodeError) as exc:
            self._bad(key, rows, f"table cells must be JSON values: {exc}")
            return
        self._append(line + b"\n")

    def log_leaderboard(self, key: str = "leaderboard", project: str | None = None,
                        group: str | None = None, tag: str | None = None,
                        metric: str | None = None, top: int | None = None,
                        goal: str | None = None, step: int | None = None) -> None:
        """The leaderboard of the runs under this run's root (this one included), as the
        table `key`: what `steadyrun leaderboard` prints, with the same filters, metric,
        goal and top (read/leaderboard.py). In W&B a `wandb.Table`.

        The ranking reads other runs, which is read/'s work, and log/ may not import it:
        `steadyrun.init` and `attach` hand the Run the reader's table function
        (`_leaderboard`, api.py). A leaderboard that cannot be made (no runs, no metric
        or several with a goal) is refused like any bad input: warned and recorded, or
        raised in strict mode."""
        source = self._leaderboard
        if source is None:
            self._bad(key, None, "this Run was not made by steadyrun.init or attach, so it "
                      "cannot read other runs", RuntimeError)
            return
        try:
            columns, rows = source(self.dir.parent.parent, project=project, group=group,
                                   tag=tag, metric=metric, goal=goal, top=top)
        except Exception as exc:  # noqa: BLE001 - never into training (strict: raised)
            self._bad(key, metric, f"no leaderboard: {exc}",
                      ValueError if isinstance(exc, ValueError) else RuntimeError)
            return
        self.log_table(key, columns, rows, step=step)

    def log_image(self, key: str, image: Any, caption: str | None = None,
                  step: int | None = None) -> None:
        from .media import safe_name, write_png

        try:
            check_key(key)
            self._media_counter += 1
            rel = f"{MEDIA}/{safe_name(key)}_{self._media_counter}_{os.getpid()}.png"
            write_png(image, self.dir / rel)
            os.chmod(self.dir / rel, 0o600)  # owner-only whatever the umask
        except Rejected as exc:
            self._bad(key, image, exc.reason, exc.exc_type)
            return
        except (TypeError, ValueError, OSError, ImportError) as exc:
            self._bad(key, image, f"cannot write the image: {exc}", type(exc)
                      if isinstance(exc, (TypeError, ValueError)) else ValueError)
            return
        if caption is not None:
            caption = redact_text(str(caption))
        own = self._own(key)
        self._append(records.encode(records.image(own, rel, caption, self._x(step, own))))

    def log_histogram(self, key: str, values: Any, step: int | None = None,
                      bins: int = 64) -> None:
        """A histogram of numbers (tensor, array, sequence), binned where they live."""
        self._log_histograms({key: values}, step, bins)

    def watch(self, model: Any, log: str = "gradients", log_freq: int = 100,
              bins: int = 64) -> None:
        """Histograms of `model`'s parameters and/or gradients every `log_freq` steps of
        `log_training_step` (W&B's `watch`, without its hooks): `parameters/<name>` and
        `gradients/<name>`, one W&B row and one host transfer per interval."""
        from .histograms import WATCH_LOG, check_bins

        if log not in WATCH_LOG or isinstance(log_freq, bool) or not isinstance(log_freq, int) \
                or log_freq < 1:
            self._bad("watch", (log, log_freq), f"log must be one of {WATCH_LOG} and log_freq "
                      f"an int >= 1, got {log!r}, {log_freq!r}", ValueError)
            return
        try:
            check_bins("watch", bins)
        except Rejected as exc:
            self._bad("watch", bins, exc.reason, exc.exc_type)
            return
        self._watched = (model, log, log_freq, bins)
        self.summary.update(model_size(model))

    def _after_training_step(self, step: int, model: Any, prefix: str) -> None:
        """Called by the step logger after each step: the first model it sees has its
        size put in the summary, and the watched model's histograms are taken when due."""
        if model is not None and self._sized_model is not model:
            self._sized_model = model
            self.summary.update(model_size(model))
        if self._watched is not None:
            self._watch_step(step, prefix)

    def watch_tick(self) -> None:
        """After each committed `steadyrun.log(...)` (wandb.log): a script written for
        wandb never calls log_training_step, so its `watch` is served every `log_freq`-th
        call of wandb.log (wandb counts backward passes), at that row's x."""
        if self._watched is None:
            return
        self._watch_calls += 1
        if self._watch_calls % self._watched[2] == 0:
            self._watch_step(0, x=max(self._step - 1, 0))

    def _watch_step(self, step: int, prefix: str = "", x: int | None = None) -> None:
        """The watched model's histograms when they are due (under the stage's prefix, so
        stages restarting at step 0 keep their own axes), at `x` (default: `step`)."""
        model, log, log_freq, bins = self._watched
        if step % log_freq:
            return
        named: dict[str, Any] = {}
        for name, param in model.named_parameters():
            if log in ("parameters", "all"):
                named[f"{prefix}parameters/{name}"] = param
            if log in ("gradients", "all") and param.grad is not None:
                named[f"{prefix}gradients/{name}"] = param.grad
        if named:
            self._log_histograms(named, step if x is None else x, bins)

    def _log_histograms(self, named: dict[str, Any], step: int | None, bins: int) -> None:
        from .histograms import check_bins, of_many

        good: dict[str, Any] = {}
        for key, values in named.items():
            try:
                check_key(key)
                check_bins(key, bins)
                good[key] = values
            except Rejected as exc:
                self._bad(key, values, exc.reason, exc.exc_type)
        hists, rejected = of_many(good, bins) if good else ({}, [])
        for exc in rejected:  # one bad input must not cost the others their histograms
            self._bad(exc.key, good[exc.key], exc.reason, exc.exc_type)
        if hists:
            hists = {self._own(k): h for k, h in hists.items()}
            x = self._x(step, next(iter(hists)))
            self._append(records.encode(records.histogram(hists, x)))

    def save(self, path: str | os.PathLike[str], name: str | None = None) -> Path | None:
        """Copy a file into the run's files/ folder now, so later edits cannot change it."""
        src = Path(path)
        if not src.is_file():
            self._bad(str(path), path, "save() needs an existing file", ValueError)
            return None
        dest_name = redact_text(name or src.name)
        dest = (files_dir(self.dir) / dest_name).resolve()
        if not dest.is_relative_to(files_dir(self.dir).resolve()):
            self._bad(str(path), path, f"name {dest_name!r} escapes the files/ folder",
                      ValueError)
            return None
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dest)
            os.chmod(dest, 0o600)  # owner-only whatever the umask, like the segments
        except OSError as exc:  # a full or read-only folder, a name that is a folder
            self._bad(str(path), path, f"cannot copy it to {dest}: {exc}", OSError)
            return None
        self._append(records.encode(records.file(f"{FILES}/{dest_name}", dest_name)))
        return dest

    def alert(self, title: str, text: str = "", level: str = "WARN") -> None:
        """An alert, at W&B's levels INFO, WARN or ERROR (any case). The levels of Python's
        logging that W&B lacks are mapped, with a note in the text: WARNING to WARN,
        CRITICAL and FATAL to ERROR."""
        asked = str(level).upper()
        level = _ALERT_LEVELS.get(asked, asked)
        text = str(text)
        if level not in ("INFO", "WARN", "ERROR"):
            self._bad("alert.level", asked, "level must be INFO, WARN or ERROR (or WARNING, "
                      "CRITICAL, FATAL); sent as WARN", ValueError)
            level = "WARN"
        elif asked != level and asked != "WARNING":
            text = f"{text}\n(level {asked}, sent as {level}: W&B has no {asked})".lstrip()
        self._append(records.encode(records.alert(redact_text(str(title)),
                                                  redact_text(text), level)))

    def _log_media(self, media: list[tuple[str, Any]], x: int | None) -> None:
        """The Image, Table and Histogram values of a `log` call (media_values.py), each
        recorded at the x of the row they came with (None: where its namespace is)."""
        from .media_values import Histogram, Image

        for key, value in media:
            if isinstance(value, Image):
                self.log_image(key, value.data, caption=value.caption, step=x)
            elif isinstance(value, Histogram):
                if value.binned is None:
                    self.log_histogram(key, value.values, step=x, bins=value.bins)
                else:
                    self._binned_histogram(key, value.binned, x)
            else:
                self.log_table(key, value.columns, value.data, step=x)

    def _binned_histogram(self, key: str, binned: Any, x: int | None) -> None:
        """wandb's `Histogram(np_histogram=(counts, edges))`: already binned, kept as is."""
        try:
            check_key(key)
            counts, edges = ([float(c) for c in part] for part in binned)
            if len(edges) != len(counts) + 1:
                raise Rejected(key, f"np_histogram needs len(edges) == len(counts) + 1, got "
                                    f"{len(counts)} counts and {len(edges)} edges", ValueError)
        except Rejected as exc:
            self._bad(key, binned, exc.reason, exc.exc_type)
            return
        except (TypeError, ValueError) as exc:
            self._bad(key, binned, f"np_histogram must be (counts, edges): {exc}", TypeError)
            return
        hist = {"counts": counts, "edges": edges, "nonfinite": 0}
        own = self._own(key)
        self._append(records.encode(records.histogram({own: hist}, self._x(x, own))))

    def _x(self, step: int | None, key: str) -> int:
        """Without step=, a table or image sits at the current point of its namespace's
        axis; a namespace with no rows yet falls back to the global step."""
        if step is not None:
            return self._clean_step(step)
        last = self._steps.last.get(step_metric_of(key))
        return last if isinstance(last, int) else max(self._step - 1, 0)


    # ------------------------------------------------------------------ training (section 5)
    def log_training_step(self, loss: Any, step: int, batch_size: int | None = None,
                          optimizer: Any = None, model: Any = None, scaler: Any = None,
                          prefix: str | None = None) -> None:
        """loss/*, train/lr, train/grad_norm, train/amp_scale and perf/* every
        `log_interval` steps, gpu/* every `gpu_stats_interval`; tensors are read once per
        interval, never per step (training.py). `prefix="stage1"` puts every key under
        `stage1/`, so pipeline stages that restart at step 0 never collide."""
        trainer = self._trainer
        if trainer is None or trainer.prefix != (f"{prefix.strip('/')}/" if prefix else ""):
            from .training import StepLogger

            if trainer is not None:
                trainer.close()
            trainer = self._trainer = StepLogger(
                self.log, self._bad, self._after_training_step, prefix or "",
                every=self.log_interval, gpu_every=self.gpu_stats_interval)
        trainer(loss, step, batch_size, optimizer, model, scaler)

    def log_checkpoint(self, path: str | os.PathLike[str], aliases: Any = ("latest",),
                       force: bool = False, name: str | None = None,
                       step: int | None = None, metadata: dict[str, Any] | None = None,
                       metric: float | None = None,
                       goal: str = "minimize") -> dict[str, Any] | None:
        """Record a checkpoint; uploaded only under the model policy (checkpoints.py).
        With `metric`, the best one so far also gets the alias `best`."""
        return self._checkpoint_log().checkpoint(
            path, aliases=aliases, force=force, name=name, step=step, metadata=metadata,
            metric=metric, goal=goal)

    def log_artifact(self, path: str | os.PathLike[str], type: str = "model",
                     name: str | None = None, aliases: Any = None, force: bool = False,
                     step: int | None = None,
                     metadata: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Record a file or folder as an artifact; same upload policy as checkpoints."""
        return self._checkpoint_log().artifact(path, type=type, name=name, aliases=aliases,
                                               force=force, step=step, metadata=metadata)

    def log_config_artifact(self, name: str = "config.yaml") -> Path | None:
        """The resolved, redacted config as YAML under files/, and a `config` artifact."""
        return self._checkpoint_log().config_artifact(name)

    def _checkpoint_log(self) -> Any:
        if self._checkpoints is None:
            from .checkpoints import CheckpointLog

            self._checkpoints = CheckpointLog(self._port, best=self._best_checkpoint)
        return self._checkpoints


_ALERT_LEVELS = {"WARNING": "WARN", "CRITICAL": "ERROR", "FATAL": "ERROR"}


def _table_cell(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not a JSON value")


def model_size(model: Any) -> dict[str, int]:
    """`model/parameters` and `model/trainable_parameters` (seed 003's parameter counts),
    from shapes alone: no device read."""
    total = trainable = 0
    for param in model.parameters():
        n = param.numel()
        total += n
        trainable += n if param.requires_grad else 0
    return {"model/parameters": total, "model/trainable_parameters": trainable}
