"""What is imported: the W&B run folders named on the command line, grouped by run id.

A folder may be a W&B run folder (`offline-run-...-<id>` or `run-...-<id>`), the `wandb/`
folder holding several, the folder above it, or a `run-<id>.wandb` file: the same
places `txlog.find_run_files` accepts. Every transaction log found is grouped with the
others of its W&B run id, so an offline run and its resumed piece, named together, make
one steadyrun run (replayed oldest first, as W&B's own sync does).

The fingerprint is what makes a second import a no-op: the resolved path, size and
mtime (ns) of every `.wandb` file of the run. Any record W&B adds (a row, a summary, a
file saved) grows the log, so a run that changed is imported again, and one that did
not is not even read.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..ship.wandb.txlog import HEADER_IDENT, find_run_files, run_id_of
from ..store.layout import is_run_id


class BadSource(ValueError):
    """A folder that cannot be imported; the message is one line naming it and why."""


@dataclass
class Source:
    """One W&B run: its transaction logs (oldest first) and their fingerprint."""

    wandb_id: str
    logs: list[Path] = field(default_factory=list)

    @property
    def run_dirs(self) -> list[Path]:
        """The W&B run folders (each holds `files/` beside its log)."""
        return [p.parent for p in self.logs]

    def describe(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for p in self.logs:
            st = p.stat()
            out.append({"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns})
        return out

    def fingerprint(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        for item in self.describe():
            h.update(f"{item['path']}\0{item['size']}\0{item['mtime_ns']}\n".encode())
        return h.hexdigest()


def steadyrun_id(wandb_id: str) -> str:
    """The W&B run id when it is a valid steadyrun id (W&B's own are [a-z0-9]{8}), else
    its invalid characters replaced and a short hash added, so two ids never meet."""
    if is_run_id(wandb_id):
        return wandb_id
    clean = re.sub(r"[^A-Za-z0-9_-]+", "-", wandb_id).strip("-_")[:55] or "wandb"
    return f"{clean}-{hashlib.blake2b(wandb_id.encode(), digest_size=4).hexdigest()}"


def find_sources(paths: list[str | os.PathLike[str]]) -> list[Source]:
    """The W&B runs under `paths`, one Source per run id, in the order first named.
    Raises BadSource for a path that holds no W&B run or a log that is not W&B's."""
    groups: dict[str, Source] = {}
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise BadSource(f"{raw}: no such file or folder")
        p = p.resolve()  # `wandb/latest-run` is a symlink, which find_run_files skips
        logs = find_run_files(p)
        if not logs:
            raise BadSource(f"{raw}: not a W&B run folder (no run-<id>.wandb inside)")
        for log in logs:
            _check_header(log)
            wid = run_id_of(log) or log.stem
            src = groups.setdefault(wid, Source(wid))
            if log not in src.logs:
                src.logs.append(log)
    for src in groups.values():  # oldest first, as txlog replays a resumed run
        src.logs = find_run_files_sorted(src.logs)
    return list(groups.values())


def find_run_files_sorted(logs: list[Path]) -> list[Path]:
    from ..ship.wandb.txlog.files import _order_key

    return sorted(logs, key=_order_key)


def _check_header(log: Path) -> None:
    try:
        with open(log, "rb") as fh:
            head = fh.read(7)
    except OSError as exc:
        raise BadSource(f"{log}: cannot read it ({exc.strerror or exc})") from exc
    if len(head) < 7:
        raise BadSource(f"{log}: empty or truncated W&B log ({len(head)} bytes, no records)")
    if head[:4] != HEADER_IDENT:
        raise BadSource(f"{log}: not a W&B transaction log (it starts with {head[:4]!r})")
