"""Issue 17, points 4 and 6: W&B's overview describes the training program (not the
sidecar that runs W&B), step metrics are axes, not charts, and a table's metadata stays
inside the table.

A script in a git repository (a remote with a password in its URL, a dirty tree) runs
twice with a secret on its command line: once through steadyrun (W&B offline, shipped
by the sidecar), once with raw `wandb`. Both W&B transaction logs are read back: the
steadyrun run must hold at least what the raw run holds (program, arguments, host,
git commit and remote, Python, the diff), with the secret argument redacted where raw
wandb leaks it, and hidden step metrics where raw wandb draws each one.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from wandb_helpers import run_script, wandb_files, wandb_log

from steadyrun.ship.wandb import txlog
from steadyrun.testing import wandb_env

SECRET = "sk-overviewtest0123456789abcdef"
PASSWORD = "hunter2pass"

STEADYRUN = """
import steadyrun
run = steadyrun.init(project="overview")
for i in range(5):
    run.log({"train/loss": 1.0 / (i + 1)})
    run.log({"eval/acc": i / 5})
run.log_table("eval/table", columns=["a", "b"], rows=[[1, 2], [3, 4]])
print("ID=" + run.id)
run.finish()
"""

RAW = """
import wandb
run = wandb.init(project="overview", mode="offline",
                 settings=wandb.Settings(silent=True, console="off", x_disable_stats=True,
                                         x_save_requirements=False))
for i in range(5):
    run.log({"train/loss": 1.0 / (i + 1), "train/step": i})
    run.log({"eval/acc": i / 5, "eval/step": i})
run.log({"eval/table": wandb.Table(columns=["a", "b"], data=[[1, 2], [3, 4]])})
run.finish()
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("overview")
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    _git(repo, "remote", "add", "origin", f"https://alice:{PASSWORD}@github.com/acme/model.git")
    (repo / "model.py").write_text("LAYERS = 4\n")
    _git(repo, "add", "model.py")
    _git(repo, "commit", "-q", "-m", "first")
    (repo / "model.py").write_text("LAYERS = 8\n")  # a dirty tree: its diff is saved
    return repo


def _environment(path: Path) -> Any:
    envs = [r.environment for r in txlog.iter_records(path)
            if r.WhichOneof("record_type") == "environment" and r.environment.program]
    assert envs, f"no environment record in {path}"
    return envs[0]


def test_the_overview_is_the_training_programs(repo: Path) -> None:
    argv = ("--lr", "0.1", f"--api_key={SECRET}")
    done = run_script(repo, STEADYRUN, name="train", args=argv)  # auto, no key: offline
    log = wandb_log(done.rdir)
    (ours,) = wandb_files(done.rdir)
    env = _environment(ours)

    raw_dir = repo / "raw"
    raw_dir.mkdir()
    (repo / "raw_train.py").write_text(RAW)
    subprocess.run([sys.executable, "raw_train.py", *argv], cwd=repo, check=True,
                   env=wandb_env(raw_dir, WANDB_DIR=str(raw_dir)), timeout=120,
                   capture_output=True)
    (raw_log,) = txlog.find_run_files(raw_dir / "wandb")
    assert txlog.wait_complete(raw_log, timeout=30)
    raw = _environment(raw_log)

    head = _git(repo, "rev-parse", "HEAD")
    # what raw wandb shows, steadyrun shows too: the program, its arguments, the host,
    # git's commit and remote, the Python
    assert raw.program.endswith("raw_train.py") and env.program.endswith("train.py")
    assert "sidecar" not in env.program and "steadyrun" not in env.program
    assert list(raw.args[:2]) == list(env.args[:2]) == ["--lr", "0.1"]
    assert raw.git.commit == env.git.commit == head
    assert env.git.remote_url and "github.com/acme/model" in env.git.remote_url
    assert env.host == raw.host == socket.gethostname()
    assert env.python == raw.python and env.python
    # ... without what raw wandb leaks: the secret argument (both drop the remote's
    # password)
    assert SECRET in str(raw.args) and PASSWORD not in raw.git.remote_url
    assert SECRET not in str(env.args) and PASSWORD not in env.git.remote_url
    assert SECRET not in ours.read_bytes().decode("latin-1")
    # the dirty tree's diff, as W&B names it
    assert "diff.patch" in log.files and "LAYERS = 8" in (
        Path(ours.parent / "files" / "diff.patch").read_text())
    # step metrics: axes, hidden from W&B's automatic panels; raw wandb draws each
    for step in ("train/step", "eval/step"):
        assert log.metrics[step]["hidden"], step
    raw_metrics = txlog.load(raw_log).metrics
    assert not any(m.get("hidden") for m in raw_metrics.values())
    assert not log.metrics["train/loss"]["hidden"] and not log.metrics["eval/acc"]["hidden"]
    # a table is W&B's table value, as raw wandb writes it: its metadata (ncols, nrows,
    # size) stays inside that value, never keys of their own (charts)
    raw_log_ = txlog.load(raw_log)
    ours_table = next(r["eval/table"] for r in log.history if "eval/table" in r)
    raw_table = next(r["eval/table"] for r in raw_log_.history if "eval/table" in r)
    assert ours_table["_type"] == raw_table["_type"] == "table-file"
    assert set(ours_table) == set(raw_table)
    for hist in (log.history, raw_log_.history):
        assert not any(k.startswith("eval/table.") for r in hist for k in r)
    assert not any(k.startswith("eval/table.") for k in log.metrics)


STATS = """
import time
import steadyrun
run = steadyrun.init(project="overview-stats")
ballast = bytearray(400 << 20)  # the training process holds 400 MB; the sidecar does not
for i in range(0, len(ballast), 4096):
    ballast[i] = 1
t0 = time.time()
while time.time() - t0 < 4:
    run.log({"train/loss": 0.5})
    time.sleep(0.05)
print("ID=" + run.id)
run.finish()
"""


def test_system_metrics_sample_the_training_process(tmp_path: Path) -> None:
    """W&B's system panel follows the training process, not the sidecar that runs W&B:
    the process memory it records is the owner's 400 MB."""
    done = run_script(tmp_path, STATS, env={"STEADYRUN_WANDB_STATS": "1",
                                           "WANDB_X_STATS_SAMPLING_INTERVAL": "1"})
    wandb_log(done.rdir)
    rss = []
    for path in wandb_files(done.rdir):
        for rec in txlog.iter_records(path):
            if rec.WhichOneof("record_type") == "stats":
                rss += [float(it.value_json) for it in rec.stats.item
                        if it.key == "proc.memory.rssMB"]
    assert rss, "W&B recorded no process memory"
    assert max(rss) > 380, rss  # the owner's ballast: the sidecar holds about 100 MB
