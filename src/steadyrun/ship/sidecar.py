"""The sidecar: one process per run that ships the local log to W&B.

The owner's `init` spawns `steadyrun sync RUN --follow` in its own session, so a
SIGKILL of training does not take it down; it drains what is on disk and finishes the
W&B run with the right exit state. Online shipping runs in a worker process under a
supervisor, because wandb can hang for its whole init timeout and an in-process
fallback after a failed online init is known to hang: the supervisor kills a worker
that does not come up in time and starts an offline one instead. Where no process can
be spawned, the same shipping runs in a thread.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from ..store.layout import sinks_dir

ONLINE_INIT_BOUND = float(os.environ.get("STEADYRUN_ONLINE_INIT_TIMEOUT", "20"))
MAX_RESTARTS = 3


# ---------------------------------------------------------------------- training side
class SidecarHandle:
    """Held by the owner's Run: restarts a dead sidecar, and bounds the wait at finish."""

    def __init__(self, run: Any, how: str, finish_timeout: float) -> None:
        self.run = run
        self.how = how
        self.finish_timeout = finish_timeout
        self.restarts = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.thread: threading.Thread | None = None
        self._start()

    def _cmd(self) -> list[str]:
        root = self.run.dir.parent.parent
        return [sys.executable, "-m", "steadyrun", "--dir", str(root), "sync", self.run.id,
                "--follow", "--owner-pid", str(os.getpid()), "--mode", self.run.mode, "--quiet"]

    def _start(self) -> None:
        if self.how == "process":
            # Owner-only whatever the umask, like every file of the run.
            log = os.fdopen(os.open(sinks_dir(self.run.dir) / "sidecar.log",
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
                                       args=(self.run.dir, self.run.mode, os.getpid()),
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
        if finishing or not self.run._finished:
            code = self.proc.returncode if self.proc is not None else "?"
            self.restarts += 1
            print(f"steadyrun: the W&B sidecar of run {self.run.id} exited (code {code}); "
                  f"restarting it ({self.restarts}/{MAX_RESTARTS}). Nothing is lost: it "
                  f"resumes from its cursor.", file=sys.stderr)
            self._start()

    def finish(self, timeout: float | None) -> None:
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
            print(f"steadyrun: the W&B sidecar of run {self.run.id} exited (code "
                  f"{self.proc.returncode}) before it finished the W&B run; "
                  f"{pending_bytes(self.run.dir)} bytes of records are not yet shipped. "
                  f"`steadyrun sync {self.run.id}` "
                  f"completes it at any time. Nothing is lost: the local log holds every record.",
                  file=sys.stderr)
            return
        if self.alive():
            left = pending_bytes(self.run.dir)
            where = f"pid {self.proc.pid}" if self.proc is not None else "a thread"
            print(f"steadyrun: W&B shipping of run {self.run.id} did not finish within "
                  f"{timeout:.0f}s; {left} bytes of records are not yet shipped. It goes on "
                  f"in the background ({where}); `steadyrun sync {self.run.id}` completes it "
                  f"at any time. Nothing is lost: the local log holds every record.",
                  file=sys.stderr)
            return
        status = _status(self.run.dir)
        dirs = status.get("run_dirs") or []
        if status.get("mode") == "online" and status.get("url"):
            print(f"steadyrun: run {self.run.id} is in W&B: {status['url']}", file=sys.stderr)
        elif status.get("mode") == "offline" and dirs:
            print(f"steadyrun: run {self.run.id} is in W&B offline files ({dirs[-1]}); view "
                  f"with `wandb leet {dirs[-1]}`, upload with `steadyrun sync {self.run.id}`",
                  file=sys.stderr)


def start_sidecar(run: Any, how: str = "process", finish_timeout: float = 60.0) -> SidecarHandle:
    return SidecarHandle(run, how, finish_timeout)


def pending_bytes(rdir: Path) -> int:
    from ..store.segment_reader import list_segments
    from .cursor import Cursor

    cursor = Cursor.load(sinks_dir(rdir) / "wandb.cursor")
    return sum(max(0, p.stat().st_size - cursor.offsets.get(p.stem, 0))
               for p in list_segments(rdir))


# ---------------------------------------------------------------------- sidecar side
def ship(rdir: Path, wandb_mode: str, *, follow: bool, owner_pid: int | None,
         in_thread: bool = False, progress: Any = None) -> Any:
    """One shipping pass (or a follow loop) into a W&B run of the given mode."""
    from .shipper import Shipper
    from .wandb.sink import WandbSink

    if wandb_mode == "online":
        from .wandb.upload import upload_offline_dirs

        upload_offline_dirs(rdir)  # earlier offline pieces first: steps must only increase
    sink = WandbSink(rdir, wandb_mode, owner_pid=owner_pid, init_timeout=ONLINE_INIT_BOUND,
                     teardown=not in_thread)
    return Shipper(rdir, sink, follow=follow, owner_pid=owner_pid, progress=progress).run()


def supervise(rdir: Path, mode: str, owner_pid: int | None, *, follow: bool = True,
              in_thread: bool = False, quiet: bool = False) -> int:
    """Pick online or offline, run the shipping, fall back to offline in a fresh process."""
    from .wandb.mode import choose, offline_note

    chosen, why = choose(mode)
    if chosen == "offline":
        if mode == "auto" or mode == "online":
            offline_note(rdir.name, why)
        outcome = ship(rdir, "offline", follow=follow, owner_pid=owner_pid, in_thread=in_thread)
        return 0 if outcome is not None else 1
    if in_thread:
        # No processes to spare: online in this thread, bounded by wandb's init timeout.
        try:
            ship(rdir, "online", follow=follow, owner_pid=owner_pid, in_thread=True)
            return 0
        except Exception as exc:
            offline_note(rdir.name, f"online shipping failed: {exc}")
            ship(rdir, "offline", follow=follow, owner_pid=owner_pid, in_thread=True)
            return 0
    code = _online_worker(rdir, follow, owner_pid)
    if code == 0:
        return 0
    offline_note(rdir.name, "the online W&B run failed or did not start in "
                            f"{ONLINE_INIT_BOUND:.0f}s")
    _set_status(rdir, fallback="offline", fallback_at=time.time())
    return _offline_worker(rdir, follow, owner_pid)


def _worker_cmd(rdir: Path, wandb_mode: str, follow: bool, owner_pid: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "steadyrun.ship.sidecar", str(rdir), wandb_mode]
    cmd += ["--follow"] if follow else []
    cmd += ["--owner-pid", str(owner_pid)] if owner_pid else []
    return cmd


def _online_worker(rdir: Path, follow: bool, owner_pid: int | None) -> int:
    """Run online in a child; kill it if it has not started shipping within the bound."""
    proc = subprocess.Popen(_worker_cmd(rdir, "online", follow, owner_pid),
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + ONLINE_INIT_BOUND
    while proc.poll() is None:
        status = _status(rdir)
        if status.get("mode") == "online" and status.get("state") in ("shipping", "finished") \
                and status.get("pid") == proc.pid:
            return proc.wait()
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            return -9
        time.sleep(0.1)
    return proc.returncode


def _offline_worker(rdir: Path, follow: bool, owner_pid: int | None) -> int:
    return subprocess.call(_worker_cmd(rdir, "offline", follow, owner_pid),
                           stdin=subprocess.DEVNULL)


def _status(rdir: Path) -> dict[str, Any]:
    try:
        return orjson.loads((sinks_dir(rdir) / "wandb.json").read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return {}


def _set_status(rdir: Path, **fields: Any) -> None:
    from ..store.layout import atomic_write_json

    data = _status(rdir)
    data.update(fields)
    atomic_write_json(sinks_dir(rdir) / "wandb.json", data)


def _worker_main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="steadyrun.sidecar")
    p.add_argument("rdir")
    p.add_argument("mode", choices=["online", "offline"])
    p.add_argument("--follow", action="store_true")
    p.add_argument("--owner-pid", type=int, default=None)
    a = p.parse_args(argv)
    try:
        ship(Path(a.rdir), a.mode, follow=a.follow, owner_pid=a.owner_pid)
    except Exception as exc:
        print(f"steadyrun sidecar ({a.mode}): {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(_worker_main(sys.argv[1:]))
