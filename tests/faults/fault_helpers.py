"""Shared pieces of the fault suite: loopback W&B stand-ins, measured scripts, counting.

Every case runs real training code in a fresh interpreter and counts what it logged in
three places: what the script says it logged, what `steadyrun.open_run` finds in the
run folder, and what W&B's own transaction log holds (read with `steadyrun.ship.wandb.txlog`).
The measured figures go to the scorecard file when STEADYRUN_SCORECARD is set.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from wandb_helpers import Finished, column, wandb_log

import steadyrun
from steadyrun.testing import FaultServer  # noqa: F401  (the tests import it from here)

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"  # 40 hex characters, like a real key

# Appended to measured scripts: what the training process itself saw.
# VmHWM, not ru_maxrss: on Linux ru_maxrss keeps the high-water mark of the parent that
# forked the script (a big pytest worker), VmHWM is this program's own.
MEASURE = """
def _peak_mb():
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"PEAK_MB={_peak_mb():.1f}", flush=True)
"""

# A training loop that logs one row per call, measuring every call, and says so.
TRAIN = """
import sys, time
t0 = time.monotonic()
import steadyrun

mode, n, pace = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
run = steadyrun.init(project="faults", mode=mode)
print(f"RUN={run.id}", flush=True)
t_init = time.monotonic() - t0
worst = 0.0
for i in range(n):
    a = time.perf_counter()
    run.log({"train/loss": float(i), "train/i": i})
    worst = max(worst, time.perf_counter() - a)
    if pace:
        time.sleep(pace)
t_loop = time.monotonic() - t0 - t_init
run.finish()
print(f"LOGGED={n}")
print(f"INIT={t_init:.3f}")
print(f"LOOP={t_loop:.3f}")
print(f"WORST={worst:.4f}")
print(f"TOTAL={time.monotonic() - t0:.3f}")
""" + MEASURE


# ---------------------------------------------------------------------- scorecard
def record_figures(case: str, test: str, figures: dict[str, Any]) -> None:
    path = os.environ.get("STEADYRUN_SCORECARD")
    if not path:
        return
    line = json.dumps({"case": case, "test": test, **figures}, default=str) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, line.encode())  # one small O_APPEND write: safe across xdist workers
    finally:
        os.close(fd)


def figures_of(done: Finished, **more: Any) -> dict[str, Any]:
    """The standard figures a measured script printed."""
    out: dict[str, Any] = {}
    for name, key in (("TOTAL", "time_to_end_s"), ("PEAK_MB", "peak_mb"),
                      ("WORST", "worst_call_s"), ("INIT", "init_s")):
        for line in done.stdout.splitlines():
            if line.startswith(f"{name}="):
                out[key] = float(line.split("=", 1)[1])
    out.setdefault("time_to_end_s", round(done.elapsed, 2))
    out.update(more)
    return out


# ---------------------------------------------------------------------- counting
def local_column(rdir: Path, key: str) -> list[Any]:
    return [v for _, v in steadyrun.open_run(rdir).column(key)]


def wandb_column(rdir: Path, key: str, **kwargs: Any) -> list[Any]:
    return column(wandb_log(rdir, **kwargs), key)


def exactly_once(values: Iterable[Any], expected: Iterable[Any]) -> None:
    """`values` holds each expected value once, and nothing else (order not checked)."""
    got = Counter(values)
    want = Counter(expected)
    dupes = {v: n for v, n in got.items() if n > 1}
    assert not dupes, f"held more than once: {list(dupes.items())[:10]}"
    missing = want - got
    extra = got - want
    assert not missing and not extra, (f"missing {sorted(missing)[:10]} ({sum(missing.values())}"
                                       f" in all), extra {sorted(extra)[:10]}")


def same_value(a: Any, b: Any) -> bool:
    """Equality that holds NaN equal to NaN and tells bool from int."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def wait_shipped(rdir: Path, timeout: float = 3600) -> float:
    """Wait until the sidecar has finished the W&B run (it may outlive `finish()`'s
    bounded wait on big runs); return the seconds waited."""
    t0 = time.monotonic()
    path = rdir / "sinks" / "wandb.json"

    def finished() -> bool:
        try:
            return bool(json.loads(path.read_bytes()).get("finished"))
        except (FileNotFoundError, ValueError):
            return False

    wait_for(finished, timeout, f"the sidecar of {rdir.name} to finish", step=0.5)
    return time.monotonic() - t0


def kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def wait_for(predicate: Any, timeout: float, what: str, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
