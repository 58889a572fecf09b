"""What the dashboard and the report show of one run, as JSON-ready dicts.

A `RunView` follows one run folder. Its rows are read as Arrow columns (read/frames.py:
closed segments from the columnar cache, a live one converted at each change), its
other records by `read/side.py`, which scans only what was appended since the last
look. So a page that polls a live run every second costs the new bytes, and a 1 M-row
run's charts cost 2,000 points per key, not a parse of every row.

Everything here is read-only. A part that cannot be read (a torn run.json, a corrupt
segment) becomes a notice in the payload beside what could be read: the page always
has something to show and says what is missing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..read.frames import rows_of, segment_source
from ..read.overview import overview
from ..read.reader import RunData
from ..read.side import SideScan, side_records
from ..store.digest import goal_of
from ..store.layout import MANIFEST, is_run_id, read_sink_status
from ..store.manifest import manifest_of
from ..store.segment_reader import list_segments
from ..store.steps import is_step_metric, namespace_of_step, step_metric_of
from ..store.values import plain, restore_values
from . import downsample

AXES = ("step", "time")


class RunView:
    """One run folder, read incrementally; thread-safe (the server is threaded)."""

    def __init__(self, rdir: Path) -> None:
        self.dir = rdir
        self._lock = threading.RLock()
        self._scans: dict[Path, SideScan] = {}
        self._sources: dict[Path, tuple[Any, Any]] = {}  # segment -> (stamp, Shapes)
        self._stamp: Any = None
        self._overview: tuple[Any, int, Any] | None = None

    # ------------------------------------------------------------------ freshness
    def _inside(self, path: Path) -> bool:
        """Whether a file of the run folder is really in it: a symlink that leads out of
        the folder (to another run, or outside the root) is not read. (The folder itself
        is checked by the catalog.) Only a path with a symlink on its way is resolved:
        the runs table asks this of every segment of every run."""
        try:
            step = self.dir
            for part in path.relative_to(self.dir).parts:
                step = step / part
                if step.is_symlink():
                    return path.resolve().is_relative_to(self.dir.resolve())
            return True
        except (OSError, RuntimeError, ValueError):
            return False

    def segment_paths(self) -> list[Path]:
        return [p for p in list_segments(self.dir) if self._inside(p)]

    def stamp(self, segments: list[Path] | None = None) -> str:
        """Changes whenever anything of the run on disk does (sizes and mtimes)."""
        parts = []
        for p in [self.dir / MANIFEST, *(self.segment_paths() if segments is None
                                          else segments)]:
            try:
                st = p.stat()
            except OSError:
                continue
            parts.append(f"{p.name}:{st.st_size}:{st.st_mtime_ns}")
        return str(hash(tuple(parts)) & 0xFFFFFFFFFFFF)

    def _refresh(self) -> None:
        paths = self.segment_paths()
        stamp = self.stamp(paths)
        if stamp == self._stamp:
            return
        for p in list(self._scans):
            if p not in paths:
                del self._scans[p]  # a segment that went away
        for p in paths:
            self._scans.setdefault(p, SideScan(p)).update()
        self._overview = self._summarize()
        self._stamp = stamp

    def _summarize(self) -> tuple[RunData, int, Any]:
        """What `read.overview.overview` says of the run, with the row counts the scans
        keep: counting every row line of every segment again costs 0.3 s for a 1 M-row
        run, at each change of a live run the page polls."""
        if self._inside(self.dir / MANIFEST):
            manifest = manifest_of(self.dir)
        else:
            manifest = {"id": self.dir.name, "state": "unknown",
                        "manifest_error": "run.json leads out of the run folder: not read"}
        scans = self._scans
        return overview(self.dir, paths=list(scans), manifest=manifest,
                        counted=lambda p: (scans[p].size, scans[p].rows))

    def _segments(self) -> list[Any]:
        """Every segment's rows as Arrow shapes, rebuilt only for segments that changed."""
        out = []
        for p in self.segment_paths():
            try:
                st = p.stat()
            except OSError:
                continue
            key = (st.st_size, st.st_mtime_ns)
            held = self._sources.get(p)
            if held is None or held[0] != key:
                held = self._sources[p] = (key, segment_source(p))
            if held[1] is not None:
                out.append(held[1])
        return out

    # ------------------------------------------------------------------ the run
    def records(self) -> list[dict[str, Any]]:
        with self._lock:
            self._refresh()
            return side_records(list(self._scans.values()))

    def bad_lines(self) -> int:
        """Lines that are no record: torn writes inside the data, and a last line cut
        short by a writer that is gone (a live writer's last line is still coming)."""
        with self._lock:
            self._refresh()
            live = self.summary_row()["state"] == "running"
            return sum(s.bad + (s.tail and not live) for s in self._scans.values())

    def row_keys(self) -> list[str]:
        with self._lock:
            keys: dict[str, None] = {}
            for seg_keys, _ in self._segments():
                keys.update(dict.fromkeys(k for k in seg_keys if not k.startswith("_")))
            return list(keys)

    def summary_row(self) -> dict[str, Any]:
        """The run's line in the runs table (cheap: read/overview.py)."""
        with self._lock:
            self._refresh()
            data, rows, last_step = self._overview  # type: ignore[misc]
            m = data.manifest
            # The folder's name, which the catalog serves it under, even where run.json
            # names another id (a run folder copied or renamed by hand).
            row = {"id": self.dir.name, "name": m.get("name"), "project": m.get("project"),
                   "group": m.get("group"), "job_type": m.get("job_type"),
                   "tags": m.get("tags") or [], "state": data.state, "rows": rows,
                   "last_step": last_step, "created_at": m.get("created_at"),
                   "finished_at": m.get("finished_at"), "notes": m.get("notes"),
                   "stamp": self._stamp}
            if m.get("dropped_rows"):
                row["dropped_rows"] = m["dropped_rows"]
            if m.get("manifest_error"):
                row["notice"] = f"run.json could not be read: {m['manifest_error']}"
            err = m.get("error")
            if data.state == "failed" and isinstance(err, dict) and err.get("type"):
                row["failure"] = err  # why it failed (log/run.py mark_failed)
            return row

    def payload(self) -> dict[str, Any]:
        """Everything but the series: what the Charts, Config and Media views need first."""
        with self._lock:
            row = self.summary_row()
            recs = self.records()
            notices = [row["notice"]] if row.get("notice") else []
            if row.get("failure"):  # not "error": the page reads that as the API's
                err = row["failure"]
                notices.append(f"failed with {err['type']}: {err.get('message') or ''}")
            config: dict[str, Any] = {}
            summary: dict[str, Any] = {}
            metrics: dict[str, dict[str, Any]] = {}
            counts = {k: 0 for k in ("table", "image", "histogram", "alert", "file",
                                     "artifact")}
            for rec in recs:
                k = rec.get("k")
                if k == "config" and isinstance(rec.get("v"), dict):
                    config.update(rec["v"])
                elif k == "summary" and isinstance(rec.get("v"), dict):
                    summary.update(restore_values(rec))
                elif k == "metric" and isinstance(rec.get("key"), str):
                    metrics[rec["key"]] = {f: rec[f] for f in ("step_metric", "goal",
                                                               "summary", "hidden") if f in rec}
                elif k in counts:
                    counts[k] += 1
            bad = self.bad_lines()
            if bad:
                notices.append(f"{bad} line(s) of the segments could not be read (a torn "
                               "write, or a writer killed mid-line); everything else is shown")
            keys = [k for k in self.row_keys()]
            namespaces: dict[str, dict[str, Any]] = {}
            for k in keys:
                sk = step_metric_of(k)
                ns = namespace_of_step(sk)
                entry = namespaces.setdefault(ns, {"ns": ns, "step": sk, "keys": []})
                if not is_step_metric(k):
                    entry["keys"].append(k)
            for entry in namespaces.values():
                if not entry["keys"] and entry["step"] in keys:
                    entry["keys"].append(entry["step"])  # a namespace of steps alone
            return {**row, "dir": str(self.dir), "config": {k: v for k, v in config.items()
                                                            if k != "steadyrun"},
                    "metadata": config.get("steadyrun") or {},
                    "summary": {k: plain(v) for k, v in summary.items()},
                    "metrics": metrics, "best": self._bests(metrics, summary),
                    "namespaces": [e for e in namespaces.values() if e["keys"]],
                    "counts": counts, "notices": notices, "baseline": self._baseline(),
                    "wandb": read_sink_status(self.dir, "wandb")}

    def _baseline(self) -> dict[str, Any] | None:
        """The run's baseline (run.json, set by `init(baseline=...)`), with the baseline
        runs still under this root: the charts draw their curves faint behind the run's."""
        base = self._overview[0].manifest.get("baseline") if self._overview else None
        if not isinstance(base, dict):
            return None
        # listed only; the page fetches them through the catalog, confined to the root
        runs = [r for r in base.get("runs") or [] if isinstance(r, str) and is_run_id(r)
                and (self.dir.parent / r).is_dir()]
        return {"ref": base.get("ref"), "runs": runs, "rules": base.get("rules"),
                "k": base.get("k"), "missing": [r for r in base.get("runs") or []
                                                if r not in runs]}

    def _bests(self, metrics: dict[str, dict[str, Any]],
               summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Per metric with a goal (or a min/max summary): its best value and the step."""
        out = {}
        for key, spec in metrics.items():
            side = goal_of(spec)
            if side is None:
                continue
            cols = self.columns(key)
            if cols is None or not np.isfinite(cols["y"]).any():
                if key in summary:
                    out[key] = {"value": plain(summary[key]), "goal": side, "step": None}
                continue
            y = cols["y"]
            i = int(np.nanargmin(np.where(np.isfinite(y), y, np.nan)) if side == "min"
                    else np.nanargmax(np.where(np.isfinite(y), y, np.nan)))
            out[key] = {"value": float(y[i]), "goal": side, "step": plain(float(cols["x"][i]))}
        return out

    # ------------------------------------------------------------------ series
    def columns(self, key: str) -> dict[str, np.ndarray] | None:
        """x (its namespace's step, else the global step), t (time) and y of one key."""
        import pyarrow as pa

        with self._lock:
            segments = self._segments()
        sk = step_metric_of(key)
        want = [sk, key] if sk != key else [key]
        table = rows_of(segments, lambda names: [c for c in want if c in names],
                        required=key, meta=("_t", "_x"))
        if key not in table.column_names or not table.num_rows:
            return None

        def arr(name: str) -> np.ndarray:
            col = table.column(name)
            if col.type != pa.float64():
                col = col.cast(pa.float64())
            if col.null_count:
                col = col.fill_null(float("nan"))
            one = col.chunk(0) if col.num_chunks == 1 else col.combine_chunks()
            if not len(one):
                return np.empty(0)
            # The values buffer as it is (mapped from the columnar cache, not copied):
            # pyarrow's to_numpy() imports pandas, 0.4 s at a server's first chart.
            return np.frombuffer(one.buffers()[1], dtype=np.float64, count=len(one),
                                 offset=one.offset * 8)

        x = arr(sk) if sk in table.column_names else arr("_x")
        if sk in table.column_names and np.isnan(x).any():  # rows without their step
            x = np.where(np.isnan(x), arr("_x"), x)
        return {"x": x, "t": arr("_t"), "y": arr(key)}

    def series(self, keys: list[str], axis: str = "step", lo: float | None = None,
               hi: float | None = None, target: int = downsample.TARGET) -> dict[str, Any]:
        """Each key thinned to about `target` points, over [lo, hi] of the axis if given.

        Points are in the order they were logged; `n` is how many the range holds in
        full, `nf` where the values were NaN or infinite (drawn as gaps)."""
        out: dict[str, Any] = {}
        for key in keys:
            cols = self.columns(key)
            if cols is None:
                continue
            if lo is not None or hi is not None:
                along = cols["x"] if axis == "step" else cols["t"]
                mask = np.ones(len(along), dtype=bool)
                if lo is not None:
                    mask &= along >= lo
                if hi is not None:
                    mask &= along <= hi
                inside = mask.copy()  # and one point past each edge: lines reach it
                mask[:-1] |= inside[1:]
                mask[1:] |= inside[:-1]
                cols = {k: v[mask] for k, v in cols.items()}
            n = len(cols["y"])
            thin = downsample.thin(cols, "y", target)
            y = thin["y"]
            bad = np.flatnonzero(~np.isfinite(y))
            out[key] = {"n": n, "x": thin["x"], "t": thin["t"], "y": y,
                        "nf": [[float(thin["x"][i]), plain(float(y[i]))] for i in bad[:1000]]}
        return out
