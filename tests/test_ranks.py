"""Ranks under real launchers: torchrun (gloo, CPU) on one and two loopback "nodes"."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from wandb_helpers import bare_env, free_port

import steadyrun

pytest.importorskip("torch")

TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]

SCRIPT = textwrap.dedent("""
    import os, sys
    import torch.distributed as dist
    import steadyrun

    dist.init_process_group("gloo")
    rank = dist.get_rank()
    run = steadyrun.init(mode="local", all_ranks=os.environ.get("ALL_RANKS") == "1")
    for i in range(20):
        run.log({"train/loss": float(rank * 100 + i)}, reduce="mean")
        run.log({"worker/value": float(rank)})
    run.summary.update({"final": 1.0})
    print(f"hello from rank {rank}", flush=True)  # captured per writer (log/console.py)
    run.finish()
    # One write(2) of a whole line: both ranks share torchrun's stdout pipe, and print()
    # with several arguments may write them piece by piece (unbuffered), interleaving
    # the ranks' lines ("RUNRUN 0 Run ..."); a write under PIPE_BUF bytes is atomic.
    os.write(1, f"RUN {rank} {type(run).__name__} {run.id}\\n".encode())
    dist.destroy_process_group()
""")


def _env(root: Path, **extra: str) -> dict[str, str]:
    return bare_env(STEADYRUN_DIR=str(root), OMP_NUM_THREADS="1", **extra)


def _torchrun(tmp_path: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    return subprocess.Popen([*TORCHRUN, *args, str(script)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == 0, out
    return out


def _one_run(root: Path) -> steadyrun.RunData:
    runs = steadyrun.list_runs(root)
    assert len(runs) == 1, f"expected one run, found {[r.name for r in runs]}"
    return steadyrun.open_run(runs[0])


def test_torchrun_rank0_owns_the_run_and_reduces(tmp_path: Path) -> None:
    root = tmp_path / "sr"
    out = _finish(_torchrun(tmp_path, ["--nproc_per_node=2", f"--master_port={free_port()}"],
                            _env(root)))
    assert "RUN 1 InertRun" in out and "RUN 0 Run" in out
    data = _one_run(root)
    assert len(data.segments) == 1  # rank 1 wrote nothing
    losses = [v for _, v in data.column("train/loss")]
    # mean over ranks of (rank * 100 + i) = 50 + i: reduced, once per step, no duplicates
    assert losses == [50.0 + i for i in range(20)]
    assert [v for _, v in data.column("worker/value")] == [0.0] * 20
    assert data.summary == {"final": 1.0}
    assert data.state == "finished"


def test_torchrun_all_ranks_share_one_run(tmp_path: Path) -> None:
    root = tmp_path / "sr"
    out = _finish(_torchrun(tmp_path, ["--nproc_per_node=2", f"--master_port={free_port()}"],
                            _env(root, ALL_RANKS="1")))
    ids = {line.split()[3] for line in out.splitlines() if line.startswith("RUN ")}
    assert len(ids) == 1, out
    data = _one_run(root)
    roles = sorted(s["role"] for s in data.segments.values())
    assert roles == ["owner", "rank1"]
    assert [v for _, v in data.column("rank1/worker/value")] == [1.0] * 20
    assert [v for _, v in data.column("worker/value")] == [0.0] * 20
    # the reduced metric is recorded by rank 0 only, never duplicated under rank1/
    assert len(data.column("train/loss")) == 20
    assert data.column("rank1/train/loss") == []
    # each rank's console is its own writer's (issue 17), and still reaches torchrun
    consoles = {p.name.split("-")[0]: p.read_text() for p in (data.dir / "console").glob("*")}
    assert sorted(consoles) == ["owner", "rank1"]
    assert "hello from rank 0" in consoles["owner"]
    assert "hello from rank 1" not in consoles["owner"]
    assert "hello from rank 1" in consoles["rank1"]
    assert "hello from rank 0" not in consoles["rank1"]
    assert "hello from rank 0" in out and "hello from rank 1" in out


def test_torchrun_two_nodes_on_loopback(tmp_path: Path) -> None:
    root = tmp_path / "sr"
    port = free_port()
    common = ["--nnodes=2", "--nproc_per_node=1", "--master_addr=127.0.0.1",
              f"--master_port={port}"]
    nodes = [_torchrun(tmp_path, [*common, f"--node_rank={n}"], _env(root, ALL_RANKS="1"))
             for n in (0, 1)]
    outs = [_finish(p) for p in nodes]
    assert "RUN 0 Run" in outs[0] and "RUN 1 Run" in outs[1]
    data = _one_run(root)
    assert sorted(s["role"] for s in data.segments.values()) == ["owner", "rank1"]
    assert [v for _, v in data.column("train/loss")] == [50.0 + i for i in range(20)]


@pytest.mark.parametrize("var", ["SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK", "RANK"])
def test_launcher_rank_variables_make_nonzero_ranks_inert(tmp_path: Path, var: str) -> None:
    root = tmp_path / "sr"
    code = ("import steadyrun; run = steadyrun.init(mode='local'); "
            "run.log({'a': 1.0}); run.finish(); print(type(run).__name__)")
    for rank, expected in (("1", "InertRun"), ("0", "Run")):
        out = subprocess.run([sys.executable, "-c", code], env=_env(root, **{var: rank}),
                             capture_output=True, text=True, timeout=60, check=True).stdout
        assert out.strip() == expected
    data = _one_run(root)
    assert [v for _, v in data.column("a")] == [1.0]
