"""Fork and SIGTERM: the two ways a training process usually ends up in trouble."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import steadyrun

FORKER = """
import os, steadyrun
run = steadyrun.init(mode="local")
run.log({"parent/x": 1.0})
pid = os.fork()
if pid == 0:                      # a DataLoader-style worker
    run.log({"child/x": 2.0})
    run.finish()
    os._exit(0)
os.waitpid(pid, 0)
run.log({"parent/x": 3.0})
run.finish()
print(run.id)
"""


def test_forked_child_never_writes_into_the_parents_segment(sr_root: Path) -> None:
    out = subprocess.run([sys.executable, "-c", FORKER], capture_output=True, text=True,
                         check=True, env=os.environ.copy()).stdout.strip()
    data = steadyrun.open_run(out)
    assert [v for _, v in data.column("parent/x")] == [1.0, 3.0]
    assert data.column("child/x") == []
    assert [r["k"] for r in data.records].count("close") == 1
    assert data.state == "finished" and data.torn == 0


SLEEPER = """
import time, steadyrun
run = steadyrun.init(mode="local")
print(run.id, flush=True)
i = 0
while True:
    run.log({"train/v": float(i)})
    i += 1
    time.sleep(0.001)
"""


def test_sigterm_finishes_the_run_and_keeps_every_row(sr_root: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", SLEEPER], stdout=subprocess.PIPE, text=True,
                            env=os.environ.copy())
    assert proc.stdout is not None
    rid = proc.stdout.readline().strip()
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == -signal.SIGTERM  # it still dies of SIGTERM, as asked
    data = steadyrun.open_run(rid)
    values = [v for _, v in data.column("train/v")]
    assert values and values == [float(i) for i in range(len(values))]
    assert data.state == "failed" and data.manifest["exit_code"] == 128 + signal.SIGTERM
    assert data.torn == 0


KILLED = """
import os, signal, sys, time, steadyrun
run = steadyrun.init(mode="local")
print(run.id, flush=True)
for i in range(100):
    run.log({"a": float(i)})
run.flush()                       # 0..99: fsynced when flush() returns
for i in range(100, 150):
    run.log({"a": float(i)})
time.sleep(1.0)                   # 100..149: written by the writer thread (every 0.2 s)
for i in range(150, 160):
    run.log({"a": float(i)})      # 150..159: may still be in the queue
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_what_survives_a_sigkill_today(sr_root: Path) -> None:
    """The guarantee that holds today, stated: a row is in the kernel's page cache (and
    survives SIGKILL) once the segment's writer thread has written it, which it does
    every 0.2 s; `flush()` writes and fsyncs at once. Rows logged in the last moments
    before a SIGKILL may be lost (the hot path's own write, which would close that gap,
    is the performance issue's work); what survives is always a prefix, never a hole."""
    proc = subprocess.run([sys.executable, "-c", KILLED], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    data = steadyrun.open_run(proc.stdout.strip())
    values = [v for _, v in data.column("a")]
    assert values[:150] == [float(i) for i in range(150)]
    assert values == [float(i) for i in range(len(values))]  # a prefix: no hole, no repeat
    assert data.state == "crashed"
