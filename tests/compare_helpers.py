"""Real runs for the compare and leaderboard tests, made once per module with steadyrun
(local mode, a private root): three baseline seeds (tag `base`, group `g-base`), a
better run, a worse run, a run that lacks the metrics, and a run in another project with
no goal at all. Metadata is recorded for real (metadata=True) inside a small git
repository made here, with a commit between the baselines and the new runs, so git
commits and command lines differ.

Imported by plain name, like wandb_helpers (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path

import pytest

import steadyrun
from steadyrun.cli.main import main

ENV_OFF = ("STEADYRUN_MODE", "WANDB_MODE", "STEADYRUN_STRICT", "STEADYRUN_CONTEXT", "RANK",
           "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK")

# (id, tags, group, lr, seed, best val/acc, best val/loss, eval/f1)
BASE = [("base-s0", 0.80, 0.30, 0.70), ("base-s1", 0.82, 0.32, 0.72),
        ("base-s2", 0.81, 0.31, 0.71)]


@dataclass
class World:
    root: Path
    order: list[str]  # run ids, oldest first


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                   cwd=repo, check=True, capture_output=True)


def _run(run_id: str, *, acc: float | None, loss: float | None, f1: float | None,
         lr: float, seed: int, tags: list[str], group: str | None, project: str = "main",
         argv: list[str]) -> None:
    sys.argv = argv
    run = steadyrun.init(id=run_id, project=project, tags=tags, group=group, mode="local",
                         metadata=True, config={"lr": lr, "seed": seed, "batch_size": 32,
                                                "model": {"depth": 2}})
    if acc is not None:
        run.define_metric("val/acc", goal="maximize")
        run.define_metric("val/loss", summary="min")
    for i in range(5):
        run.log({"train/loss": 1.0 / (i + 1) + seed / 100})
        if acc is not None:
            # the best is reached at step 30, then a little lower at the end (step 40)
            run.log({"val/acc": acc - (3 - i) * 0.05 if i < 4 else acc - 0.01,
                     "val/loss": loss + (3 - i) * 0.05 if i < 4 else loss + 0.01},
                    step=i * 10)
    if f1 is not None:
        run.summary.update({"eval/f1": f1, "eval/n": 100})
    run.finish()


def make_world(root: Path) -> World:
    repo = root / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    (repo / "train.py").write_text("print('v1')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-q", "-m", "v1")
    order = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STEADYRUN_DIR", str(root))
        for var in ENV_OFF:
            mp.delenv(var, raising=False)
        mp.chdir(repo)
        mp.setattr(sys, "argv", list(sys.argv))  # restored afterwards
        for seed, (rid, acc, loss, f1) in enumerate(BASE):
            _run(rid, acc=acc, loss=loss, f1=f1, lr=1e-3, seed=seed, tags=["base"],
                 group="g-base", argv=["train.py", "--seed", str(seed)])
            order.append(rid)
        (repo / "train.py").write_text("print('v2')\n")
        _git(repo, "commit", "-q", "-am", "v2")
        for rid, acc, loss, f1, lr in (("better1", 0.90, 0.20, 0.80, 3e-3),
                                       ("worse1", 0.70, 0.40, 0.60, 1e-2)):
            _run(rid, acc=acc, loss=loss, f1=f1, lr=lr, seed=0, tags=["new"], group=None,
                 argv=["train.py", "--lr", str(lr)])
            order.append(rid)
        _run("lacking1", acc=None, loss=None, f1=None, lr=1e-3, seed=0, tags=["new"],
             group=None, argv=["train.py"])
        order.append("lacking1")
        _run("nogoal1", acc=None, loss=None, f1=0.5, lr=1e-3, seed=0, tags=[], group=None,
             project="other", argv=["train.py"])
        order.append("nogoal1")
    return World(root, order)


def cli(root: Path, *args: str) -> tuple[int, str, str]:
    """`steadyrun --dir ROOT ARGS` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "250"
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["--dir", str(root), *args])
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return code, out.getvalue(), err.getvalue()


def cli_json(root: Path, *args: str) -> dict:
    code, out, err = cli(root, *args, "--json")
    assert code == 0, err
    return json.loads(out)


def cli_process(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command in a fresh process (exit codes and stderr as a user sees them)."""
    env = {**os.environ, "COLUMNS": "250", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "steadyrun", "--dir", str(root), *args],
                          capture_output=True, text=True, timeout=60, env=env)
