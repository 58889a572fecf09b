"""W&B's overview describes the training program, not the sidecar that runs W&B.

Why: W&B runs in the sidecar (or `steadyrun sync`), so what wandb would collect itself
is the sidecar's: its command line, its `__main__`, no git (the sink used to switch
W&B's metadata off for that reason, and the overview stayed empty). The owner already
recorded what W&B shows there: its command line (redacted) and host in its segment's
`open` record, and git (commit, remote without credentials, root), its Python and
working directory in the metadata config record `steadyrun` (log/metadata.py). The
sink gives W&B those values:

- `program`, `program_relpath`, `host`, `git_commit`, `git_remote_url`, `git_root`,
  `x_executable`: W&B settings, set at `wandb.init`;
- the arguments: wandb takes them from `sys.argv` while `init` runs (its `_args` is
  computed, not settable), so `argv_of` swaps `sys.argv` for the owner's redacted one
  for the length of the call;
- OS, Python version, CPU and GPU: wandb-core reads them on the sidecar's host, which is
  the owner's (the sidecar is its child).

What cannot be set from outside stays in the config under `steadyrun` (DESIGN.md 4):
the working directory, the branch, whether the tree was dirty, SLURM, seeds, versions.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...store.segment_reader import list_segments, read_from

_HEAD_BYTES = 1 << 20  # the metadata record comes early in the owner's segment


def owner_facts(rdir: Path) -> dict[str, Any]:
    """argv and host of the owner's `open` record, and the `steadyrun` metadata (git,
    executable) when the owner has recorded it by now ({} for what is not there)."""
    facts: dict[str, Any] = {}
    for seg in list_segments(rdir):
        try:
            records = read_from(seg, 0, _HEAD_BYTES).records
        except OSError:
            continue
        if not records or records[0].get("k") != "open" or records[0].get("role") != "owner":
            continue
        opened = records[0]
        if isinstance(opened.get("argv"), list) and opened["argv"]:
            facts["argv"] = [str(a) for a in opened["argv"]]
        if opened.get("host"):
            facts["host"] = str(opened["host"])
        for rec in records[1:]:
            meta = rec.get("v", {}).get("steadyrun") if rec.get("k") == "config" else None
            if isinstance(meta, dict):
                facts["meta"] = meta
                break
        break
    return facts


def settings_of(facts: dict[str, Any]) -> dict[str, Any]:
    """The wandb.Settings fields that carry the owner's program, host and git."""
    out: dict[str, Any] = {}
    argv = facts.get("argv") or []
    meta = facts.get("meta") or {}
    if argv:
        program = argv[0]
        out["program"] = program
        cwd = meta.get("cwd")
        if cwd and program.startswith(str(cwd).rstrip("/") + "/"):
            out["program_relpath"] = program[len(str(cwd).rstrip("/")) + 1:]
        elif not program.startswith("/"):
            out["program_relpath"] = program
    if facts.get("host"):
        out["host"] = facts["host"]
    git = meta.get("git") if isinstance(meta.get("git"), dict) else {}
    if git.get("commit"):
        out["git_commit"] = str(git["commit"])
    if git.get("remote"):
        out["git_remote_url"] = str(git["remote"])  # redacted by log/metadata.py
    if git.get("root"):
        out["git_root"] = str(git["root"])
    if meta.get("python_executable"):
        out["x_executable"] = str(meta["python_executable"])
    return out


@contextlib.contextmanager
def argv_of(facts: dict[str, Any]) -> Iterator[None]:
    """`sys.argv` is the owner's (redacted) command line while wandb.init reads it."""
    argv = facts.get("argv")
    if not argv:
        yield
        return
    saved = sys.argv
    sys.argv = list(argv)
    try:
        yield
    finally:
        sys.argv = saved
