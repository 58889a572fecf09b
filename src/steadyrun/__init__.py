"""steadyrun: experiment tracking for PyTorch training that cannot lose a value.

`import steadyrun` is cheap: it imports no wandb, torch or numpy. Public names resolve
lazily on first use, so scripts pay only for what they call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "init": "api",
    "Run": "run",
    "InertRun": "inert",
    "SteadyrunWarning": "run",
    "open_run": "reader",
    "list_runs": "reader",
    "RunData": "reader",
    "attach": "api",
    "ContextError": "context",
    "is_main_process": "distributed",
    "compute_grad_norm": "training",
    "get_learning_rate": "training",
    "get_amp_scale": "training",
    "get_gpu_stats": "training",
    "set_seeds": "training",
    "get_metadata": "metadata",
    "add_argparse_args": "cli_args",
    "init_from_args": "cli_args",
    "run_name": "cli_args",
}

__all__ = sorted(_LAZY) + ["__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from .api import attach, init  # noqa: F401
    from .context import ContextError  # noqa: F401
    from .distributed import is_main_process  # noqa: F401
    from .inert import InertRun  # noqa: F401
    from .reader import RunData, list_runs, open_run  # noqa: F401
    from .run import Run, SteadyrunWarning  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'steadyrun' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
