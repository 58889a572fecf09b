"""A run in brief, without parsing its rows: what compare, leaderboard and check read.

Each writer keeps its segment's digest in `digests/<writer>.json` (log/digest_keeper.py,
store/digest.py) with the byte offset it covers. Here each digest is loaded, checked
against its segment (its version, its writer, and an offset that ends a line inside the
segment's data), and the records written after that offset are folded in: a run whose
writer was killed, or is still writing, costs only its last few seconds of rows. A
missing or bad digest means the whole segment is folded: slower, and the same answer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from ..store import digest
from ..store.layout import digest_path
from ..store.manifest import manifest_of
from ..store.segment_reader import data_end, list_segments, read_from
from .reader import RunData, segment_info


def _load(segment: Path) -> dict[str, Any] | None:
    """The segment's digest if it can be trusted, else None."""
    try:
        d = orjson.loads(digest_path(segment).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    if not isinstance(d, dict) or d.get("v") != digest.VERSION or d.get("writer") != segment.stem:
        return None
    offset = d.get("offset")
    if not isinstance(offset, int) or offset < 0:
        return None
    if offset:
        try:
            if offset > data_end(segment):
                return None
            with open(segment, "rb") as fh:  # the offset must end a line
                fh.seek(offset - 1)
                if fh.read(1) != b"\n":
                    return None
        except OSError:
            return None
    return d


def segment_digest(segment: Path) -> tuple[dict[str, Any], int]:
    """(the segment's digest brought up to date, bytes folded here beyond the stored one)."""
    d = _load(segment) or digest.new()
    start = d["offset"]
    chunk = read_from(segment, start)
    digest.fold(d, chunk.records)
    d["offset"] = chunk.end
    return d, chunk.end - start


def run_digest(rdir: str | os.PathLike[str]) -> dict[str, Any]:
    """One run in brief: its fields from run.json, state, config, metadata, summary,
    metric definitions (goals), per key its count, last, min and max with their steps,
    the step reached per namespace, row and event counts.

    `folded_bytes` says how much of the segments had to be parsed (0 when every digest
    was current)."""
    rdir = Path(rdir)
    manifest = manifest_of(rdir)
    parts = []
    segments: dict[str, dict[str, Any]] = {}
    folded = 0
    for path in list_segments(rdir):
        d, n = segment_digest(path)
        folded += n
        parts.append(d)
        close = {"k": "close", **d["close"]} if d["close"] else None
        segments[path.stem] = segment_info(d["open"] or {}, close)
    m = digest.merge(parts)
    state = RunData(id=manifest.get("id", rdir.name), dir=rdir, manifest=manifest, records=[],
                    segments=segments).state
    config = {k: tv[1] for k, tv in m["config"].items()}
    return {
        "id": rdir.name, "dir": str(rdir), "state": state,
        **{f: manifest.get(f) for f in ("name", "project", "group", "job_type", "notes",
                                        "created_at", "finished_at", "exit_code")},
        "tags": manifest.get("tags") or [],
        "config": {k: v for k, v in config.items() if k != "steadyrun"},
        "metadata": config.get("steadyrun") or {},
        "summary": {k: tv[1] for k, tv in m["summary"].items()},
        "metrics": m["metrics"], "keys": m["keys"], "steps": m["steps"], "rows": m["rows"],
        "events": m["events"], "alerts": m["alerts"], "folded_bytes": folded,
    }
