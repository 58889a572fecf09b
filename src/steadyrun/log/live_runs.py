"""The runs this process has open, and the process events that must end them.

Interpreter exit finishes them; an uncaught exception marks them failed first; a forked
child (a DataLoader worker) must never write into its parent's segment; SIGTERM (SLURM,
Kubernetes) finishes them with exit code 128 + signal. The hooks are installed once,
with the first run.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Any

active: list[Any] = []
active_lock = threading.Lock()
# The run `steadyrun.init` returned last in this process, until it finishes: what
# `steadyrun.run`, `steadyrun.log(...)` and `steadyrun.config` use (wandb.run's meaning).
current: Any = None


def set_current(run: Any) -> Any:
    global current
    current = run
    return run


def register(run: Any) -> None:
    with active_lock:
        active.append(run)
    install_exit_hooks()


def forget(run: Any) -> None:
    global current
    with active_lock:
        if run in active:
            active.remove(run)
        if current is run:
            current = None


_hooks_installed = False


def install_exit_hooks() -> None:
    """Finish runs at interpreter exit; an uncaught exception marks them failed first."""
    global _hooks_installed
    if _hooks_installed:
        return
    _hooks_installed = True
    previous = sys.excepthook

    def excepthook(tp: Any, value: Any, tb: Any) -> None:
        for run in list(active):
            run.mark_failed(tp, value)
        previous(tp, value, tb)

    sys.excepthook = excepthook
    atexit.register(finish_all)
    os.register_at_fork(after_in_child=after_fork_in_child)
    install_sigterm()


def after_fork_in_child() -> None:
    """A forked child (a DataLoader worker) must never write into its parent's segment."""
    for run in list(active):
        run.detach_after_fork()
    active.clear()


def install_sigterm() -> None:
    """SLURM and Kubernetes stop jobs with SIGTERM: finish the runs, then die as asked.

    Installed only where nobody else handles SIGTERM, and only from the main thread.
    """
    import signal

    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        for run in list(active):
            try:
                run.finish(exit_code=128 + signum, timeout=10.0)
            except Exception as exc:
                print(f"steadyrun: could not finish run {run.id}: {exc}", file=sys.stderr)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    signal.signal(signal.SIGTERM, on_sigterm)


def finish_all() -> None:
    for run in list(active):
        try:
            run.finish()
        except Exception as exc:  # at exit, report and go on with the others
            print(f"steadyrun: could not finish run {run.id}: {exc}", file=sys.stderr)
