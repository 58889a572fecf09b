"""One pipeline is one run: subprocesses, resume and crashes, checked in W&B's own log."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from wandb_helpers import column, run_script, start_script, steadyrun_cli, wandb_env, wandb_log

import steadyrun

ORCHESTRATOR = """
import subprocess, sys, steadyrun
CHILD = '''
import sys, steadyrun
role = sys.argv[1]
run = steadyrun.init(job_type=role)
if role == "train":
    for i in range(200):
        run.log({"train/loss": 1.0 / (i + 1)}, step=i)
else:
    for i in range(20):
        run.log({f"{role}/score": float(i)}, step=i)
    run.log_summary({"acc": 0.5 if role == "eval_a" else 0.7}, prefix=role)
    run.log_table(f"{role}/table", columns=["k", "v"], rows=[[role, 1]])
run.finish()
'''
run = steadyrun.init(project="pipe", config={"stages": 3})
print("RUN=" + run.id, flush=True)
env = run.child_env()
subprocess.run([sys.executable, "-c", CHILD, "train"], env=env, check=True)
evals = [subprocess.Popen([sys.executable, "-c", CHILD, r], env=env) for r in ("eval_a", "eval_b")]
assert all(p.wait() == 0 for p in evals)
run.summary.update({"pipeline/done": 1})
run.finish()
"""


def test_orchestrator_with_concurrent_children_is_one_wandb_run(tmp_path: Path) -> None:
    done = run_script(tmp_path, ORCHESTRATOR)
    rid = done.value("RUN")
    assert done.run_ids == [rid]  # every child joined the owner's run
    data = steadyrun.open_run(done.rdir)
    assert sorted(s["role"] for s in data.segments.values()) == ["child"] * 3 + ["owner"]
    assert all(s["closed"] for s in data.segments.values())
    log = wandb_log(done.rdir)
    assert log.run["run_id"] == rid
    assert {p.parent.name.rsplit("-", 1)[-1] for p in log.paths} == {rid}
    assert column(log, "train/loss") == [1.0 / (i + 1) for i in range(200)]
    assert column(log, "eval_a/score") == [float(i) for i in range(20)]
    assert column(log, "eval_b/score") == [float(i) for i in range(20)]
    assert log.summary["eval_a/acc"] == 0.5 and log.summary["eval_b/acc"] == 0.7
    assert log.summary["pipeline/done"] == 1
    tables = {k for row in log.history for k, v in row.items()
              if isinstance(v, dict) and v.get("_type") == "table-file"}
    assert tables == {"eval_a/table", "eval_b/table"}
    for role in ("eval_a", "eval_b"):  # a table sits on its namespace's axis like any row
        (row,) = [r for r in log.history if f"{role}/table" in r]
        assert row[f"{role}/step"] == 19
        assert log.metrics[f"{role}/table"]["step_metric"] == f"{role}/step"
    assert log.exit_code == 0


def test_child_env_context_file_is_private_and_has_no_key(sr_root: Path) -> None:
    run = steadyrun.init(mode="local")
    env = run.child_env({"WANDB_API_KEY": "k" * 40, "PATH": os.environ["PATH"]})
    path = Path(env["STEADYRUN_CONTEXT"])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert b"k" * 40 not in path.read_bytes()
    out = subprocess.run(
        [sys.executable, "-c", "import steadyrun; r = steadyrun.init(name='child'); "
         "r.log({'c/x': 1.0}); r.finish(); print(r.id, r.role)"],
        env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout.split()
    assert out == [run.id, "child"]
    run.log({"o/x": 2.0})  # the child's finish closed only its own segment
    run.finish()
    data = steadyrun.open_run(run.id)
    assert data.column("c/x") == [(0, 1.0)] and data.column("o/x") == [(0, 2.0)]
    assert data.state == "finished"


def test_attach_joins_explicitly(sr_root: Path) -> None:
    run = steadyrun.init(mode="local")
    other = steadyrun.attach(run.id, job_type="side")
    other.log({"side/v": 3.0})
    other.finish()
    run.finish()
    assert steadyrun.open_run(run.id).column("side/v") == [(0, 3.0)]


RESUME = """
import json, sys, steadyrun
phase, ckpt = sys.argv[1], sys.argv[2]
if phase == "first":
    run = steadyrun.init(project="resume")
    for i in range(100):
        run.log({"train/loss": float(i)}, step=i)
        if i == 49:
            json.dump(run.state_dict(), open(ckpt, "w"))   # checkpoint at step 49
    run.finish()
else:
    state = json.load(open(ckpt))
    run = steadyrun.init(resume=state if phase == "state" else state["run_id"])
    start = 50 if phase == "state" else 100
    for i in range(start, start + 60):          # "state": a rollback re-logs 50..99
        run.log({"train/loss": float(i) + 0.5}, step=i)
    run.log({"plain": 1.0})
    run.finish()
print("RUN=" + run.id)
"""


@pytest.mark.parametrize("how", ["state", "id"])
def test_resume_continues_one_run_locally_and_in_wandb(tmp_path: Path, how: str) -> None:
    ckpt = tmp_path / "ckpt.json"
    first = run_script(tmp_path, RESUME, args=["first", str(ckpt)], name="first")
    second = run_script(tmp_path, RESUME, args=[how, str(ckpt)], name="second")
    assert first.value("RUN") == second.value("RUN") and second.run_ids == [first.value("RUN")]
    data = steadyrun.open_run(second.rdir)
    steps = [s for s, _ in data.column("train/loss")]
    expected = list(range(100)) + (list(range(50, 110)) if how == "state"
                                   else list(range(100, 160)))
    assert steps == expected  # every re-logged step kept
    regressions = [e for e in data.events if e["type"] == "step_regression"]
    assert len(regressions) == (1 if how == "state" else 0)
    log = wandb_log(second.rdir)
    assert len(log.paths) == 2  # offline W&B ignores resume: two folders, one run id
    assert [row["train/step"] for row in log.history if "train/loss" in row] == expected
    assert column(log, "train/loss")[100:103] == ([50.5, 51.5, 52.5] if how == "state"
                                                  else [100.5, 101.5, 102.5])
    # the auto step continues from the first process's (it never advanced: all explicit)
    assert [s for s, _ in data.column("plain")] == [0]


KILLABLE = """
import os, sys, time, steadyrun
run = steadyrun.init(project="crash", mode=sys.argv[1])
print("RUN=" + run.id, flush=True)
i = 0
while True:
    run.log({"train/v": float(i)})
    i += 1
    if i % 50 == 0:
        run.flush()
        print(f"FLUSHED={i}", flush=True)
"""


def test_sigkill_at_random_points_loses_nothing_flushed(tmp_path: Path) -> None:
    rng = random.Random(1234)
    delays = [rng.uniform(0.05, 0.6) for _ in range(20)]  # 20 kill points
    for group in range(0, len(delays), 4):  # four processes at a time on two cores
        procs = []
        for n in range(group, group + 4):
            base = tmp_path / f"k{n}"
            base.mkdir()
            (base / "s.py").write_text(KILLABLE)
            procs.append((base, delays[n], subprocess.Popen(
                [sys.executable, str(base / "s.py"), "local"], cwd=base, env=wandb_env(base),
                stdout=subprocess.PIPE, text=True)))
        for base, delay, proc in procs:
            assert proc.stdout is not None
            rid_line = proc.stdout.readline()
            assert rid_line.startswith("RUN="), rid_line
            time.sleep(delay)
            proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate(timeout=30)
            flushed = [int(x.split("=")[1]) for x in out.splitlines()
                       if x.startswith("FLUSHED=")]
            data = steadyrun.open_run(rid_line.strip()[4:], root=base / "sr")
            values = [v for _, v in data.column("train/v")]
            assert values == [float(i) for i in range(len(values))]  # a prefix: no holes, dups
            assert len(values) >= (max(flushed) if flushed else 0)
            assert data.torn <= 1
            assert data.state == "crashed"


def test_killed_training_ends_crashed_in_wandb_and_runs_lists_it(tmp_path: Path) -> None:
    script = start_script(tmp_path, KILLABLE, args=["offline"])
    deadline = time.monotonic() + 60
    out = tmp_path / "script.stdout"
    while b"FLUSHED=2000" not in out.read_bytes():
        assert time.monotonic() < deadline and script.proc.poll() is None
        time.sleep(0.05)
    script.proc.send_signal(signal.SIGKILL)
    done = script.wait(check=False)
    rdir = done.rdir
    # the sidecar notices the owner is gone, drains the log and finishes W&B as crashed
    status = rdir / "sinks" / "wandb.json"
    deadline = time.monotonic() + 60
    while not (status.exists() and orjson.loads(status.read_bytes()).get("finished")):
        assert time.monotonic() < deadline, (rdir / "sinks" / "sidecar.log").read_text()
        time.sleep(0.2)
    data = steadyrun.open_run(rdir)
    local = [v for _, v in data.column("train/v")]
    log = wandb_log(rdir)
    assert column(log, "train/v") == local and len(local) >= 2000
    assert log.exit_code not in (0, None)
    assert "crashed" in log.run["tags"]
    listed = orjson.loads(steadyrun_cli(tmp_path, "runs", "--json").stdout)
    assert [(r["id"], r["state"]) for r in listed] == [(rdir.name, "crashed")]
    # a later sync has nothing left to add
    steadyrun_cli(tmp_path, "sync", rdir.name, "--mode", "offline", "--quiet")
    assert column(wandb_log(rdir), "train/v") == local
