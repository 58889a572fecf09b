"""The run root as the dashboard sees it: which runs exist, and a `RunView` for each.

A run is looked up by its exact id among the folders of `<root>/runs`, never by a path
taken from a URL, and a folder that resolves outside the root (a symlink) is not a
run here: nothing the dashboard serves comes from outside the root it was given.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from ..store.layout import is_run_id, runs_dir
from .model import RunView


class Catalog:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._views: dict[str, RunView] = {}
        self._lock = threading.Lock()

    def _inside(self, path: Path) -> bool:
        try:
            return path.resolve().is_relative_to(self.root)
        except OSError:
            return False

    def run_dirs(self) -> list[Path]:
        runs = runs_dir(self.root)
        if not runs.is_dir() or not self._inside(runs):
            return []
        return sorted((d for d in runs.iterdir()
                       if d.is_dir() and is_run_id(d.name) and self._inside(d)),
                      key=lambda d: d.name)

    def view(self, run_id: str) -> RunView | None:
        if not is_run_id(run_id):
            return None
        rdir = runs_dir(self.root) / run_id
        if not rdir.is_dir() or not self._inside(rdir):
            return None
        with self._lock:
            view = self._views.get(run_id)
            if view is None:
                view = self._views[run_id] = RunView(rdir)
            return view

    def runs(self) -> list[dict[str, Any]]:
        """The runs table: one row per run, newest first; a run that cannot be read at
        all is listed with what went wrong rather than hidden."""
        out = []
        for d in self.run_dirs():
            view = self.view(d.name)
            if view is None:
                continue
            try:
                out.append(view.summary_row())
            except Exception as exc:  # noqa: BLE001 - one bad run must not hide the others
                out.append({"id": d.name, "state": "unknown", "tags": [],
                            "notice": f"could not be read: {type(exc).__name__}: {exc}"})
        out.sort(key=lambda r: r.get("created_at") or 0.0, reverse=True)
        return out

    def file(self, run_id: str, rel: str) -> Path | None:
        """A file of a run folder named by its relative path (`run_file`), or None."""
        view = self.view(run_id)
        return None if view is None else run_file(view.dir, rel)


def run_file(rdir: Path, rel: str) -> Path | None:
    """A file of the run folder `rdir` named by its relative path, or None: never a path
    out of the folder (`..`, absolute paths, NUL bytes, symlinks leading out). The server
    and the report both take run files through here."""
    if not rel or "\0" in rel or rel.startswith(("/", "\\")):
        return None
    if any(p in ("..", ".") for p in Path(rel).parts):
        return None
    try:
        real = (rdir / rel).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if not real.is_file() or not real.is_relative_to(rdir.resolve()):
        return None
    return real
