"""The training side: the `Run` a script holds and everything it writes into its own
segment (rows, summary, config, tables, media, histograms, checkpoints, metadata).

Imports only `store/`: nothing here reads other runs or talks to W&B.
"""

import sys
import types
from typing import Any


class _LogPackage(types.ModuleType):
    """This package, callable: `steadyrun.log({...})` logs to the current run.

    Why: with `import steadyrun as wandb`, `wandb.log(...)` is `steadyrun.log(...)`, and
    `steadyrun.log` is this package (Python sets a package's submodules as attributes of
    its parent). Rather than rename the training side's folder, the package's module
    object takes calls; `steadyrun.log.run` and every import of it are unchanged.
    """

    def __call__(self, data: Any, step: int | None = None, commit: bool | None = None) -> None:
        """wandb.log: a row for the run `steadyrun.init` returned last (`steadyrun.run`),
        with wandb's steps: `step=s` moves the step to s, and rows logged after it
        without step= continue from there (steadyrun's own `run.log` keeps its auto
        step apart, DESIGN.md 3.2). A lower `step=` is kept, not dropped as wandb does."""
        from .live_runs import current as run

        if run is None:
            raise RuntimeError("steadyrun.log() needs a run: call steadyrun.init() first "
                               "(as wandb.log needs wandb.init)")
        from .media_values import flatten

        data = flatten(data) if isinstance(data, dict) else data
        commits = commit is not False
        nxt = max(_wandb_next.get(run.id, 0), run.step)
        if step is None:
            if nxt == run.step:  # no step= so far: the run's own auto step (fast path)
                run.log(data, commit=commits)
            else:
                run.log(data, step=nxt, commit=commits)
                if commits:
                    _wandb_next[run.id] = nxt + 1
        else:
            run.log(data, step=step, commit=commits)
            if isinstance(step, int) and not isinstance(step, bool) and step >= nxt:
                # commit=True closes row `step`; otherwise rows without step= join it
                _wandb_next[run.id] = step + 1 if commit is True else step
        if commits:
            tick = getattr(run, "watch_tick", None)  # not on a no-op InertRun
            if tick is not None:
                tick()


# Per run id, the step wandb.log would give a row without step= (after a `step=`).
_wandb_next: dict[Any, int] = {}


sys.modules[__name__].__class__ = _LogPackage
