"""Process faults: the sidecar killed, training and sidecar killed together, and training
killed with SIGKILL at 20 random points of one run that is resumed after each kill.

tests/test_wandb_sidecar.py kills the sidecar's Python process alone and
tests/test_pipeline.py kills 20 separate local runs; here the sidecar dies together with
its wandb-core, both sides die at once, and the 20 kills hit one run that a final
`steadyrun sync` ships, each case counted in the run folder and in W&B's log.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import psutil
import pytest
from fault_helpers import (
    MEASURE,
    exactly_once,
    figures_of,
    kill_quietly,
    local_column,
    wait_for,
)
from wandb_helpers import (
    assert_once,
    assert_steps_strictly_increase,
    column,
    sidecar_log,
    sink_status,
    start_script,
    steadyrun_cli,
    wandb_env,
    wandb_files,
    wandb_log,
)

import steadyrun

PACED = """
import sys, time
t0 = time.monotonic()
import steadyrun

n, pace = int(sys.argv[1]), float(sys.argv[2])
run = steadyrun.init(project="faults")
print(f"RUN={run.id}", flush=True)
worst = 0.0
for i in range(n):
    a = time.perf_counter()
    run.log({"train/loss": float(i)})
    worst = max(worst, time.perf_counter() - a)
    if i % 100 == 99:
        run.flush()
        print(f"FLUSHED={i + 1}", flush=True)
    time.sleep(pace)
print("FINISHING", flush=True)
run.finish()
print(f"WORST={worst:.4f}")
print(f"TOTAL={time.monotonic() - t0:.3f}")
""" + MEASURE


def _shipping(rdir: Path, batches: int = 1) -> dict | None:
    """The sink's status once the sidecar ships (and has shipped `batches` batches)."""
    try:
        status = sink_status(rdir)
        shipped = orjson.loads((rdir / "sinks" / "wandb.cursor").read_bytes())["rows"] \
            if batches else 0
    except (FileNotFoundError, orjson.JSONDecodeError, KeyError):
        return None
    return status if status.get("state") == "shipping" and shipped >= batches else None


def _kill_tree(pid: int) -> list[int]:
    """SIGKILL a process and all its descendants (the sidecar and its wandb-core) at once."""
    try:
        procs = [psutil.Process(pid)]
        procs += procs[0].children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    for proc in procs:
        kill_quietly(proc.pid)
    return [p.pid for p in procs]


def _run_dir(base: Path) -> Path:
    runs = wait_for(lambda: list((base / "sr" / "runs").glob("*")) if (base / "sr" / "runs")
                    .is_dir() else None, 30, "the run folder")
    return runs[0]


@pytest.mark.parametrize("when", ["mid-run", "during-finish"])
def test_sidecar_killed_with_its_wandb_core(tmp_path: Path, scorecard, when: str) -> None:
    # During finish: 3000 rows logged at once, so the owner waits while the sidecar ships.
    rows, pace = (1500, "0.003") if when == "mid-run" else (3000, "0")
    script = start_script(tmp_path, PACED, args=[str(rows), pace])
    rdir = _run_dir(tmp_path)
    if when == "during-finish":
        out = tmp_path / "script.stdout"
        wait_for(lambda: b"FINISHING" in out.read_bytes(), 40, "the owner to finish")
    status = wait_for(lambda: _shipping(rdir, 1 if when == "mid-run" else 0), 40,
                      "the sidecar to ship", step=0.01)
    killed = _kill_tree(status["pid"])
    assert len(killed) >= 2, killed  # the sidecar and its wandb-core
    done = script.wait(timeout=90)
    assert "restarting it" in done.stderr, done.output

    local = local_column(rdir, "train/loss")
    exactly_once(local, [float(i) for i in range(rows)])
    log = wandb_log(rdir)
    assert len(wandb_files(rdir)) >= 2  # the killed piece, then the restarted sidecar's
    assert_once(log, "train/loss", [float(i) for i in range(rows)])
    assert_steps_strictly_increase(log)
    assert log.exit_code == 0 and sink_status(rdir)["state"] == "finished"
    assert float(done.value("WORST")) < 0.5, done.output
    scorecard(f"sidecar killed {when} (with its wandb-core)", rows_logged=rows,
              rows_local=len(local), rows_wandb=len(column(log, "train/loss")),
              **figures_of(done))


def test_training_and_sidecar_killed_then_sync_completes(tmp_path: Path, scorecard) -> None:
    script = start_script(tmp_path, PACED, args=["100000", "0.002"])
    rdir = _run_dir(tmp_path)
    status = wait_for(lambda: _shipping(rdir), 40, "the sidecar to ship")
    out = tmp_path / "script.stdout"
    wait_for(lambda: b"FLUSHED=800" in out.read_bytes(), 40, "800 flushed rows")
    t0 = time.monotonic()
    sidecar = psutil.Process(status["pid"])
    tree = [sidecar, *sidecar.children(recursive=True)]
    script.proc.send_signal(signal.SIGKILL)  # both at once: training, sidecar, wandb-core
    for proc in tree:
        kill_quietly(proc.pid)
    done = script.wait(check=False)
    assert done.returncode == -signal.SIGKILL, done.output
    flushed = max(int(line.split("=")[1]) for line in done.stdout.splitlines()
                  if line.startswith("FLUSHED="))

    t_sync = time.monotonic()
    steadyrun_cli(tmp_path, "sync", rdir.name, "--mode", "offline", "--quiet", timeout=90)
    sync_s = time.monotonic() - t_sync
    local = local_column(rdir, "train/loss")
    assert len(local) >= flushed  # every flushed row survived the kill
    assert local == [float(i) for i in range(len(local))]  # a prefix: no hole, no repeat
    log = wandb_log(rdir)
    assert_once(log, "train/loss", local)
    assert_steps_strictly_increase(log)
    assert log.exit_code not in (0, None) and "crashed" in log.run["tags"]
    assert steadyrun.open_run(rdir).state == "crashed"
    # A second sync has nothing to add.
    steadyrun_cli(tmp_path, "sync", rdir.name, "--mode", "offline", "--quiet", timeout=90)
    assert_once(wandb_log(rdir), "train/loss", local)
    scorecard("training + sidecar killed, then `steadyrun sync`", rows_logged=len(local),
              rows_flushed=flushed, rows_local=len(local),
              rows_wandb=len(column(log, "train/loss")), sync_s=round(sync_s, 2),
              time_to_end_s=round(time.monotonic() - t0, 2))


KILLABLE = """
import sys, time
import steadyrun

resume = sys.argv[1] if len(sys.argv) > 1 else None
run = steadyrun.init(project="kill20", mode="local", resume=resume)
print(f"RUN={run.id}", flush=True)
i = run.step  # the auto step continues where the killed process left off
while True:
    run.log({"train/v": float(i)})
    i += 1
    if i % 20 == 0:
        run.flush()
        print(f"FLUSHED={i}", flush=True)
    time.sleep(0.0005)
"""

FINISH = """
import sys, steadyrun
run = steadyrun.init(mode="local", resume=sys.argv[1])
run.log({"train/v": float(run.step)})
run.finish()
"""


def test_sigkill_at_20_random_points_of_one_resumed_run(tmp_path: Path, scorecard) -> None:
    rng = random.Random(7)
    env = wandb_env(tmp_path)
    (tmp_path / "k.py").write_text(KILLABLE)
    rid = None
    t0 = time.monotonic()
    for kill in range(20):
        proc = subprocess.Popen([sys.executable, str(tmp_path / "k.py"), *([rid] if rid else [])],
                                cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("RUN="), line
        rid = line.strip()[4:]
        time.sleep(rng.uniform(0.02, 0.25))
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
        flushed = [int(x.split("=")[1]) for x in out.splitlines() if x.startswith("FLUSHED=")]
        values = [v for _, v in steadyrun.open_run(rid, root=tmp_path / "sr").column("train/v")]
        # Every flushed row survived; the run is a prefix 0..n-1: no hole, no repeat.
        assert values == [float(i) for i in range(len(values))], f"kill {kill}"
        assert len(values) >= (max(flushed) if flushed else 0), f"kill {kill}"
    subprocess.run([sys.executable, "-c", FINISH, rid], cwd=tmp_path, env=env, check=True)
    data = steadyrun.open_run(rid, root=tmp_path / "sr")
    local = [v for _, v in data.column("train/v")]
    assert local == [float(i) for i in range(len(local))]
    assert data.state == "finished" and len(data.segments) == 21
    train_s = time.monotonic() - t0

    t_sync = time.monotonic()
    steadyrun_cli(tmp_path, "sync", rid, "--mode", "offline", "--quiet", timeout=120)
    sync_s = time.monotonic() - t_sync
    rdir = tmp_path / "sr" / "runs" / rid
    log = wandb_log(rdir)
    assert_once(log, "train/v", local)
    assert column(log, "train/step") == list(range(len(local)))
    assert log.exit_code == 0, sidecar_log(rdir)
    scorecard("training SIGKILLed at 20 random points (one run, resumed)",
              rows_logged=len(local), rows_local=len(local),
              rows_wandb=len(column(log, "train/v")), torn=data.torn,
              time_to_end_s=round(train_s + sync_s, 2), sync_s=round(sync_s, 2))
