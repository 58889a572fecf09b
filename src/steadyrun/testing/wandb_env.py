"""A private W&B environment for a script: no key, no home-folder state, no launcher.

Shared by the tests (through wandb_helpers) and benchmarks/. Plain stdlib, so importing
it loads nothing that a benchmark would measure.
"""

from __future__ import annotations

import os
from pathlib import Path

# Variables of the caller that would change what steadyrun or wandb does in a script.
_CLEARED = (
    "STEADYRUN_MODE", "STEADYRUN_STRICT", "STEADYRUN_CONTEXT", "STEADYRUN_ONLINE_INIT_TIMEOUT",
    "STEADYRUN_LOG_MODEL", "WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_DIR",
    "WANDB_PROJECT", "WANDB_ENTITY", "WANDB_RUN_ID", "WANDB_RESUME", "WANDB_RUN_GROUP",
    "WANDB_JOB_TYPE", "WANDB_TAGS", "WANDB_NOTES", "WANDB_NAME", "WANDB_LOG_MODEL",
    "WANDB_SERVICE", "WANDB_CONSOLE", "WANDB_SILENT", "RANK", "LOCAL_RANK", "WORLD_SIZE",
    "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK",
)


def wandb_env(base: Path, **extra: str | None) -> dict[str, str]:
    """The environment of every script: its own root, no key (auto -> offline), no stats.

    W&B's config, data, cache and artifact folders and the netrc point into `base`, so
    nothing is read from or written to the home folder. `extra` adds variables; a value
    of None removes one.
    """
    env = {k: v for k, v in os.environ.items() if k not in _CLEARED}
    wb = base / "wandb-home"
    env.update({
        "STEADYRUN_DIR": str(base / "sr"),
        "STEADYRUN_WANDB_STATS": "0",
        "WANDB_CONFIG_DIR": str(wb / "config"),
        "WANDB_DATA_DIR": str(wb / "data"),
        "WANDB_CACHE_DIR": str(wb / "cache"),
        "WANDB_ARTIFACT_DIR": str(wb / "artifacts"),
        "NETRC": str(wb / "netrc-none"),
        "PYTHONUNBUFFERED": "1",
    })
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env
