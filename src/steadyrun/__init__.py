"""steadyrun: experiment tracking for PyTorch training that cannot lose a value.

`import steadyrun` is cheap: it imports no wandb, torch or numpy. Public names resolve
lazily on first use, so scripts pay only for what they call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "init": "api",
    "Run": "log.run",
    "InertRun": "log.inert",
    "SteadyrunWarning": "store.values",
    "open_run": "read.reader",
    "list_runs": "read.reader",
    "RunData": "read.reader",
    "attach": "api",
    "ContextError": "log.context",
    "is_main_process": "log.distributed",
    "compute_grad_norm": "log.training",
    "get_learning_rate": "log.training",
    "get_amp_scale": "log.training",
    "get_gpu_stats": "log.training",
    "set_seeds": "log.training",
    "get_metadata": "log.metadata",
    "add_argparse_args": "integrations.argparse_flags",
    "init_from_args": "integrations.argparse_flags",
    "run_name": "integrations.argparse_flags",
    # wandb's module API, for `import steadyrun as wandb` (integrations/wandb_api.py);
    # `steadyrun.log(...)` is the log package itself, callable (log/__init__.py).
    "Image": "log.media_values",
    "Table": "log.media_values",
    "Histogram": "log.media_values",
    "finish": "integrations.wandb_api",
    "join": "integrations.wandb_api",
    "define_metric": "integrations.wandb_api",
    "save": "integrations.wandb_api",
    "alert": "integrations.wandb_api",
    "AlertLevel": "integrations.wandb_api",
    "watch": "integrations.wandb_api",
    "unwatch": "integrations.wandb_api",
    "login": "integrations.wandb_api",
    "Settings": "integrations.wandb_api",
    "Artifact": "integrations.wandb_api",
    "log_artifact": "integrations.wandb_api",
}
# Looked up at every access, never cached: they follow the current run.
_CURRENT = {"run": "current_run", "config": "current_config", "summary": "current_summary"}
_WANDB_ONLY = ("Api", "sweep", "agent", "controller", "use_artifact", "use_model",
               "link_model", "log_model", "restore", "Video", "Audio", "Html", "Object3D",
               "Molecule", "Plotly", "Graph", "plot", "plot_table", "mark_preempting",
               "setup", "teardown")

__all__ = sorted([*_LAZY, *_CURRENT, "log"]) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .api import attach, init  # noqa: F401
    from .log.context import ContextError  # noqa: F401
    from .log.distributed import is_main_process  # noqa: F401
    from .log.inert import InertRun  # noqa: F401
    from .log.run import Run  # noqa: F401
    from .read.reader import RunData, list_runs, open_run  # noqa: F401
    from .store.values import SteadyrunWarning  # noqa: F401


def __getattr__(name: str) -> Any:
    import importlib

    if name in _CURRENT:
        api = importlib.import_module(".integrations.wandb_api", __name__)
        return getattr(api, _CURRENT[name])()
    if name == "log":  # the package, callable as wandb.log (log/__init__.py)
        return importlib.import_module(".log", __name__)
    if name in _WANDB_ONLY:
        api = importlib.import_module(".integrations.wandb_api", __name__)
        return api.Unsupported(name)
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'steadyrun' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
