"""W&B's media values (history values of the form `{"_type": ..., ...}`) as steadyrun
records, and the run folder's `files/` copied into the steadyrun run.

W&B keeps an image or a table as a file under its run folder's `files/` (`media/images/
<key>_<step>_<hash>.png`, `media/table/<key>_<step>_<hash>.table.json`) and logs a dict
pointing at it. steadyrun keeps the same file at the same relative path under the run
(`media/...`), so each W&B path has exactly one place, and records:

- `image-file` -> an image record (path, caption);
- `table-file` -> a table record, the `.table.json` read (`columns`, `data`);
- `histogram` -> a histogram record (`values` are the counts, `bins` the edges);
- any other media dict (video, audio, html, a list of images, ...) -> an
  `imported_value` event holding the dict as W&B wrote it (its file, if any, is copied
  with the rest of `files/`): nothing is lost, and nothing is drawn that steadyrun
  cannot draw.

Files are copied, never moved or linked: the W&B folder is never written to, and the
steadyrun run stays whole if the W&B folder is deleted later.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import orjson

from ..store.layout import FILES, MEDIA


def copy_files(wandb_run_dirs: list[Path], rdir: Path) -> list[tuple[str, str]]:
    """Every regular file under each W&B run folder's `files/` into the run: `media/...`
    stays `media/...`, anything else goes under `files/`. Returns (run-relative path,
    name) of the non-media files, for their `file` records. A linked file (`wandb.save`
    links the user's file into `files/`) is copied from its target, read-only; linked
    folders are not entered (a loop). A resumed piece's file replaces the earlier
    piece's file of the same name, as in W&B."""
    saved: dict[str, str] = {}
    for wdir in wandb_run_dirs:
        base = wdir / "files"
        if not base.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames
                                 if not os.path.islink(os.path.join(dirpath, d)))
            for name in sorted(filenames):
                src = Path(dirpath) / name
                if not src.is_file():  # a broken link, a socket...
                    continue
                rel = src.relative_to(base).as_posix()
                target = rel if rel.startswith(f"{MEDIA}/") else f"{FILES}/{rel}"
                dest = rdir / target
                _mkdirs(dest.parent, rdir)
                shutil.copyfile(src, dest)
                os.chmod(dest, 0o600)
                if not rel.startswith(f"{MEDIA}/"):
                    saved[target] = rel
    return sorted(saved.items())


def _mkdirs(folder: Path, rdir: Path) -> None:
    if folder.is_dir():
        return
    _mkdirs(folder.parent, rdir)
    folder.mkdir(mode=0o700)
    os.chmod(folder, 0o700)


def media_record(key: str, value: dict[str, Any], x: int, t: float, rdir: Path
                 ) -> dict[str, Any] | None:
    """The record for one media value, or None when steadyrun has no record of its kind."""
    kind = value.get("_type")
    path = value.get("path")
    if kind == "image-file" and isinstance(path, str):
        caption = value.get("caption")
        return {"k": "image", "t": t, "key": key, "path": path,
                "caption": caption if isinstance(caption, str) else None, "x": x}
    if kind == "table-file" and isinstance(path, str):
        try:
            table = orjson.loads((rdir / path).read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return None  # the file is missing or not JSON: kept as an event instead
        columns = table.get("columns") if isinstance(table, dict) else None
        rows = table.get("data") if isinstance(table, dict) else None
        if not isinstance(columns, list) or not isinstance(rows, list):
            return None
        return {"k": "table", "t": t, "key": key, "columns": [str(c) for c in columns],
                "rows": rows, "x": x}
    if kind == "histogram":
        counts, edges = value.get("values"), value.get("bins")
        if isinstance(counts, list) and isinstance(edges, list) \
                and len(edges) == len(counts) + 1:
            return {"k": "histogram", "t": t, "x": x,
                    "v": {key: {"counts": counts, "edges": edges, "nonfinite": 0}}}
    return None
