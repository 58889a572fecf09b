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
for i in range(150, 160):
    run.log({"a": float(i)})      # 100..159: in the page cache, each as log() returned
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_what_survives_a_sigkill(sr_root: Path) -> None:
    """The guarantee, stated: a row is in the kernel's page cache (and survives SIGKILL)
    when `log()` returns; `flush()` also fsyncs it (a power cut). Every row logged
    before the kill survives, the last one logged an instant before it included
    (tests/faults/test_fault_sigkill_hotpath.py does it at 240 kill points)."""
    proc = subprocess.run([sys.executable, "-c", KILLED], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    data = steadyrun.open_run(proc.stdout.strip())
    values = [v for _, v in data.column("a")]
    assert values == [float(i) for i in range(160)]
    assert data.state == "crashed"


CRASHER = """
import steadyrun
run = steadyrun.init(project="crash")
run.log({"train/loss": 1.0})
print(run.id, flush=True)
raise ValueError("lr must be positive; token=hf_abcdefghijklmnopqrstuvwxyz012345 was set")
"""


def test_an_uncaught_exception_says_why_the_run_failed(sr_root: Path) -> None:
    """Issue 17: a crash's exception type and message (redacted) are recorded, and
    `show` and `runs` say why the run failed."""
    proc = subprocess.run([sys.executable, "-c", CRASHER], capture_output=True, text=True,
                          env=os.environ.copy(), timeout=60)
    assert proc.returncode == 1 and "ValueError" in proc.stderr
    rid = proc.stdout.strip()
    data = steadyrun.open_run(rid)
    assert data.state == "failed" and data.manifest["exit_code"] == 1
    err = data.manifest["error"]
    assert err["type"] == "ValueError" and err["message"].startswith("lr must be positive")
    assert "hf_abcdefghijklmnop" not in err["message"]  # redacted, as everything stored
    (event,) = [e for e in data.events if e.get("type") == "exception"]
    assert event["exc_type"] == "ValueError" and event["message"] == err["message"]
    from steadyrun.ui.model import RunView  # the dashboard's run page says it too

    assert any(n.startswith("failed with ValueError: lr must be positive")
               for n in RunView(data.dir).payload()["notices"])
    for argv in (["show", rid], ["runs"]):
        out = subprocess.run([sys.executable, "-m", "steadyrun", *argv], capture_output=True,
                             text=True, env={**os.environ, "COLUMNS": "250"}, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "failed (ValueError: lr must be positive" in out.stdout, out.stdout
        assert "hf_abcdefghijklmnop" not in out.stdout
