"""A private W&B environment for a script: no key, no home-folder state, no launcher,
and W&B's address on loopback.

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


# W&B's address in a script's environment unless the caller names its own (loopback)
# server. Left unset, W&B is https://api.wandb.ai: a script given a fake WANDB_API_KEY
# would send it there in auto mode, and a ~/.netrc entry for that host (what `wandb login`
# writes) would turn a test run online. Nothing listens on 127.0.0.1:9 (the loopback
# stand-ins bind ephemeral ports), so steadyrun's probe is refused at once and the run
# goes offline without waiting out the probe's timeout.
NO_WANDB_URL = "http://127.0.0.1:9"


def wandb_env(base: Path, **extra: str | None) -> dict[str, str]:
    """The environment of every script: its own root, no key (auto -> offline), no stats,
    W&B at NO_WANDB_URL unless `extra` gives WANDB_BASE_URL.

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
        "WANDB_BASE_URL": NO_WANDB_URL,
    })
    for key, value in extra.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env
