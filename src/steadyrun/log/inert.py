"""The handle for disabled mode and for ranks that do not write: every call is a no-op.

It has the Run's full surface so that training code never branches on rank or mode.
"""

from __future__ import annotations

from typing import Any


class _NullMapping(dict):
    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        return None

    def __setitem__(self, key: Any, value: Any) -> None:
        return None


def _noop(*args: Any, **kwargs: Any) -> None:
    return None


class InertRun:
    """A run that records nothing; `reason` says why (disabled, or rank N)."""

    id = None
    dir = None
    project = None
    name = None
    role = "inert"
    step = 0
    log_interval = 10
    gpu_stats_interval = 100

    def __init__(self, reason: str) -> None:
        self.reason = reason
        self.mode = "disabled" if reason == "disabled" else "inert"
        self.summary = _NullMapping()
        self.config = _NullMapping()

    log_summary = define_metric = log_table = log_image = log_histogram = watch = alert = _noop
    log_leaderboard = _noop
    save = log_artifact = log_checkpoint = log_config_artifact = flush = finish = _noop
    mark_failed = note_seeds = detach_after_fork = set_baseline = watch_tick = _noop
    finished = False

    def log(self, metrics: Any = None, step: Any = None, commit: bool = True,
            reduce: str | None = None) -> None:
        """A no-op, except that it joins the all-reduce every rank must take part in."""
        if reduce is not None and metrics:
            from .distributed import all_reduce_metrics

            all_reduce_metrics(metrics, reduce)

    def log_training_step(self, *args: Any, reduce: str | None = None, **kwargs: Any) -> None:
        return None

    def state_dict(self) -> dict[str, Any]:
        return {}

    def child_env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        import os

        env = dict(os.environ if base is None else base)
        if self.reason == "disabled":
            env["STEADYRUN_MODE"] = "disabled"
        return env

    def __enter__(self) -> InertRun:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<steadyrun.InertRun ({self.reason})>"
