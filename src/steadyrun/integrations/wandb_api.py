"""wandb's module-level API over steadyrun, for `import steadyrun as wandb`.

Why: a script written for wandb should switch by its import line alone and then get
steadyrun's guarantees (no dropped rows, never an empty chart, one run per pipeline,
no stall without network). `steadyrun/__init__.py` resolves these names lazily; `init`,
`log` (the callable `steadyrun.log` package), `Image`, `Table` and `Histogram`
(log/media_values.py) live where the training side is.

What is covered is wandb's common subset: `init`, `log` (`step=`, `commit=`), `finish`,
`define_metric`, `save`, `alert`, `watch`, `login`, `config`, `summary`, `run`, `Table`,
`Image`, `Histogram`, `Artifact` with `log_artifact`, `Settings`, `AlertLevel`.
Everything else wandb has raises a `NotImplementedError` that names what to use
instead: a call is never silently dropped.
"""

from __future__ import annotations

import glob as globbing
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..log import live_runs
from ..log.checkpoints import artifact_name
from ..store.layout import staged_dir


def _run(what: str) -> Any:
    run = live_runs.current
    if run is None:
        raise RuntimeError(f"steadyrun.{what}() needs a run: call steadyrun.init() first "
                           f"(as wandb.{what} needs wandb.init)")
    return run


def current_run() -> Any:
    """`steadyrun.run` (wandb.run): the run init() returned last, None when finished."""
    run = live_runs.current
    return None if run is None or run.finished else run


class _PreInit(Mapping[str, Any]):
    """`steadyrun.config` / `steadyrun.summary` before init(): empty to read, and an
    error to write, as wandb's are (a value set there would belong to no run)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError(f"steadyrun.{self._name} is written after steadyrun.init(): "
                           f"pass config= to init, or call init first")

    update = __setitem__ = _refuse

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        self._refuse()

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_"):
            object.__setattr__(self, key, value)
        else:
            self._refuse()


def current_config() -> Any:
    run = current_run()
    return run.config if run is not None else _PreInit("config")


def current_summary() -> Any:
    run = current_run()
    return run.summary if run is not None else _PreInit("summary")


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """wandb.finish: end the current run (a no-op without one, as in wandb)."""
    run = live_runs.current
    if run is not None:
        run.finish(exit_code=exit_code)
        live_runs.set_current(None)


join = finish  # wandb's old name for finish


def define_metric(name: str, step_metric: str | None = None, step_sync: bool | None = None,
                  hidden: bool | None = None, summary: str | None = None,
                  goal: str | None = None, overwrite: bool | None = None) -> None:
    """wandb.define_metric. The axes need no definition: every key is charted on its
    namespace's step (DESIGN.md 3.4), so W&B never draws an empty chart. `summary`,
    `goal` and `hidden` are kept; a `step_metric` is passed on as given."""
    step_metric = getattr(step_metric, "name", step_metric)  # a wandb Metric object
    _run("define_metric").define_metric(name, step_metric=step_metric, goal=goal,
                                        summary=summary, hidden=bool(hidden))


def save(glob_str: str | os.PathLike[str], base_path: str | os.PathLike[str] | None = None,
         policy: str = "live", glob: bool = True) -> list[str]:
    """wandb.save: copy the matching files into the run's files/ now (any `policy`:
    a later edit is not followed; save again to keep it), named relative to
    `base_path` (default: the pattern's folder). Returns the names kept."""
    run = _run("save")
    pattern = os.fspath(glob_str)
    paths = sorted(globbing.glob(pattern, recursive=True)) if glob else [pattern]
    base = Path(base_path) if base_path is not None else Path(pattern).parent
    kept: list[str] = []
    for path in paths:
        if not Path(path).is_file():
            continue
        try:
            name = str(Path(path).resolve().relative_to(base.resolve()))
        except ValueError:
            name = Path(path).name
        if run.save(path, name=name) is not None:
            kept.append(name)
    if not kept:
        run.save(pattern)  # nothing matched: the run records why (warned, never silent)
    return kept


class AlertLevel:
    """wandb.AlertLevel: the levels `alert` takes."""

    INFO = "INFO"
    WARN = "WARN"
    ERROR = "ERROR"


def alert(title: str, text: str = "", level: Any = None, wait_duration: Any = None) -> None:
    """wandb.alert (wait_duration, W&B's rate limit for the same title, is W&B's own)."""
    level = getattr(level, "value", level) or "INFO"
    _run("alert").alert(title, text, level=str(level))


def watch(models: Any, criterion: Any = None, log: str | None = "gradients",
          log_freq: int = 1000, idx: int | None = None, log_graph: bool = False) -> None:
    """wandb.watch: histograms of the model's gradients and/or parameters every
    `log_freq` calls of `steadyrun.log` (or steps of `run.log_training_step`)."""
    if log_graph:
        raise NotImplementedError("steadyrun.watch(log_graph=True): the model graph is not "
                                  "recorded; log its text with run.save or a table")
    if log is None:
        return  # wandb's log=None: the model is watched for nothing
    run = _run("watch")
    for model in models if isinstance(models, (list, tuple)) else [models]:
        run.watch(model, log=log, log_freq=log_freq)


def unwatch(models: Any = None) -> None:
    raise NotImplementedError("steadyrun.unwatch(): a run watches one model until it ends; "
                              "start watching another with steadyrun.watch(model)")


def login(key: str | None = None, relogin: bool | None = None, host: str | None = None,
          **kwargs: Any) -> bool:
    """wandb.login: a key given here is the sidecar's (WANDB_API_KEY, never written to
    the run); without one, the key W&B already has is used, or the run stays offline."""
    if key:
        os.environ["WANDB_API_KEY"] = key
    if host:
        os.environ["WANDB_BASE_URL"] = host
    return True


class Settings(dict):
    """wandb.Settings: accepted and ignored (init's own arguments are steadyrun's)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)


class Artifact:
    """wandb.Artifact: files and folders recorded together by `log_artifact`."""

    def __init__(self, name: str, type: str = "dataset", description: str | None = None,
                 metadata: Mapping[str, Any] | None = None, **_ignored: Any) -> None:
        self.name = name
        self.type = type
        self.description = description
        self.metadata = dict(metadata or {})
        self.entries: list[tuple[Path, str | None]] = []

    def add_file(self, local_path: str | os.PathLike[str], name: str | None = None,
                 **_ignored: Any) -> None:
        if not Path(local_path).is_file():
            raise ValueError(f"Artifact.add_file: {local_path} is not a file")
        self.entries.append((Path(local_path), name))

    def add_dir(self, local_path: str | os.PathLike[str], name: str | None = None,
                **_ignored: Any) -> None:
        if not Path(local_path).is_dir():
            raise ValueError(f"Artifact.add_dir: {local_path} is not a folder")
        self.entries.append((Path(local_path), name))

    def add_reference(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("Artifact.add_reference: steadyrun records local files; "
                                  "download the object and add_file it")

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("Artifact.new_file: write the file yourself, then add_file")


def log_artifact(artifact_or_path: Any, name: str | None = None, type: str | None = None,
                 aliases: Sequence[str] | None = None, tags: Any = None) -> Any:
    """wandb.log_artifact: an Artifact (or a path) recorded with `run.log_artifact`,
    under the same upload policy as checkpoints (DESIGN.md 5)."""
    run = _run("log_artifact")
    if not isinstance(artifact_or_path, Artifact):
        return run.log_artifact(artifact_or_path, type=type or "dataset", name=name,
                                aliases=aliases)
    art = artifact_or_path
    if not art.entries:
        raise ValueError(f"steadyrun.log_artifact: artifact {art.name!r} has no files")
    path, rename = art.entries[0]
    if len(art.entries) > 1 or rename is not None:
        path = _staged(run, art)
    metadata = {**art.metadata, **({"description": art.description} if art.description
                                   else {})}
    return run.log_artifact(path, type=type or art.type, name=name or art.name,
                            aliases=aliases, metadata=metadata or None)


def _staged(run: Any, art: Artifact) -> Path:
    """Several entries (or a renamed one) in one folder, as W&B stages them: hard links
    where the filesystem allows, else copies, under the run's `artifacts/staged/`."""
    root = staged_dir(Path(run.dir), artifact_name(art.name))
    for src, rename in art.entries:
        dest = root / (rename or src.name)
        if src.is_dir():
            shutil.copytree(src, dest, copy_function=_link_or_copy, dirs_exist_ok=True)
        else:
            dest.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(str(src), str(dest))
    return root


def _link_or_copy(src: str, dest: str) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copy2(src, dest)


# What wandb has and steadyrun does not, and what to use instead.
UNSUPPORTED = {
    "Api": "steadyrun.open_run / steadyrun.list_runs to read runs (W&B's server API is "
           "wandb's own: import wandb for it)",
    "sweep": "a sweep is W&B's server-side search; run your search loop and init() one "
             "run per trial",
    "agent": "a sweep agent is W&B's server-side search; run your search loop and init() "
             "one run per trial",
    "controller": "W&B's sweep controller; run your search loop and init() one run per trial",
    "use_artifact": "read the file where it is; steadyrun records artifacts, it does not "
                    "download them",
    "use_model": "read the file where it is", "link_model": "log_artifact(path, type='model')",
    "log_model": "run.log_checkpoint(path) or log_artifact(path, type='model')",
    "restore": "read the file from the run's files/ folder (steadyrun.open_run(id).dir)",
    "Video": "log frames with steadyrun.Image, or save the file with steadyrun.save",
    "Audio": "save the file with steadyrun.save", "Html": "save the file with steadyrun.save",
    "Object3D": "save the file with steadyrun.save",
    "Molecule": "save the file with steadyrun.save",
    "Plotly": "log the figure as an image (steadyrun.Image(fig)) or save its HTML",
    "Graph": "save the model's text with steadyrun.save",
    "plot": "log the data with steadyrun.Table; `steadyrun ui` charts every key",
    "plot_table": "log the data with steadyrun.Table",
    "mark_preempting": "SIGTERM finishes the run; resume it with init(resume=state)",
    "setup": "nothing to set up: steadyrun starts its sidecar in init()",
    "teardown": "steadyrun.finish()",
}


class Unsupported:
    """A wandb name steadyrun does not have: calling it, or anything on it, raises."""

    def __init__(self, name: str) -> None:
        self._name = name

    def _raise(self) -> Any:
        raise NotImplementedError(f"steadyrun does not implement wandb.{self._name}: "
                                  f"{UNSUPPORTED[self._name]}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._raise()

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("__"):
            raise AttributeError(attr)
        return self

    def __repr__(self) -> str:
        return f"<steadyrun: wandb.{self._name} is not supported: {UNSUPPORTED[self._name]}>"
