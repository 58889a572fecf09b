"""Helpers for testing code that uses steadyrun and W&B, without a network.

    wandb_env(base, **extra)   the environment of a child script: its own steadyrun and
                               W&B folders under `base`, no key, no launcher variables,
                               W&B's address on loopback (NO_WANDB_URL)
    FaultServer(kind, ...)     a W&B stand-in on 127.0.0.1 that misbehaves on purpose
    serve(kind, ...)           a FaultServer as a context manager, closed on the way out

The test suite and benchmarks/ both use these, so they live in the package, where a
script imports them like any other module, and a project that trains with steadyrun can
test its own scripts the same way. Standard library only, and nothing else in steadyrun
imports this package: `import steadyrun` never loads it.

`wandb_env` is imported at once: it needs only `os` and `pathlib`, benchmark children
that time their own imports load this package for it alone, and binding it here keeps
`steadyrun.testing.wandb_env` the function, never the module of the same name. The
server is imported on first use, because `http.server` costs tens of milliseconds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .wandb_env import NO_WANDB_URL, wandb_env

if TYPE_CHECKING:  # pragma: no cover
    from .loopback import FaultServer, serve  # noqa: F401

__all__ = ["NO_WANDB_URL", "FaultServer", "serve", "wandb_env"]

_LAZY = {"FaultServer": "loopback", "serve": "loopback"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)
