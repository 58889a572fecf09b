"""How a Run is put together: its segment writer, its heartbeat, its `open` record, and
the collaborators `init` asks for (metadata, a sidecar). `steadyrun.init` decides who
this process is; this module builds the Run for that role.

Kept beside run.py because it wires the Run's own fields: nothing outside `log/run*.py`
touches them.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from ..store import records
from ..store.layout import heartbeat_path, hostname, segment_path
from ..store.redact import redact_argv
from . import live_runs
from .digest_keeper import DigestKeeper
from .run import Run
from .segment_writer import SegmentWriter


class Sidecar(Protocol):
    """What the owner's Run needs of its sidecar (ship/handle.py builds the real one)."""

    def check(self) -> None: ...  # from the heartbeat: restart a sidecar that died
    # A bounded wait at finish(); `lost`: rows the local log lacks (a disk that refused).
    def finish(self, timeout: float | None, lost: int = 0) -> None: ...


def start_run(rdir: Path, run_id: str, manifest: dict[str, Any], *, role: str, mode: str,
              strict: bool, steps: dict[str, Any], global_step: int, key_prefix: str,
              name: str | None = None, job_type: str | None = None, config: Any = None,
              log_interval: int = 10, gpu_stats_interval: int = 100,
              metadata: bool = False, baseline: dict[str, Any] | None = None,
              sidecar: Callable[[Run], Sidecar] | None = None,
              leaderboard: Callable[..., Any] | None = None,
              best_checkpoint: float | None = None, console: bool = False) -> Run:
    """A Run writing its own new segment of the run at `rdir`, registered for the
    process's exit hooks. `sidecar(run)` makes the owner's sidecar once the config and
    the metadata collection have started. `console`: tee this process's stdout and
    stderr into the run (log/console.py). `baseline` (api.py: ref, spec, refused,
    resolve) sets up the live regression check (run_baseline.py).
    `leaderboard(root, **filters)` gives the
    (columns, rows) that `run.log_leaderboard` logs (the reader's ranking, which log/
    cannot import). `best_checkpoint`: the metric of a resumed run's `best` checkpoint."""
    writer_name = f"{role}-{os.getpid()}-{os.urandom(2).hex()}"
    segment = segment_path(rdir, writer_name)
    heartbeat = Heartbeat(heartbeat_path(segment))
    writer = SegmentWriter(segment, on_beat=heartbeat.beat)
    writer.append(records.encode(records.opened(
        writer_name, role, os.getpid(), hostname(), name=name, job_type=job_type,
        argv=redact_argv(sys.argv))))
    run = Run(run_id=run_id, rdir=rdir, writer=writer, manifest=manifest, role=role, mode=mode,
              strict=strict, steps=steps, global_step=global_step, key_prefix=key_prefix)
    run._leaderboard = leaderboard
    run._best_checkpoint = best_checkpoint
    run._digest = DigestKeeper(segment)
    heartbeat.callbacks.append(run._digest.update)  # every few seconds, writer thread
    run._digest.observers.append(run._observe_rows)  # live regression check
    live_runs.register(run)
    if console:
        from . import console as console_capture

        run._console = console_capture.start(rdir, writer_name)
    run.log_interval = log_interval
    run.gpu_stats_interval = gpu_stats_interval
    if config is not None:
        run.config.update(config)
    if metadata:
        from .metadata import Collector

        run._metadata = Collector(run._port)  # a background thread: git never delays init
    if baseline is not None:
        run._set_up_baseline(**baseline)
    if sidecar is not None:
        run._sidecar = sidecar(run)
        heartbeat.callbacks.append(run._sidecar.check)
    return run


class Heartbeat:
    """Touches a file every few seconds from the writer thread: a live writer is fresh."""

    def __init__(self, path: Path, every: float = 2.0) -> None:
        self.path = path
        self.every = every
        self._last = 0.0
        self.callbacks: list[Callable[[], None]] = []
        path.touch(mode=0o600)

    def beat(self) -> None:
        now = time.monotonic()
        if now - self._last >= self.every:
            self._last = now
            try:
                os.utime(self.path)
            except OSError:
                pass
            for callback in self.callbacks:
                callback()
