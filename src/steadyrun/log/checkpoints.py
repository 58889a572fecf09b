"""Checkpoints and artifacts: always recorded locally, uploaded only under a policy.

Why (seed 004): DeepSpeed ZeRO checkpoints are often 10+ GB, and on a cluster an upload
per save eats the bandwidth and the quota. So a checkpoint is always recorded in the
run (path, size, step, aliases, file list) and reaches W&B as an artifact only when
`STEADYRUN_LOG_MODEL` or `WANDB_LOG_MODEL` is on, or with `force=True`. When the policy
is off, the run says so once. Before an upload it prints the size, and warns above
5 GiB.

Checkpoint folders are walked with symlinks under control: a link that leads back into
a folder already being walked (a loop) is skipped, and a link whose target lies outside
the checkpoint folder is refused, so a stray `latest -> /` cannot upload a disk.
"""

from __future__ import annotations

import errno
import math
import os
import re
import stat
import sys
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..store import records
from ..store.redact import redact_text
from ..store.values import SteadyrunWarning
from .port import RunPort

WARN_BYTES = 5 << 30
_POLICY_ENV = ("STEADYRUN_LOG_MODEL", "WANDB_LOG_MODEL")
_FALSE = ("", "0", "false", "no", "off", "none", "disabled")
_told_policy: set[str] = set()


def upload_policy() -> bool:
    """True when STEADYRUN_LOG_MODEL or WANDB_LOG_MODEL asks for model uploads."""
    return any(os.environ.get(v, "").strip().lower() not in _FALSE for v in _POLICY_ENV)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.2f} {unit}"
        size /= 1024
    return f"{n} B"


def artifact_name(text: str) -> str:
    """W&B artifact names allow letters, digits, '-', '_' and '.'."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")
    return name[:128] or "artifact"


def walk(root: Path) -> tuple[list[tuple[str, int]], list[dict[str, str]]]:
    """(relative path, size) of every file under `root`, and what was skipped and why.

    Symlinks are followed only while their target stays inside `root`; a link to a
    folder already on the current path (a loop) or already walked is skipped.
    """
    base = root.resolve()
    files: list[tuple[str, int]] = []
    skipped: list[dict[str, str]] = []
    seen: set[tuple[int, int]] = set()

    def visit(folder: Path, rel: str, active: frozenset[tuple[int, int]]) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append({"path": rel or ".", "why": f"unreadable: {exc.strerror}"})
            return
        for entry in entries:
            sub = f"{rel}/{entry.name}" if rel else entry.name
            link = entry.is_symlink()
            if link:
                try:
                    target = Path(entry.path).resolve(strict=True)
                except (OSError, RuntimeError) as exc:  # ELOOP, or a dangling link
                    loop = isinstance(exc, RuntimeError) or exc.errno == errno.ELOOP
                    why = "symlink loop" if loop else "dangling symlink"
                    skipped.append({"path": sub, "why": why})
                    continue
                if not target.is_relative_to(base):
                    skipped.append({"path": sub, "why": f"symlink escapes the checkpoint "
                                                        f"folder (to {target})"})
                    continue
            try:
                st = os.stat(entry.path)
            except OSError as exc:
                skipped.append({"path": sub, "why": f"unreadable: {exc.strerror}"})
                continue
            if stat.S_ISDIR(st.st_mode):
                ident = (st.st_dev, st.st_ino)
                if ident in active or (link and ident in seen):
                    skipped.append({"path": sub, "why": "symlink loop" if ident in active
                                    else "symlink to a folder already included"})
                    continue
                seen.add(ident)
                visit(Path(entry.path), sub, active | {ident})
            elif stat.S_ISREG(st.st_mode):
                files.append((sub, st.st_size))

    st = os.stat(base)
    seen.add((st.st_dev, st.st_ino))
    visit(base, "", frozenset({(st.st_dev, st.st_ino)}))
    return files, skipped


def log_artifact(run: RunPort, path: str | os.PathLike[str], type: str = "model",
                 name: str | None = None, aliases: Sequence[str] | str | None = None,
                 force: bool = False, step: int | None = None,
                 default_name: str | None = None,
                 metadata: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """Record a file or folder as an artifact of the run; see the module docstring.

    `metadata` (validation loss, epoch...) is kept with the record and given to the W&B
    artifact; it is cleaned and redacted like the config."""
    src = Path(path)
    if not src.exists():
        run.reject(str(path), path, "log_artifact() needs an existing file or folder",
                 ValueError)
        return None
    if isinstance(aliases, str):
        aliases = [aliases]
    alias_list = [str(a) for a in (aliases or ["latest"])]
    art_name = artifact_name(redact_text(name or default_name or src.name))
    if src.is_dir():
        listed, skipped = walk(src)
        files = [rel for rel, _ in listed]
        size = sum(n for _, n in listed)
    else:
        skipped = []
        files = [src.name]
        size = src.stat().st_size
    for item in skipped:
        if item["why"].startswith("symlink escapes"):  # refused: strict runs raise here
            run.reject(f"{art_name}:{item['path']}", path, f"not included: {item['why']}",
                     ValueError)
        else:
            warnings.warn(f"steadyrun: artifact {art_name!r}: skipped {item['path']!r} "
                          f"({item['why']})", SteadyrunWarning, stacklevel=3)
    upload = bool(force) or upload_policy()
    x = step if step is not None else run.current_step()
    rec = records.artifact(art_name, type, str(src.absolute()), size, alias_list, x,
                           upload, files)
    if skipped:
        rec["skipped"] = skipped
    if metadata:
        from .config_input import clean_config

        rec["metadata"] = clean_config(
            metadata, lambda k, v, why: run.reject(f"{art_name}.metadata.{k}", v, why, TypeError))
    run.record(rec)
    if upload:
        print(f"steadyrun: artifact {art_name!r} ({type}) goes to W&B: {human_size(size)} in "
              f"{len(files)} file{'s' if len(files) != 1 else ''}", file=sys.stderr)
        if size > WARN_BYTES:
            warnings.warn(
                f"steadyrun: artifact {art_name!r} is {human_size(size)}, above 5 GiB. "
                f"Consider consolidating it first (e.g. DeepSpeed's zero_to_fp32.py) and "
                f"uploading only the final model with force=True.", SteadyrunWarning,
                stacklevel=3)
    elif run.id not in _told_policy:
        _told_policy.add(run.id)
        print(f"steadyrun: {type} {art_name!r} recorded locally ({human_size(size)}, not "
              f"uploaded). Uploads are off: set STEADYRUN_LOG_MODEL=1 or WANDB_LOG_MODEL=1, "
              f"or pass force=True. (Said once per run.)", file=sys.stderr)
    return rec


def log_checkpoint(run: RunPort, best: list[float], path: str | os.PathLike[str],
                   aliases: Sequence[str] | str | None = ("latest",), force: bool = False,
                   name: str | None = None, step: int | None = None,
                   metadata: Mapping[str, Any] | None = None, metric: float | None = None,
                   goal: str = "minimize") -> dict[str, Any] | None:
    """A model artifact named `checkpoint-<run id>`: each call adds a version.

    With `metric` (say the validation loss), a checkpoint that beats every earlier one of
    this run under `goal` also gets the alias `best` (W&B moves it to the new version),
    and the metric goes into its metadata: the best model is found by its alias, not by
    reading the logs (seed 003)."""
    alias_list = [aliases] if isinstance(aliases, str) else list(aliases or ["latest"])
    meta: dict[str, Any] = {}
    if metadata:
        from .config_input import to_plain

        plain = to_plain(metadata)  # a dataclass or Namespace is fine, like a config
        if isinstance(plain, dict):
            meta = plain
        else:
            run.reject("log_checkpoint.metadata", metadata, "metadata must be a mapping",
                     TypeError)
    if goal not in ("minimize", "maximize"):
        run.reject("log_checkpoint.goal", goal, "goal must be 'minimize' or 'maximize'",
                 ValueError)
        goal = "minimize"
    is_best = False
    if metric is not None:
        if isinstance(metric, bool) or not isinstance(metric, (int, float)) \
                or not math.isfinite(metric):
            run.reject("log_checkpoint.metric", metric, "metric must be a finite number",
                     TypeError if not isinstance(metric, (int, float)) else ValueError)
        else:
            meta["metric"] = metric
            is_best = not best or (metric < best[0] if goal == "minimize" else metric > best[0])
            if is_best:
                alias_list = [*[a for a in alias_list if a != "best"], "best"]
    rec = log_artifact(run, path, type="model", name=name, aliases=alias_list, force=force,
                       step=step, default_name=f"checkpoint-{run.id}", metadata=meta)
    if rec is not None and is_best:  # only a checkpoint that was recorded can be the best
        best[:] = [metric]
    return rec


def log_config_artifact(run: RunPort, name: str = "config.yaml") -> Path | None:
    """The run's resolved (redacted) config as YAML: a file of the run, and an artifact.

    The config artifact is small and already redacted, so it is uploaded regardless of
    the model upload policy.
    """
    import yaml

    run.wait_metadata()
    data = run.config.as_dict()
    with tempfile.TemporaryDirectory(prefix="steadyrun-config-") as tmp:
        src = Path(tmp) / name
        src.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True),
                       encoding="utf-8")
        dest = run.save(src, name=name)
    if dest is None:
        return None
    rec = records.artifact(artifact_name(f"config-{run.id}"), "config", str(dest),
                           dest.stat().st_size, ["latest"], run.current_step(), True, [dest.name])
    run.record(rec)
    return dest


class CheckpointLog:
    """A Run's checkpoints and artifacts: the calls above, plus the best metric so far
    (which checkpoint holds the alias `best`). One per Run, made on first use."""

    def __init__(self, port: RunPort, best: float | None = None) -> None:
        self.port = port
        # The best checkpoint metric recorded, once there is one; a resumed run starts from
        # its earlier processes' best (api.py reads it), or its first checkpoint would take
        # the alias `best` from a better one.
        self.best: list[float] = [best] if best is not None else []

    def checkpoint(self, path: str | os.PathLike[str], **kwargs: Any) -> dict[str, Any] | None:
        return log_checkpoint(self.port, self.best, path, **kwargs)

    def artifact(self, path: str | os.PathLike[str], **kwargs: Any) -> dict[str, Any] | None:
        return log_artifact(self.port, path, **kwargs)

    def config_artifact(self, name: str = "config.yaml") -> Path | None:
        return log_config_artifact(self.port, name)
