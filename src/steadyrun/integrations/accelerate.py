"""steadyrun as a Hugging Face Accelerate tracker: `Accelerator(log_with="steadyrun")`.

    import steadyrun.integrations.accelerate  # registers log_with="steadyrun"
    accelerator = Accelerator(log_with="steadyrun")
    accelerator.init_trackers("my-project", config=cfg,
                              init_kwargs={"steadyrun": {"name": "run-1", "tags": ["a"]}})

Importing this module registers the tracker by name (Accelerate 1.15+ has
`accelerate.tracking.register_tracker_class`): the import is the one line a script
adds, and it is needed anyway to reach the class. Older Accelerate cannot register a
name, so there only an instance works: `Accelerator(log_with=SteadyrunTracker(
project="my-project"))` (an instance is never given `init_trackers`' project name, so it
takes it in its constructor). `register()` says so when asked to register there.

Why a tracker of its own rather than Accelerate's W&B tracker:
- accelerate.log(step=epoch) after rows logged at step=global_step (kohya-ss/musubi-tuner
  #294): W&B's `_step` is the user's step, so every row with a lower step is dropped
  ("Tried to log to step 15 that is less than 150") and the epoch chart stays empty.
  Here `step=` is the row's x in its keys' namespace (DESIGN.md section 3) and the
  sidecar owns W&B's `_step`, so every row is kept and each key is charted against its
  own namespace's step metric, which holds the step the user gave.
- one run for the whole job (accelerate#644, #3818): only the main process writes
  (`main_process_only`), and only steadyrun's sidecar talks to W&B, once per run.
Everything goes through the public Run API (log, config, log_table, log_image, finish).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import accelerate
import accelerate.tracking as _tracking
from accelerate.state import PartialState
from accelerate.tracking import GeneralTracker

from ..api import init
from ..log.callsite import skip_frames_of
from ..log.inert import InertRun
from ..log.run import Run

# A warning (a step regression) names the user's accelerator.log(...) line, not tracking.py.
skip_frames_of(accelerate)

NAME = "steadyrun"


def _on_main_process(function: Any) -> Any:
    """Accelerate's own decorator where it has one: it asks `PartialState` at call time,
    so building the tracker before the `Accelerator` initialises nothing."""
    decorate = getattr(_tracking, "on_main_process", None)
    if decorate is not None:
        return decorate(function)

    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - old
        if getattr(self, "main_process_only", False) and not PartialState().is_main_process:
            return None
        return function(self, *args, **kwargs)

    return wrapper


class SteadyrunTracker(GeneralTracker):
    """An Accelerate tracker that writes a steadyrun run (and through it one W&B run).

    By name, Accelerate builds it as `SteadyrunTracker(project_name, **init_kwargs[
    "steadyrun"])`; as an instance, give `project` (and any other `steadyrun.init`
    argument: name, tags, group, config, mode, dir, id, ...) to the constructor.

    The run is opened at `start()` (or at the first call, on Accelerate versions that
    have no `start`), on the main process only: `accelerator.log` runs there alone, and
    other processes get an `InertRun` from `.tracker`, whose calls do nothing.
    """

    name = NAME
    requires_logging_directory = False
    # Accelerate's log() runs on the main process only; the run is opened there alone.
    main_process_only = True

    def __init__(self, project: str | None = None, **init_kwargs: Any) -> None:
        super().__init__()
        if init_kwargs.get("all_ranks"):
            # Only the main process would reach init(); with torch.distributed up, it
            # would wait for the other ranks in the run id's broadcast, forever.
            raise ValueError("SteadyrunTracker writes from Accelerate's main process only "
                             "(accelerator.log runs there alone), so all_ranks=True cannot "
                             "work; call steadyrun.init(all_ranks=True) on every rank instead")
        self.project = project
        self.init_kwargs = init_kwargs
        self._run: Run | InertRun | None = None

    # ------------------------------------------------------------------ the run
    def _open(self) -> Run | InertRun:
        if self._run is None:
            self._run = init(project=self.project, **self.init_kwargs)
        return self._run

    @_on_main_process
    def start(self) -> None:
        """Open the run (Accelerate calls this in `init_trackers`, after the process
        group is set up)."""
        self._open()

    @property
    def tracker(self) -> Run | InertRun:
        """The steadyrun Run (`accelerator.get_tracker("steadyrun", unwrap=True)`), e.g.
        for `.summary.update(...)`. Off the main process (where Accelerate's own
        `get_tracker` gives a blank tracker: `init_trackers` runs on the main process
        alone) an instance held by the script gives an InertRun, whose calls do nothing."""
        if self._run is None:
            if self.main_process_only and not PartialState().is_main_process:
                return InertRun(reason="not Accelerate's main process")
            return self._open()
        return self._run

    # ------------------------------------------------------------------ calls
    @_on_main_process
    def store_init_configuration(self, values: Mapping[str, Any]) -> None:
        """`init_trackers(config=...)`: the run's config (nested values stay nested)."""
        self._open().config.update(dict(values))

    @_on_main_process
    def log(self, values: Mapping[str, Any], step: int | None = None,
            commit: bool = True) -> None:
        """One row. `step` is its x in each key's namespace, passed on unchanged, so a
        row logged with `step=epoch` after rows at `step=global_step` is kept: a key
        charted only per epoch (`loss/epoch`) gets its own points at x = epoch. When it
        shares a namespace with per-step keys, that namespace's step goes back, and
        steadyrun warns once and records a `step_regression` event (W&B keeps the row:
        the sidecar owns `_step`). Keys of their own namespace (`epoch/loss`) avoid it.

        Nested dicts (TensorBoard's `add_scalars` style, `{"loss": {"train": x}}`)
        become `loss/train`. A value that is no number (a string) is refused as by
        `run.log`: warned once and recorded, never silently lost.
        """
        self._open().log(_flat(values), step=step, commit=commit)

    @_on_main_process
    def log_images(self, values: Mapping[str, Any], step: int | None = None,
                   caption: str | None = None, dataformats: str | None = None) -> None:
        """Images per key: one image, a list of them, or a batch array (N first, as
        Accelerate's TensorBoard tracker takes it; `dataformats="NCHW"` or `"CHW"` says
        the channels come first). Each is a PNG of the run and a `wandb.Image`, at x =
        `step` on its key's namespace axis."""
        run = self._open()
        channels_first = bool(dataformats) and dataformats.upper().lstrip("N").startswith("C")
        for key, value in values.items():
            batch = (value if isinstance(value, (list, tuple))
                     or getattr(value, "ndim", 0) == 4 else [value])
            for image in batch:
                if channels_first and getattr(image, "ndim", 0) == 3:
                    # to HWC: torch tensors permute, numpy arrays transpose
                    move = getattr(image, "permute", None) or image.transpose
                    image = move(1, 2, 0)
                run.log_image(key, image, caption=caption, step=step)

    @_on_main_process
    def log_table(self, table_name: str, columns: list[str] | None = None,
                  data: list[list[Any]] | None = None, dataframe: Any = None,
                  step: int | None = None) -> None:
        """A table (W&B: a `wandb.Table`), with `columns` and `data` rows or a pandas
        `dataframe`, like Accelerate's W&B tracker."""
        self._open().log_table(table_name, columns, data, dataframe=dataframe, step=step)

    @_on_main_process
    def finish(self) -> None:
        """`accelerator.end_training()`: finish the run (it waits, bounded, for the
        sidecar to ship it)."""
        if self._run is not None:
            self._run.finish()


def _flat(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(value, f"{name}/"))
        else:
            out[name] = value
    return out


def register() -> type[SteadyrunTracker]:
    """Make `Accelerator(log_with="steadyrun")` work (done once at import; repeating it
    is harmless). Raises RuntimeError on Accelerate versions without
    `register_tracker_class` (before 1.15), where only an instance can be given."""
    registry = getattr(_tracking, "LOGGER_TYPE_TO_CLASS", {})
    if registry.get(NAME) is SteadyrunTracker:
        return SteadyrunTracker
    add = getattr(_tracking, "register_tracker_class", None)
    if add is None:
        version = getattr(__import__("accelerate"), "__version__", "?")
        raise RuntimeError(
            f"accelerate {version} cannot register trackers by name (register_tracker_class "
            f"came in 1.15): pass an instance instead, Accelerator(log_with="
            f"SteadyrunTracker(project=...)), or upgrade accelerate")
    add(SteadyrunTracker)
    return SteadyrunTracker


if hasattr(_tracking, "register_tracker_class"):
    register()
