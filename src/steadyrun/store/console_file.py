"""A writer's console file (`console/<writer>.jsonl`, written by log/console.py): one
JSON line per captured line, `{"t": time, "s": "out"|"err", "l": text}`. Read by
`steadyrun logs` (read/console.py) and shipped to W&B's Logs tab (ship/wandb/sink.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from .layout import CONSOLE


def console_files(rdir: Path) -> dict[str, Path]:
    """writer -> its console file."""
    folder = rdir / CONSOLE
    if not folder.is_dir():
        return {}
    return {p.name[: -len(".jsonl")]: p for p in sorted(folder.glob("*.jsonl"))}


def read_lines(path: Path, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """The whole lines of one console file from `offset`, and the offset after them (a
    line still being written is left for the next read)."""
    with open(path, "rb") as fh:
        fh.seek(offset)
        data = fh.read()
    end = data.rfind(b"\n") + 1
    out = []
    for raw in data[:end].splitlines():
        try:
            rec = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue  # a torn line (a writer killed mid-write)
        if isinstance(rec, dict) and isinstance(rec.get("l"), str):
            out.append(rec)
    return out, offset + end


def short_writer(writer: str) -> str:
    """`owner-1234-ab12` -> `owner-1234`: the role and the process, as lines are marked."""
    parts = writer.split("-")
    return "-".join(parts[:-1]) if len(parts) > 2 else writer
