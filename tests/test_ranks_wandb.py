"""`all_ranks=True` on two loopback "nodes", shipped to W&B offline files (issue 18).

tests/test_ranks.py checks ranks in mode local; here the same launchers ship to W&B and
the assertions read W&B's own transaction log. One launch (it is the slow part: every
process imports torch) serves every test of the module: two torchrun launches with
--nnodes=2, two processes each, gloo on CPU, all writing into one root (a shared
filesystem, as on a cluster). DESIGN.md promises: one W&B run for the pipeline, under
rank 0's run id; rank 0's keys as logged, every other rank's under `rank{N}/`, each
namespace on its own step axis; a reduced metric recorded once, by rank 0.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from wandb_helpers import (
    assert_once,
    assert_steps_strictly_increase,
    column,
    free_port,
    sidecar_log,
    sink_status,
    wandb_env,
    wandb_log,
)

from steadyrun.ship.wandb import txlog as wandb_txlog

pytest.importorskip("torch")
# One worker for the module: its launch is a module fixture, and under `--dist loadgroup`
# tests of one module on several workers would each launch it again (about 20 s each).
pytestmark = pytest.mark.xdist_group("ranks-wandb")

STEPS = 10
NODES = 2
PER_NODE = 2
WORLD = NODES * PER_NODE

SCRIPT = f"""
import os
import torch.distributed as dist
import steadyrun

dist.init_process_group("gloo")
rank = dist.get_rank()
run = steadyrun.init(project="ddp", mode="offline", all_ranks=True)
for i in range({STEPS}):
    run.log({{"train/loss": float(rank * 100 + i)}}, reduce="mean")
    run.log({{"worker/value": rank * 1000.0 + i}})
# Direct tables, histograms and metric rules: an extra rank's go under its prefix too.
run.define_metric("worker/value", goal="maximize")
run.log_table("eval/t", columns=["rank"], rows=[[rank]])
run.log_histogram("worker/h", [float(rank)] * 4)
run.summary.update({{"final": float(rank)}})
run.finish()
# One write(2) of a whole line: the ranks of a node share torchrun's stdout pipe.
os.write(1, f"RUN {{rank}} {{type(run).__name__}} {{run.id}}\\n".encode())
dist.destroy_process_group()
"""


@dataclass
class Launch:
    base: Path
    outputs: list[str]
    run_id: str

    @property
    def rdir(self) -> Path:
        return self.base / "sr" / "runs" / self.run_id

    @functools.cached_property
    def log(self) -> wandb_txlog.TxLog:
        """W&B's log of the run, read once its writer is done, for every test."""
        return wandb_log(self.rdir)


@pytest.fixture(scope="module")
def launch(tmp_path_factory: pytest.TempPathFactory) -> Launch:
    base = tmp_path_factory.mktemp("ddp")
    script = base / "train.py"
    script.write_text(SCRIPT)
    # wandb_env: its own root and W&B folders under base, no key, no launcher variables.
    env = wandb_env(base, OMP_NUM_THREADS="1")
    common = [f"--nnodes={NODES}", f"--nproc_per_node={PER_NODE}",
              "--master_addr=127.0.0.1", f"--master_port={free_port()}"]
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", *common,
                               f"--node_rank={n}", str(script)], env=env, cwd=base,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
             for n in range(NODES)]
    outputs = []
    for proc in nodes:
        try:
            out, _ = proc.communicate(timeout=240)
        except subprocess.TimeoutExpired:
            # A hung collective: end each launch's whole group, its workers too, or they
            # outlive the test (killing torchrun alone leaves them running).
            for p in nodes:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
            raise
        outputs.append(out)
        assert proc.returncode == 0, "\n".join(outputs)
    ids = {line.split()[3] for out in outputs for line in out.splitlines()
           if line.startswith("RUN ")}
    assert len(ids) == 1, outputs
    return Launch(base, outputs, ids.pop())


def test_every_rank_writes_into_one_run_and_one_wandb_run(launch: Launch) -> None:
    # Each node's ranks: node 0 holds 0 and 1, node 1 holds 2 and 3; all got a real Run.
    for node, out in enumerate(launch.outputs):
        for rank in range(node * PER_NODE, (node + 1) * PER_NODE):
            assert f"RUN {rank} Run {launch.run_id}" in out, out
        assert "Traceback" not in out, out
    assert [p.name for p in (launch.base / "sr" / "runs").iterdir()] == [launch.run_id]
    # One W&B run for the pipeline: one transaction log anywhere under the test's folder
    # (no rank opened a W&B run of its own), of rank 0's run id.
    logs = [p for p in launch.base.rglob("run-*.wandb") if not p.parent.is_symlink()]
    assert len(logs) == 1, logs
    assert wandb_txlog.run_id_of(logs[0]) == launch.run_id
    assert sink_status(launch.rdir)["run_dirs"] == [str(logs[0].parent)]


def test_every_ranks_rows_arrive_once_under_its_prefix(launch: Launch) -> None:
    log = launch.log
    assert_once(log, "worker/value", [float(i) for i in range(STEPS)])  # rank 0: as logged
    for rank in range(1, WORLD):
        assert_once(log, f"rank{rank}/worker/value", [rank * 1000.0 + i for i in range(STEPS)])
        # Exact keys on their own namespace's axis, the axis hidden (DESIGN section 3.4).
        metric = log.metrics[f"rank{rank}/worker/value"]
        assert metric["step_metric"] == f"rank{rank}/worker/step" and not metric["glob"]
        assert log.metrics[f"rank{rank}/worker/step"]["hidden"]
        # The reduced metric is rank 0's alone: never a rank's copy of it.
        assert column(log, f"rank{rank}/train/loss") == []
    # mean over the four ranks of (rank * 100 + i) = 150 + i, once per step
    assert_once(log, "train/loss", [150.0 + i for i in range(STEPS)])
    keys = {k for row in log.history for k in row if not k.startswith("_")}
    own = {"worker/value", "worker/step", "eval/t", "eval/step", "worker/h"}
    expected = {"train/loss", "train/step"} | own | {f"rank{r}/{k}" for r in range(1, WORLD)
                                                     for k in own}
    assert keys == expected
    # One row per committed record, no more: the rows, then each rank's table and
    # histogram.
    assert len(log.history) == STEPS * (1 + WORLD) + 2 * WORLD
    # Each rank's table is its own, once; its metric rule applies to its own key: W&B's
    # summary of the key is its best, not its last value.
    for rank in range(WORLD):
        pre = f"rank{rank}/" if rank else ""
        (table,) = column(log, f"{pre}eval/t")
        assert table["_type"] == "table-file", table
        assert log.summary[f"{pre}worker/value"] == {"max": rank * 1000.0 + STEPS - 1}, rank


def test_steps_increase_and_ranks_share_the_x_of_each_iteration(launch: Launch) -> None:
    log = launch.log
    assert_steps_strictly_increase(log)
    # Every rank made the same calls, so iteration i sits at the same x on every rank's
    # axis (DESIGN section 3.2: every committed call without step= advances the step).
    def x_of(pre: str) -> list[int]:  # the x of the value rows (not of the histogram)
        return [row[f"{pre}worker/step"] for row in log.history if f"{pre}worker/value" in row]

    owner_x = x_of("")
    assert owner_x == sorted(set(owner_x)) and len(owner_x) == STEPS
    for rank in range(1, WORLD):
        assert x_of(f"rank{rank}/") == owner_x, rank


def test_each_ranks_summary_is_its_own_and_the_run_ends_clean(launch: Launch) -> None:
    log = launch.log
    # Every rank set summary "final": rank 0's stays "final", the others' go under their
    # prefix; none overwrites another's.
    assert log.summary["final"] == 0.0
    for rank in range(1, WORLD):
        assert log.summary[f"rank{rank}/final"] == float(rank)
    assert log.exit_code == 0 and log.torn == 0
    status = sink_status(launch.rdir)
    assert status["state"] == "finished" and status["exit_code"] == 0, sidecar_log(launch.rdir)
    assert "Traceback" not in sidecar_log(launch.rdir)
    manifest = (launch.rdir / "run.json").read_text()
    assert '"state":"finished"' in manifest.replace(" ", ""), manifest
    assert os.environ.get("RANK") is None  # the launch never leaked into the test process
