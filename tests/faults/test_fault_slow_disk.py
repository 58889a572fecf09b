"""A disk whose fsync stalls: training must not wait on it.

A slow disk rarely makes `write` slow: writes land in the page cache and return at once,
and the wait comes in `fsync`, which blocks until the device has the data. The burst case
of test_fault_load.py slows `pwrite` instead (back-pressure when the disk cannot keep up);
this case stalls every `fsync` of the process for 3 s while training logs, in both write
modes. The segment writer's thread fsyncs once a second outside its lock
(log/segment_writer.py), so `log()` must never wait for it; `flush()` and `finish()` do
wait, by contract (their rows are durable when they return).

The stall is made in the script (os.fsync wrapped with a sleep): no device here can be
made to stall for real. A real device can also hold a page under writeback and make a
store into it wait (stable pages); that is not reproduced.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_helpers import MEASURE, figures_of, local_column
from wandb_helpers import run_script

STALL_S = 1.5

STALLED = """
import os, sys, threading, time
t0 = time.monotonic()
stall = float(sys.argv[1])
real_fsync = os.fsync
stalls = []  # (start, end, thread name) of every fsync of the process

def stalled_fsync(fd):
    a = time.monotonic()
    time.sleep(stall)
    real_fsync(fd)
    stalls.append((a, time.monotonic(), threading.current_thread().name))

os.fsync = stalled_fsync  # every module's os.fsync: the whole process meets the slow disk
import steadyrun

a = time.monotonic()
run = steadyrun.init(project="fsync", mode="local")
init_s, init_fsyncs = time.monotonic() - a, len(stalls)
print(f"RUN={run.id}", flush=True)
worst, i = 0.0, 0
loop_start = time.monotonic()
while time.monotonic() - loop_start < 2.5 * stall:  # long enough to meet two stalls
    a = time.perf_counter()
    run.log({"train/loss": float(i)})
    worst = max(worst, time.perf_counter() - a)
    i += 1
    time.sleep(0.0005)
loop_end = time.monotonic()
during = [s for s in stalls if s[0] < loop_end and s[1] > loop_start]
a = time.monotonic()
run.finish()
print(f"INIT={init_s:.3f}")
print(f"INIT_FSYNCS={init_fsyncs}")
print(f"FINISH={time.monotonic() - a:.3f}")
print(f"LOGGED={i}")
print(f"WORST={worst:.4f}")
print(f"STALLS_DURING_LOOP={len(during)}")
print(f"STALLED_THREADS={sorted({s[2] for s in during})}")
print(f"STALLED_S={sum(min(e, loop_end) - max(a, loop_start) for a, e, _ in during):.2f}")
print(f"TOTAL={time.monotonic() - t0:.3f}")
""" + MEASURE


@pytest.mark.parametrize("write_mode", ["mmap", "write"])
def test_a_stalled_fsync_never_holds_the_training_thread(tmp_path: Path, scorecard,
                                                          write_mode: str) -> None:
    done = run_script(tmp_path, STALLED, args=[str(STALL_S)], timeout=120,
                      env={"STEADYRUN_WRITE_MODE": write_mode})
    logged = int(done.value("LOGGED"))
    # The stall really happened while training logged, on the writer's thread...
    assert int(done.value("STALLS_DURING_LOOP")) >= 1, done.output
    assert float(done.value("STALLED_S")) >= STALL_S * 0.9, done.output
    assert "MainThread" not in done.value("STALLED_THREADS"), done.output
    # ...and no log() call waited for it: a call that did would take seconds.
    worst = float(done.value("WORST"))
    assert worst < STALL_S / 6, done.output
    local = local_column(done.rdir, "train/loss")
    assert local == [float(i) for i in range(logged)]  # and every row is there, in order
    # init and finish do wait: init for run.json's one fsync (its durable first state),
    # finish for the segment's and run.json's; the figures say how long.
    assert int(done.value("INIT_FSYNCS")) <= 1, done.output
    scorecard(f"fsync stalled {STALL_S} s on every call ({write_mode} mode)",
              rows_logged=logged, rows_local=len(local), rows_wandb="n/a (local)",
              **figures_of(done, fsync_stalls_while_logging=int(done.value(
                  "STALLS_DURING_LOOP")), fsyncs_in_init=int(done.value("INIT_FSYNCS")),
                  init_s=float(done.value("INIT")), finish_s=float(done.value("FINISH"))))
