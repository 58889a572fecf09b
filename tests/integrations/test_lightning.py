"""The Lightning adapter (steadyrun.integrations.lightning), in real Trainer and Fabric runs.

Each script trains a tiny LightningModule on random tensors on CPU in a fresh interpreter
(the DDP one under Lightning's own launcher); its sidecar ships to real W&B offline
files. The tests read back both `steadyrun.open_run` and W&B's own transaction log, only
after the script has exited (tests/wandb_helpers.py): rows exactly once, an exact-key
step metric per key with the step written as data, one run id.

The module's monitored `val_metric` is fixed per epoch (0.5, then 0.8), so which
checkpoint is the best one is known: the first.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("lightning")
pytest.importorskip("torch")

from wandb_helpers import (  # noqa: E402
    assert_steps_strictly_increase,
    column,
    run_script,
    wandb_files,
    wandb_log,
)

import steadyrun  # noqa: E402
from steadyrun.ship.wandb.txlog import iter_records  # noqa: E402

MODULE = '''
import os
import torch
from torch.utils.data import DataLoader, TensorDataset
import lightning.pytorch as pl
from lightning.pytorch.callbacks import ModelCheckpoint
from steadyrun.integrations.lightning import SteadyrunLogger

torch.set_num_threads(1)


class Tiny(pl.LightningModule):
    def __init__(self, lr=0.1, dims=(4, 1), user_step=False):
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Linear(*dims)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss, on_step=True, on_epoch=True)
        if self.hparams.user_step:
            self.log("step", 100.0 + self.global_step)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y),
                 on_step=True, on_epoch=True, sync_dist=True)
        self.log("val_metric", 0.5 if self.current_epoch == 0 else 0.8, on_epoch=True, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loaders(n_train=8, n_val=4):
    g = torch.Generator().manual_seed(0)
    train = TensorDataset(torch.randn(n_train, 4, generator=g), torch.randn(n_train, 1, generator=g))
    val = TensorDataset(torch.randn(n_val, 4, generator=g), torch.randn(n_val, 1, generator=g))
    return DataLoader(train, batch_size=2), DataLoader(val, batch_size=2)


class Report(pl.Callback):
    """Says, on every rank, what the logger's experiment is there (one write(2) a line:
    the ranks share one stdout)."""

    def on_train_end(self, trainer, pl_module):
        exp = type(trainer.logger.experiment).__name__
        line = f"RANK{trainer.global_rank}={exp} {'RANK' in os.environ} {os.environ.get('LOCAL_RANK')}"
        os.write(1, (line + "\\n").encode())


def trainer(logger, epochs, **kwargs):
    ckpt = ModelCheckpoint(dirpath="ckpt", monitor="val_metric", mode="min", save_top_k=-1,
                           save_last=kwargs.pop("save_last", False))
    return pl.Trainer(max_epochs=epochs, logger=logger, callbacks=[ckpt, Report()],
                      accelerator="cpu",
                      log_every_n_steps=1, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0, **kwargs), ckpt
'''


def _script(tmp_path: Path, code: str, env: dict[str, str] | None = None, **kwargs: Any) -> Any:
    (tmp_path / "tiny.py").write_text(MODULE)
    return run_script(tmp_path, code, timeout=180, env={"OMP_NUM_THREADS": "1", **(env or {})},
                      **kwargs)


def _steps(data: Any, key: str) -> list[Any]:
    """The namespace steps of the rows holding `key` (open_run's column)."""
    return [s for s, _ in data.column(key)]


def _same_rows_in_wandb(data: Any, log: Any) -> None:
    """Every local row is one W&B row (the sink owns _step), each key on its exact-key
    step metric, with that step written as data in every row holding the key."""
    assert len(log.history) == len(data.rows)
    assert_steps_strictly_increase(log)
    keys = {k for row in data.rows for k in row if k != "_x"}
    for key in keys:
        assert column(log, key) == [v for _, v in data.column(key)], key
        if key == "step" or key.endswith("/step"):
            continue
        sm = data.metrics.get(key, {}).get("step_metric") or log.metrics[key]["step_metric"]
        assert log.metrics[key]["step_metric"] == sm and not log.metrics[key]["glob"], key
        assert all(sm in row for row in log.history if key in row), key
    assert not any(m["glob"] for m in log.metrics.values())


def _wandb_artifacts(rdir: Path) -> list[tuple[str, list[str]]]:
    return [(rec.artifact.name, sorted(rec.artifact.aliases))
            for path in wandb_files(rdir) for rec in iter_records(path)
            if rec.WhichOneof("record_type") == "artifact"]


def test_fit_with_accumulation_validation_steps_and_checkpoints(tmp_path: Path) -> None:
    """Two epochs, accumulate_grad_batches=2, validation logged on_step and on_epoch,
    ModelCheckpoint; then `trainer.validate` with the same logger, after fit finalized it."""
    done = _script(tmp_path, """
        import sys
        from tiny import Tiny, SteadyrunLogger, loaders, trainer
        logger = SteadyrunLogger(project="lt", id="fit1", log_model=True)
        t, ckpt = trainer(logger, 2, accumulate_grad_batches=2)
        train, val = loaders()
        model = Tiny()
        t.fit(model, train, val)
        t.validate(model, val)
        print(f"VERSION={logger.version}")
        print(f"BEST={ckpt.best_model_path}")
        print(f"WANDB_IMPORTED={'wandb' in sys.modules}")
    """)
    assert done.value("VERSION") == done.run_id == "fit1"
    # The training process never imports wandb, so offline it never waits on W&B (#4217).
    assert done.value("WANDB_IMPORTED") == "False"
    data = steadyrun.open_run(done.rdir)
    assert data.state == "finished"
    assert [s["role"] for s in data.segments.values()] == ["owner", "owner"]  # fit, validate
    # 8 samples, batch 2, accumulation 2: two optimizer steps per epoch, one row each
    # (#5469: none dropped), at Lightning's step.
    assert _steps(data, "train_loss_step") == [0, 1, 2, 3]
    # validate() after fit: Lightning's current_epoch is then 2.
    assert [v for _, v in data.column("trainer/epoch")] == [0, 0, 0, 0, 1, 1, 1, 1, 2]
    assert _steps(data, "train_loss_epoch") == [1, 3]
    assert _steps(data, "val_loss_epoch") == [1, 3, 4]  # the last: trainer.validate
    assert [v for _, v in data.column("val_metric")] == [0.5, pytest.approx(0.8),
                                                         pytest.approx(0.8)]
    # Per-batch validation rows in their own namespace, on a step that never goes back
    # (#14892), Lightning's batch counter and global step kept as data.
    assert _steps(data, "val_batch/val_loss_step") == [0, 1, 2, 3, 4, 5]
    assert [v for _, v in data.column("val_batch/global_step")] == [2, 2, 4, 4, 4, 4]
    assert "val_loss_step" not in {k for row in data.rows for k in row}
    # The train axis never goes back: not even around validation.
    root = [row["step"] for row in data.rows if "step" in row]
    assert root == sorted(root) and len(root) == 9
    assert not [e for e in data.events if e.get("type") == "step_regression"]
    # hparams once, though Lightning gave them at fit and again at validate.
    configs = [r["v"] for r in data.records if r["k"] == "config" and "lr" in r["v"]]
    assert configs == [{"lr": 0.1, "dims": [4, 1], "user_step": False}]

    # Checkpoints: both recorded, the best (epoch 0, val_metric 0.5) with the alias.
    arts = data.artifacts
    assert [Path(a["path"]).name for a in arts] == ["epoch=0-step=2.ckpt", "epoch=1-step=4.ckpt"]
    assert [a["aliases"] for a in arts] == [["latest", "best"], ["latest"]]
    assert arts[0]["path"] == done.value("BEST")
    assert arts[0]["metadata"]["metric"] == 0.5 and arts[1]["metadata"]["score"] == \
        pytest.approx(0.8)

    log = wandb_log(done.rdir)
    assert len(log.history) == 4 + 2 + 3 + 6 == 15
    _same_rows_in_wandb(data, log)
    assert log.metrics["train_loss_step"]["step_metric"] == "step"
    assert log.metrics["trainer/epoch"]["step_metric"] == "trainer/step"
    assert log.metrics["val_batch/val_loss_step"]["step_metric"] == "val_batch/step"
    assert column(log, "val_batch/step") == [0, 1, 2, 3, 4, 5]
    assert {p.name for p in log.paths} == {"run-fit1.wandb"}  # one W&B run id, resumed
    assert log.config["lr"] == 0.1 and log.config["dims"] == [4, 1]
    assert log.exit_code == 0
    assert _wandb_artifacts(done.rdir) == [("checkpoint-fit1", ["best", "latest"]),
                                           ("checkpoint-fit1", ["latest"])]


def test_resume_from_a_checkpoint_continues_the_run_and_its_steps(tmp_path: Path) -> None:
    """A job that fits one epoch, then a new job with the same id that resumes from its
    last.ckpt: one run, steps continue (#13163), W&B drops nothing (wandb#1626)."""
    first = _script(tmp_path, """
        from tiny import Tiny, SteadyrunLogger, loaders, trainer
        logger = SteadyrunLogger(project="lt", id="res1")
        t, _ = trainer(logger, 1, save_last=True)
        t.fit(Tiny(), *loaders())
    """, name="first")
    second = _script(tmp_path, """
        from tiny import Tiny, SteadyrunLogger, loaders, trainer
        logger = SteadyrunLogger(project="lt", id="res1")
        t, _ = trainer(logger, 2, save_last=True)
        t.fit(Tiny(), *loaders(), ckpt_path="ckpt/last.ckpt")
        print(f"VERSION={logger.version}")
    """, name="second")
    assert second.value("VERSION") == second.run_id == first.run_id == "res1"
    data = steadyrun.open_run(second.rdir)
    assert len(data.segments) == 2 and data.state == "finished"
    assert _steps(data, "train_loss_step") == [0, 1, 2, 3, 4, 5, 6, 7]
    assert [v for _, v in data.column("trainer/epoch")] == [0] * 6 + [1] * 6
    assert _steps(data, "val_batch/val_loss_step") == [0, 1, 2, 3]
    assert not [e for e in data.events if e.get("type") == "step_regression"]
    # The second job's checkpoint (val_metric 0.8) is not the best: Lightning's best
    # (restored from the checkpoint) says so; the first job's files are not logged again.
    names = [(Path(a["path"]).name, a["aliases"]) for a in data.artifacts]
    assert names == [("epoch=0-step=4.ckpt", ["latest", "best"]), ("last.ckpt", ["latest"]),
                     ("epoch=1-step=8.ckpt", ["latest"]), ("last.ckpt", ["latest"])]

    log = wandb_log(second.rdir)
    assert len(log.paths) == 2 and {p.name for p in log.paths} == {"run-res1.wandb"}
    assert len(log.history) == 2 * (4 + 2 + 2) == 16
    _same_rows_in_wandb(data, log)
    assert log.exit_code == 0


@pytest.mark.xdist_group("ddp")
def test_ddp_two_cpu_processes_make_exactly_one_run(tmp_path: Path) -> None:
    """strategy="ddp", 2 CPU processes under Lightning's own launcher (LOCAL_RANK, no
    RANK): rank 1 opens nothing and writes nothing (#11380)."""
    done = _script(tmp_path, """
        from tiny import Tiny, SteadyrunLogger, loaders, trainer
        logger = SteadyrunLogger(project="lt", id="ddp1")
        t, _ = trainer(logger, 2, strategy="ddp", devices=2)
        t.fit(Tiny(), *loaders())
    """)
    assert done.value("RANK0").startswith("Run ")
    assert done.value("RANK1") == "InertRun False 1"  # Lightning's launcher set no RANK
    assert done.run_ids == ["ddp1"]
    data = steadyrun.open_run(done.rdir)
    assert [s["role"] for s in data.segments.values()] == ["owner"]
    # Each rank sees 4 of the 8 samples: two steps per epoch; one validation batch.
    assert _steps(data, "train_loss_step") == [0, 1, 2, 3]
    assert _steps(data, "val_batch/val_loss_step") == [0, 1]
    assert _steps(data, "val_loss_epoch") == [1, 3]
    log = wandb_log(done.rdir)
    assert len(log.paths) == 1
    assert len(log.history) == 4 + 2 + 2 + 2 == 10
    _same_rows_in_wandb(data, log)


def test_user_step_metric_fabric_and_spawn_pickling(tmp_path: Path) -> None:
    """A metric named `step` survives the Trainer (#17720); Fabric's calls are logged as
    given; a pickled logger (ddp_spawn) carries the id, not the open run, and its copy
    joins the same run."""
    done = _script(tmp_path, """
        import pickle
        from lightning.fabric import Fabric
        from tiny import Tiny, SteadyrunLogger, loaders, trainer
        logger = SteadyrunLogger(id="user1", mode="local")
        t, _ = trainer(logger, 1)
        t.fit(Tiny(user_step=True), *loaders())

        fab = SteadyrunLogger(id="fab1", mode="local")
        fabric = Fabric(accelerator="cpu", devices=1, loggers=[fab])
        fabric.log("loss", 0.25)
        fabric.log_dict({"loss": 0.5, "epoch": 2}, step=3)
        fabric.log("acc", 0.9, step=4)
        run = fab.experiment
        blob = pickle.dumps(fab)  # the run is open: only its id travels, never the Run
        copy = pickle.loads(blob)
        print(f"COPY={copy.version} {b'steadyrun.log.run' in blob}")
        copy.log_metrics({"worker/loss": 1.5}, step=9)
        copy.finalize("success")
        fab.finalize("failed")
    """, env={"STEADYRUN_METADATA": "0"})
    assert sorted(done.run_ids) == ["fab1", "user1"]
    user = steadyrun.open_run(done.root / "runs" / "user1")
    # Lightning took `step` out and used it as the step; the row keeps it as a metric.
    assert [r["step"] for r in user.rows if "train_loss_step" in r] == [100, 101, 102, 103]
    assert _steps(user, "train_loss_step") == [100, 101, 102, 103]
    # The epoch ends stay at Lightning's own step (3), on the same root axis: the drop from
    # 103 is recorded (one step_regression event), never dropped.
    assert _steps(user, "train_loss_epoch") == [3] and _steps(user, "val_loss_epoch") == [3]
    assert len(user.rows) == 4 + 1 + 1 + 2  # steps, two epoch ends, two validation batches
    assert [e["type"] for e in user.events if e.get("type") == "step_regression"] == [
        "step_regression"]

    assert done.value("COPY") == "fab1 False"
    fab = steadyrun.open_run(done.root / "runs" / "fab1")
    rows = [{k: v for k, v in r.items() if k != "_x"} for r in fab.rows]
    # As given: no trainer/epoch, no namespace of their own (Fabric adds no `epoch`).
    assert rows == [{"loss": 0.25, "step": 0}, {"loss": 0.5, "epoch": 2, "step": 3},
                    {"acc": 0.9, "step": 4}, {"worker/loss": 1.5, "worker/step": 9}]
    assert not [e for e in fab.events if e.get("type") == "step_regression"]
    assert sorted(s["role"] for s in fab.segments.values()) == ["child", "owner"]
    assert fab.state == "failed"
