"""The training process's side of the sidecar: start it, restart it, wait for it.

Apart from the supervisor (sidecar.py), which runs in the sidecar process: the handle
only spawns `python -m steadyrun.ship follow RUN_DIR` (or, where no process can be
spawned, runs the supervisor in a thread), restarts it from the owner's heartbeat when
it died early, and bounds the wait for it at `finish()`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..store.layout import read_sink_status, sidecar_log_path, sync_command
from .sidecar import supervise
from .sinks import pending_bytes

MAX_RESTARTS = 3


class SidecarHandle:
    """Held by the owner's Run: restarts a dead sidecar, and bounds the wait at finish.

    It knows the run by its folder, id and mode, and asks `finished()` whether the run has
    ended (a sidecar that dies after that is not restarted by the heartbeat)."""

    def __init__(self, rdir: Path, run_id: str, mode: str, *, how: str = "process",
                 finish_timeout: float = 60.0, finished: Callable[[], bool]) -> None:
        self.rdir = rdir
        self.run_id = run_id
        self.mode = mode
        self.finished = finished
        self.how = how
        self.finish_timeout = finish_timeout
        self.restarts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.thread: threading.Thread | None = None
        self._start()

    def _cmd(self) -> list[str]:
        return [sys.executable, "-m", "steadyrun.ship", "follow", str(self.rdir),
                "--mode", self.mode, "--owner-pid", str(os.getpid())]

    def _start(self) -> None:
        if self.how == "process":
            # Owner-only whatever the umask, like every file of the run.
            log = os.fdopen(os.open(sidecar_log_path(self.rdir),
                                    os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
            try:
                self.proc = subprocess.Popen(
                    self._cmd(), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                    start_new_session=True, close_fds=True)
                return
            except OSError as exc:
                print(f"steadyrun: cannot spawn the W&B sidecar ({exc}); shipping from a "
                      f"thread instead", file=sys.stderr)
            finally:
                log.close()
        self.how = "thread"
        self.proc = None  # a dead process of an earlier start must not hide the thread
        self.thread = threading.Thread(target=supervise, name="steadyrun-sidecar", daemon=True,
                                       args=(self.rdir, self.mode, os.getpid()),
                                       kwargs={"in_thread": True})
        self.thread.start()

    def alive(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is None
        return self.thread is not None and self.thread.is_alive()

    def check(self, finishing: bool = False) -> None:
        """Called from the writer's heartbeat: a sidecar that died early is restarted."""
        if self.alive() or self.restarts >= MAX_RESTARTS:
            return
        if self.proc is not None and self.proc.returncode == 0:
            return  # it ended normally: the run is finished
        if finishing or not self.finished():
            code = self.proc.returncode if self.proc is not None else "?"
            self.restarts += 1
            print(f"steadyrun: the W&B sidecar of run {self.run_id} exited (code {code}); "
                  f"restarting it ({self.restarts}/{MAX_RESTARTS}). It resumes from its "
                  f"cursor: no record is shipped twice or skipped.", file=sys.stderr)
            self._start()

    def finish(self, timeout: float | None, lost: int = 0) -> None:
        """Wait (bounded) for the sidecar; say where the run is, or what is left to do.
        `lost`: rows the local log itself lacks, so no message claims it holds them all."""
        local = (f"The local log lacks {lost} rows the disk refused (recorded as a "
                 f"'dropped' event)." if lost else
                 "Nothing is lost: the local log holds every record.")
        timeout = self.finish_timeout if timeout is None else timeout
        self.check(finishing=True)  # a sidecar that died before the end gets one more drain
        deadline = time.monotonic() + timeout
        while True:
            if self.proc is not None:
                try:
                    self.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass
            elif self.thread is not None:
                self.thread.join(timeout=max(0.0, deadline - time.monotonic()))
            # A sidecar killed while the owner waits for it is restarted too (found by
            # tests/faults: killed during finish, it was neither restarted nor reported).
            if self.alive() or self.proc is None or self.proc.returncode == 0 \
                    or self.restarts >= MAX_RESTARTS or time.monotonic() >= deadline:
                break
            self.check(finishing=True)
        if self.proc is not None and not self.alive() and self.proc.returncode != 0:
            print(f"steadyrun: the W&B sidecar of run {self.run_id} exited (code "
                  f"{self.proc.returncode}) before it finished the W&B run; "
                  f"{pending_bytes(self.rdir)} bytes of records are not yet shipped. "
                  f"`{sync_command(self.rdir)}` "
                  f"completes it at any time. {local}",
                  file=sys.stderr)
            return
        if self.alive():
            left = pending_bytes(self.rdir)
            where = f"pid {self.proc.pid}" if self.proc is not None else "a thread"
            print(f"steadyrun: W&B shipping of run {self.run_id} did not finish within "
                  f"{timeout:.0f}s; {left} bytes of records are not yet shipped. It goes on "
                  f"in the background ({where}); `{sync_command(self.rdir)}` completes it "
                  f"at any time. {local}",
                  file=sys.stderr)
            return
        status = read_sink_status(self.rdir, "wandb")
        dirs = status.get("run_dirs") or []
        if status.get("mode") == "online" and status.get("url"):
            print(f"steadyrun: run {self.run_id} is in W&B: {status['url']}", file=sys.stderr)
        elif status.get("mode") == "offline" and dirs:
            print(f"steadyrun: run {self.run_id} is in W&B offline files ({dirs[-1]}); view "
                  f"with `wandb leet {dirs[-1]}`, upload with `{sync_command(self.rdir)}`",
                  file=sys.stderr)
