"""The arguments of `wandb.init` that `steadyrun.init` has no own name for.

Why here: with `import steadyrun as wandb`, a script calls `steadyrun.init` with wandb's
arguments. Each one is taken for what it means in steadyrun, accepted and ignored where
it means nothing here (said in a comment), or refused with a `NotImplementedError` that
names what to use instead. An argument neither function knows is still a `TypeError`,
as it was: a typo never passes silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Accepted and ignored, and why: they mean nothing for a run recorded by steadyrun.
IGNORED = {
    "allow_val_change": "config values may always change; each update is a record",
    "force": "there is no login to force: without a W&B key the run is kept offline",
    "save_code": "the metadata records the git commit and the diff (init(metadata=True))",
    "settings": "W&B's settings are the sidecar's; steadyrun's own are init's arguments",
    "anonymous": "W&B's anonymous mode is deprecated; offline files need no account",
    "magic": "no auto-instrumentation: log what you want charted",
}

# Refused: what each would have done, and what to use instead.
UNSUPPORTED = {
    "resume_from": "W&B's server-side rewind; continue a run with "
                   "init(resume=run.state_dict()) or init(id=..., resume='allow')",
    "fork_from": "W&B's server-side fork; start a new run and compare the two with "
                 "`steadyrun compare`",
    "sync_tensorboard": "TensorBoard syncing; log the values with run.log",
    "tensorboard": "TensorBoard syncing; log the values with run.log",
    "monitor_gym": "gym video capture; log frames with run.log_image",
}

REINIT = (None, True, False, "default", "return_previous", "finish_previous", "create_new")


def take_wandb_args(extra: Mapping[str, Any], config: Any) -> tuple[Any, Any]:
    """(the config with wandb's include/exclude lists applied, the `reinit` asked).

    Raises TypeError for an argument wandb does not have either, NotImplementedError for
    one steadyrun cannot honour (a true `sync_tensorboard`, `fork_from`)."""
    unknown = [k for k in extra if k not in IGNORED and k not in UNSUPPORTED
               and k not in ("config_exclude_keys", "config_include_keys", "reinit")]
    if unknown:
        raise TypeError(f"steadyrun.init() got unknown arguments: {', '.join(unknown)}")
    for name, instead in UNSUPPORTED.items():
        if extra.get(name):
            raise NotImplementedError(f"steadyrun.init({name}=...) is not supported: "
                                      f"{instead}")
    reinit = extra.get("reinit")
    if reinit not in REINIT:
        raise ValueError(f"steadyrun.init: reinit must be one of {REINIT}, got {reinit!r}")
    include, exclude = extra.get("config_include_keys"), extra.get("config_exclude_keys")
    if include is not None or exclude is not None:
        from .config_input import to_plain

        plain = to_plain(config) if config is not None else {}
        if isinstance(plain, Mapping):
            if include is not None:
                plain = {k: v for k, v in plain.items() if k in set(include)}
            if exclude is not None:
                plain = {k: v for k, v in plain.items() if k not in set(exclude)}
            config = plain
    return config, reinit
