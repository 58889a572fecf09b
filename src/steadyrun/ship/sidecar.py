"""The sidecar: one process per run that ships the local log to its sinks.

The owner's `init` starts `python -m steadyrun.ship follow RUN_DIR` (handle.py) in its
own session, so a SIGKILL of training does not take it down; it drains what is on disk
and finishes the W&B run with the right exit state. Online shipping runs in a worker
process (`python -m steadyrun.ship worker`) under the supervisor here, because wandb
can hang for its whole init timeout and an in-process fallback after a failed online
init is known to hang: the supervisor kills a worker that has not started shipping in
time (the W&B sink's status says when it has) and starts an offline one instead. Where
no process can be spawned, the same shipping runs in a thread of the training process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..store.layout import read_sink_status, update_sink_status
from .sinks import build_shippers

ONLINE_INIT_BOUND = float(os.environ.get("STEADYRUN_ONLINE_INIT_TIMEOUT", "20"))


def ship(rdir: Path, mode: str, *, follow: bool, owner_pid: int | None,
         in_thread: bool = False) -> Any:
    """One shipping pass (or a follow loop) into every sink, network sinks in `mode`
    (online or offline). Returns the outcome of the last sink."""
    shippers = build_shippers(rdir, mode, follow=follow, owner_pid=owner_pid,
                              init_timeout=ONLINE_INIT_BOUND, in_thread=in_thread)
    if len(shippers) == 1:
        return shippers[0].run()
    import threading  # several sinks follow the run side by side

    outcomes: list[Any] = [None] * len(shippers)

    def run_one(i: int) -> None:
        outcomes[i] = shippers[i].run()

    threads = [threading.Thread(target=run_one, args=(i,), name=f"steadyrun-ship-{i}")
               for i in range(len(shippers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return outcomes[-1]


def supervise(rdir: Path, mode: str, owner_pid: int | None, *, follow: bool = True,
              in_thread: bool = False) -> int:
    """Pick online or offline, run the shipping, fall back to offline in a fresh process."""
    from .wandb.mode import choose, offline_note

    chosen, why = choose(mode)
    if chosen == "offline":
        if mode == "auto" or mode == "online":
            offline_note(rdir, why)
        outcome = ship(rdir, "offline", follow=follow, owner_pid=owner_pid, in_thread=in_thread)
        return 0 if outcome is not None else 1
    if in_thread:
        # No processes to spare: online in this thread, bounded by wandb's init timeout.
        try:
            ship(rdir, "online", follow=follow, owner_pid=owner_pid, in_thread=True)
            return 0
        except Exception as exc:
            offline_note(rdir, f"online shipping failed: {exc}")
            ship(rdir, "offline", follow=follow, owner_pid=owner_pid, in_thread=True)
            return 0
    code = _online_worker(rdir, follow, owner_pid)
    if code == 0:
        return 0
    offline_note(rdir, "the online W&B run failed or did not start in "
                            f"{ONLINE_INIT_BOUND:.0f}s")
    update_sink_status(rdir, fallback="offline", fallback_at=time.time())
    return _offline_worker(rdir, follow, owner_pid)


def lower_priority() -> None:
    """The sidecar works beside a training job. On a machine with no idle core its W&B
    shipping (and the wandb-core it spawns, which inherits the niceness) must yield to
    training rather than slow it down; it catches up while training waits on data or
    at `finish`. STEADYRUN_SIDECAR_NICE (default 10; 0 keeps the priority) sets it."""
    try:
        nice = int(os.environ.get("STEADYRUN_SIDECAR_NICE", "10"))
        if nice > 0:
            os.nice(nice)
    except (OSError, ValueError, AttributeError):  # no os.nice (Windows), or not allowed
        pass


def worker_cmd(rdir: Path, mode: str, follow: bool, owner_pid: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "steadyrun.ship", "worker", str(rdir), mode]
    cmd += ["--follow"] if follow else []
    cmd += ["--owner-pid", str(owner_pid)] if owner_pid else []
    return cmd


def _online_worker(rdir: Path, follow: bool, owner_pid: int | None) -> int:
    """Run online in a child; kill it if it has not started shipping within the bound."""
    proc = subprocess.Popen(worker_cmd(rdir, "online", follow, owner_pid),
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + ONLINE_INIT_BOUND
    while proc.poll() is None:
        status = read_sink_status(rdir)
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
    return subprocess.call(worker_cmd(rdir, "offline", follow, owner_pid),
                           stdin=subprocess.DEVNULL)
