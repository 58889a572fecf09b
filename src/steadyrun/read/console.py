"""A run's captured console (log/console.py): each writer's lines, merged by time."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..store.console_file import console_files, read_lines


def console_lines(rdir: Path, writers: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """Every captured line of the run (each with its `writer`), ordered by time."""
    streams = []
    for writer, path in console_files(rdir).items():
        if writers and writer not in writers:
            continue
        lines, _ = read_lines(path)
        streams.append([{**rec, "writer": writer} for rec in lines])
    yield from heapq.merge(*streams, key=lambda rec: rec.get("t") or 0.0)


__all__ = ["console_files", "console_lines", "read_lines"]
