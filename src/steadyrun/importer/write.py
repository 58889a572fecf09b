"""The steadyrun run an import writes: one segment, its digest, the media, run.json.

Written into a hidden folder beside the runs (`runs/.import-<id>-<rand>`) and renamed
into place at the end, so a reader never sees half an import, an interrupted import
leaves no run behind, and a re-import (the W&B run changed) swaps the whole run at
once. Every file is owner-only (0600, folders 0700), as the training side writes them.

The records carry the W&B run's own times (`_timestamp` as `t`, the run's start as the
`open` record's and run.json's `created_at`), never the time of the import, so the same
W&B run always gives the same bytes.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ..store import digest
from ..store.layout import (
    atomic_write_json,
    digest_path,
    make_run_dirs,
    replace_bytes,
    segment_path,
)

_dumps = orjson.dumps
_FOLD_EVERY = 2048  # records folded into the digest at a time: bounded memory


class SegmentOut:
    """An append-only segment written in one go, its digest folded as it grows."""

    def __init__(self, rdir: Path, writer: str, path: Path | None = None) -> None:
        self.path = path or segment_path(rdir, writer)
        self.writer = writer
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        self._fh = os.fdopen(fd, "wb", buffering=1 << 20)
        self.digest = digest.new()
        self.digest["writer"] = writer
        self._pending: list[dict[str, Any]] = []
        self.bytes = 0

    def put(self, rec: dict[str, Any]) -> None:
        line = _dumps(rec)
        if b"null" in line and rec.get("v") is not None and "nf" not in rec:
            nf = _nonfinite(rec["v"])
            if nf:  # JSON has no NaN: null in `v`, named in `nf` (store/records.py)
                rec["nf"] = nf
                line = _dumps(rec)
        self._fh.write(line)
        self._fh.write(b"\n")
        self.bytes += len(line) + 1
        self._pending.append(rec)
        if len(self._pending) >= _FOLD_EVERY:
            self._fold()

    def put_rows(self, blob: bytes, n: int, fold: Callable[[dict[str, Any]], Any]) -> None:
        """n row records already written as JSON lines (importer/batch.py), and `fold`,
        which folds the same rows into the digest."""
        self._fold()  # the records before them first: a digest is folded in order
        self._fh.write(blob)
        self.bytes += len(blob)
        fold(self.digest)

    def flush(self) -> None:
        self._fh.flush()

    def append(self, part: Path, size: int, part_digest: dict[str, Any]) -> None:
        """The records another SegmentOut wrote to `part` (importer/parallel.py), added
        after these; the part file is removed."""
        self._fold()
        self._fh.flush()
        with open(part, "rb") as src:
            shutil.copyfileobj(src, self._fh, 1 << 20)
        os.unlink(part)
        self.bytes += size
        digest.extend(self.digest, part_digest)

    def end_part(self) -> dict[str, Any]:
        """Close a part (no digest file: its digest is returned, to `append`)."""
        self._fold()
        self._fh.close()
        return self.digest

    def _fold(self) -> None:
        digest.fold(self.digest, self._pending)
        self._pending = []

    def close(self) -> None:
        self._fold()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        self.digest["offset"] = self.bytes
        dpath = digest_path(self.path)
        dpath.parent.mkdir(mode=0o700, exist_ok=True)
        os.chmod(dpath.parent, 0o700)
        replace_bytes(dpath, _dumps(self.digest))


def _nonfinite(values: dict[str, Any]) -> dict[str, str]:
    out = {}
    for k, v in values.items():
        if type(v) is float and not math.isfinite(v):
            out[k] = "nan" if v != v else ("inf" if v > 0 else "-inf")
    return out


def clean_summary(values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """W&B's summary without its own `_` keys (`_step`, `_runtime`, `_wandb`: they are
    W&B's bookkeeping, and steadyrun keys may not start with `_`), and its top-level
    non-finite values named as in a row."""
    kept = {k: v for k, v in values.items() if not k.startswith("_")}
    nf = _nonfinite(kept)
    for k in nf:
        kept[k] = None
    return kept, nf


def new_run_dir(runs: Path, run_id: str) -> Path:
    tmp = runs / f".import-{run_id}-{os.urandom(3).hex()}"
    tmp.mkdir(mode=0o700)
    make_run_dirs(tmp)
    return tmp


def put_in_place(tmp: Path, rdir: Path, manifest: dict[str, Any]) -> None:
    """run.json last, then the folder renamed over any earlier import of the run."""
    atomic_write_json(tmp / "run.json", manifest)
    if rdir.exists():
        old = rdir.with_name(f".replaced-{rdir.name}-{os.urandom(3).hex()}")
        os.rename(rdir, old)
        os.rename(tmp, rdir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, rdir)
