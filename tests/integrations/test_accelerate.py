"""The Accelerate adapter (steadyrun.integrations.accelerate), in real Accelerate loops.

Each script trains a tiny torch model on CPU with `Accelerator(cpu=True)` in a fresh
interpreter (under torchrun for the two-process case); its sidecar ships to real W&B
offline files. The tests read back both `steadyrun.open_run` and W&B's own transaction
log, only after the script has exited (tests/wandb_helpers.py).

The `step=epoch` trap (kohya-ss/musubi-tuner#294) is reproduced as musubi-tuner writes it:
`accelerator.log({"loss/current", "loss/average", "lr/unet"}, step=global_step)` after
each step, `accelerator.log({"loss/epoch": ...}, step=epoch + 1)` after each epoch. The
same loop logs to Accelerate's own W&B tracker too, so what it drops is measured here,
not quoted.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("accelerate")
pytest.importorskip("torch")

from wandb_helpers import (  # noqa: E402
    free_port,
    run_script,
    wandb_env,
    wandb_files,
    wandb_log,
)

import steadyrun  # noqa: E402
from steadyrun.ship.wandb import txlog as wandb_txlog  # noqa: E402

ENV = {"OMP_NUM_THREADS": "1", "STEADYRUN_METADATA": "0"}

# A tiny model, 3 batches per epoch; `LOGGED=` lists every call as [step, values].
LOOP = """
import json, os, sys
import torch
from accelerate import Accelerator

torch.manual_seed(0)
torch.set_num_threads(1)

def loader():
    data = torch.utils.data.TensorDataset(torch.randn(12, 4), torch.randn(12, 1))
    return torch.utils.data.DataLoader(data, batch_size=4)

def sgd(model, lr=0.1):
    # By hand: the first torch.optim optimizer imports torch._dynamo, seconds per process.
    with torch.no_grad():
        for p in model.parameters():
            p -= lr * p.grad
            p.grad = None

def train(acc, epochs, step_row, epoch_row, first_step, wrap_model=True):
    model, data = torch.nn.Linear(4, 1), acc.prepare(loader())
    if wrap_model:  # under torchrun DDP's constructor imports torch._dynamo: 3-4 s a process
        model = acc.prepare(model)
    logged, global_step = [], first_step
    for epoch in range(epochs):
        total = 0.0
        for i, (x, y) in enumerate(data):
            loss = torch.nn.functional.mse_loss(model(x), y)
            acc.backward(loss)
            sgd(model)
            total += loss.item()
            values = step_row(loss.item(), total / (i + 1))
            acc.log(values, step=global_step)
            logged.append([global_step, values])
            global_step += 1
        values, step = epoch_row(epoch, total / (i + 1))
        acc.log(values, step=step)
        logged.append([step, values])
    return logged
"""


def _rows(data: steadyrun.RunData) -> list[list[Any]]:
    """The run's rows as [step of their namespace, values without step metrics]."""
    out = []
    for row in data.rows:
        values = {k: v for k, v in row.items() if k != "_x" and not k.endswith("step")}
        out.append([row["_x"], values])
    return out


def _wandb_values(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if not k.startswith("_") and not k.endswith("step")}


# ---------------------------------------------------------------------- by name: the trap
BY_NAME = LOOP + """
import steadyrun.integrations.accelerate  # registers log_with="steadyrun"

acc = Accelerator(cpu=True, log_with=["steadyrun", "wandb"])
acc.init_trackers("musubi", config={"lr": 0.1, "epochs": 4},
                  init_kwargs={"steadyrun": {"name": "trap", "tags": ["accelerate"]},
                               "wandb": {"dir": sys.argv[1], "mode": "offline"}})
logged = train(
    acc, 4,
    lambda cur, avg: {"loss/current": cur, "loss/average": avg, "lr/unet": 0.1},
    lambda epoch, avg: ({"loss/epoch": avg}, epoch + 1),  # musubi-tuner's step=epoch + 1
    first_step=1)
print("RUN_ID=" + acc.get_tracker("steadyrun", unwrap=True).id)
print("LOGGED=" + json.dumps(logged))
acc.end_training()
"""


def test_by_name_keeps_16_of_16_rows_where_accelerates_wandb_tracker_keeps_12(
        tmp_path: Path) -> None:
    wb = tmp_path / "wandb-tracker"
    wb.mkdir()
    done = run_script(tmp_path, BY_NAME, args=[str(wb)], env=ENV)
    logged = json.loads(done.value("LOGGED"))
    assert len(logged) == 16
    assert [s for s, _ in logged] == [1, 2, 3, 1, 4, 5, 6, 2, 7, 8, 9, 3, 10, 11, 12, 4]
    assert done.run_ids == [done.value("RUN_ID")]  # one run

    # steadyrun's log: every row once, at the step the user gave.
    data = steadyrun.open_run(done.rdir)
    assert _rows(data) == logged
    assert data.column("loss/epoch") == [(e, v["loss/epoch"]) for e, v in logged[3::4]]
    assert [s for s, _ in data.column("loss/current")] == list(range(1, 13))
    assert [s for s, _ in data.column("lr/unet")] == list(range(1, 13))
    # loss/epoch shares the `loss` namespace: its step goes back, kept and recorded.
    regressions = [e for e in data.events if e["type"] == "step_regression"]
    assert [(e["namespace"], e["previous"], e["step"]) for e in regressions] == [
        ("loss", 3, 1), ("loss", 6, 2), ("loss", 9, 3), ("loss", 12, 4)]
    # ... at the user's accelerator.log(...) line, not in Accelerate's tracking.py
    assert {e["site"].rsplit(":", 1)[0] for e in regressions} == {str(tmp_path / "script.py")}
    assert data.config == {"lr": 0.1, "epochs": 4}
    assert data.manifest["project"] == "musubi" and data.manifest["name"] == "trap"
    assert data.manifest["tags"] == ["accelerate"] and data.state == "finished"

    # W&B's own log of the steadyrun run: 16 rows, _step owned by the sink, the step as data.
    # One W&B run although a config was given offline (accelerate#3818 made two).
    (path,) = wandb_files(done.rdir)
    log = wandb_log(done.rdir)
    assert log.run["run_id"] == done.run_id and log.exit_code == 0
    assert [r["_step"] for r in log.history] == list(range(16))
    assert [_wandb_values(r) for r in log.history] == [v for _, v in logged]
    assert [r["loss/step"] for r in log.history] == [s for s, _ in logged]
    assert [r["lr/step"] for r in log.history if "lr/unet" in r] == list(range(1, 13))
    assert [r["loss/epoch"] for r in log.history if "loss/epoch" in r] == [
        v["loss/epoch"] for _, v in logged[3::4]]
    assert {k: (m["step_metric"], m["glob"]) for k, m in log.metrics.items()
            if not m["hidden"]} == {
        "loss/current": ("loss/step", False), "loss/average": ("loss/step", False),
        "lr/unet": ("lr/step", False), "loss/epoch": ("loss/step", False)}
    assert {k for k, m in log.metrics.items() if m["hidden"]} == {"loss/step", "lr/step"}
    assert log.config["lr"] == 0.1 and log.config["epochs"] == 4

    # Accelerate's W&B tracker on the same 16 calls: the 4 epoch rows are dropped.
    (theirs,) = wandb_txlog.find_run_files(wb)
    assert wandb_txlog.wait_complete(theirs, timeout=30, require_exit=True)
    their_log = wandb_txlog.load([theirs])
    assert len(their_log.history) == 12
    assert [r["_step"] for r in their_log.history] == list(range(1, 13))
    assert not any("loss/epoch" in r for r in their_log.history)
    assert done.stderr.count("less than the current step") == 4


# ---------------------------------------------------------------------- an instance
INSTANCE = LOOP + """
from steadyrun.integrations.accelerate import SteadyrunTracker

tracker = SteadyrunTracker(project="inst", name="instance", config={"seed": 0})
acc = Accelerator(cpu=True, log_with=tracker)
acc.init_trackers("not-used")  # an instance keeps the project it was given
logged = train(
    acc, 2,
    lambda cur, avg: {"loss": cur, "grad": {"norm": 1.5}},  # root namespace, nested dict
    lambda epoch, avg: ({"epoch_loss": avg}, epoch),         # root namespace, step=epoch
    first_step=0)
mine = acc.get_tracker("steadyrun")
img = torch.zeros(3, 8, 8)
img[0] = 1.0
mine.log_images({"samples": [img, img * 0.5]}, step=1, dataformats="CHW")
mine.log_table("preds", columns=["x", "y"], data=[[1, 2.5], [2, 3.5]], step=1)
acc.get_tracker("steadyrun", unwrap=True).summary.update({"final/acc": 0.75})
print("LOGGED=" + json.dumps(logged))
acc.end_training()
"""


def test_instance_logs_rows_images_table_in_root_namespace(tmp_path: Path) -> None:
    done = run_script(tmp_path, INSTANCE, env=ENV)
    logged = json.loads(done.value("LOGGED"))
    assert [s for s, _ in logged] == [0, 1, 2, 0, 3, 4, 5, 1]
    flat = [[s, {("grad/norm" if k == "grad" else k): (1.5 if k == "grad" else v)
                 for k, v in values.items()}] for s, values in logged]

    data = steadyrun.open_run(done.rdir)
    assert data.manifest["project"] == "inst" and data.manifest["name"] == "instance"
    assert _rows(data) == flat
    assert [s for s, _ in data.column("epoch_loss")] == [0, 1]
    assert [s for s, _ in data.column("grad/norm")] == list(range(6))
    assert [(e["namespace"], e["previous"], e["step"]) for e in data.events
            if e["type"] == "step_regression"] == [("<root>", 2, 0), ("<root>", 5, 1)]
    assert [(i["key"], i["x"]) for i in data.images] == [("samples", 1), ("samples", 1)]
    for image in data.images:  # CHW tensors written as 8x8 RGB PNGs (IHDR: width, height)
        png = (done.rdir / image["path"]).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and png[16:26] == bytes(
            [0, 0, 0, 8, 0, 0, 0, 8, 8, 2])
    assert [(t["key"], t["columns"], t["rows"], t["x"]) for t in data.tables] == [
        ("preds", ["x", "y"], [[1, 2.5], [2, 3.5]], 1)]
    assert data.summary == {"final/acc": 0.75} and data.config == {"seed": 0}

    log = wandb_log(done.rdir)
    assert log.run["run_id"] == done.run_id and log.exit_code == 0
    rows = [r for r in log.history if "samples" not in r and "preds" not in r]
    assert [_wandb_values(r) for r in rows] == [v for _, v in flat]
    assert [r["step"] for r in rows] == [s for s, _ in flat]
    media = [r for r in log.history if "samples" in r]
    assert len(media) == 2 and all(r["samples"]["_type"] == "image-file" for r in media)
    assert [r["step"] for r in media] == [1, 1]
    (table,) = [r for r in log.history if "preds" in r]
    assert table["preds"]["_type"] == "table-file" and table["step"] == 1
    assert len(log.history) == 11 and [r["_step"] for r in log.history] == list(range(11))
    assert {k: log.metrics[k]["step_metric"] for k in ("loss", "epoch_loss", "grad/norm")} == {
        "loss": "step", "epoch_loss": "step", "grad/norm": "grad/step"}
    assert log.summary["final/acc"] == 0.75


# ---------------------------------------------------------------------- torchrun
DDP = LOOP + """
import steadyrun.integrations.accelerate

acc = Accelerator(cpu=True, log_with="steadyrun")
acc.init_trackers("ddp")
logged = train(acc, 2, lambda cur, avg: {"train/loss": cur},
               lambda epoch, avg: ({"epoch/loss": avg}, epoch), first_step=0,
               wrap_model=False)  # the data is sharded; what is tested is who writes
# Off the main process Accelerate's get_tracker gives a blank GeneralTracker: init_trackers
# ran on the main process alone.
run = acc.get_tracker("steadyrun", unwrap=True)
os.write(1, f"RUN {acc.process_index} {type(run).__name__} {getattr(run, 'id', None)}\\n".encode())
if acc.is_main_process:
    os.write(1, ("LOGGED=" + json.dumps(logged) + "\\n").encode())
acc.end_training()
"""


@pytest.mark.xdist_group("ddp")
def test_torchrun_two_processes_make_one_run_and_one_wandb_run(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(DDP)
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         f"--master_port={free_port()}", str(script)],
        env=wandb_env(tmp_path, **ENV), cwd=tmp_path, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=180)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    ranks = sorted(line.split()[1:3] for line in out.splitlines() if line.startswith("RUN "))
    assert ranks == [["0", "Run"], ["1", "GeneralTracker"]], out
    logged = json.loads(next(line for line in proc.stdout.splitlines()
                             if line.startswith("LOGGED="))[len("LOGGED="):])
    # 2 processes, 3 batches of 4 split between them: each process takes 2 steps per epoch
    assert [s for s, _ in logged] == [0, 1, 0, 2, 3, 1]

    runs = steadyrun.list_runs(tmp_path / "sr")
    assert len(runs) == 1, runs
    data = steadyrun.open_run(runs[0])
    assert data.manifest["project"] == "ddp" and data.state == "finished"
    assert len(data.segments) == 1  # rank 1 wrote nothing
    assert _rows(data) == logged
    assert [s for s, _ in data.column("train/loss")] == [0, 1, 2, 3]
    assert [s for s, _ in data.column("epoch/loss")] == [0, 1]
    assert not [e for e in data.events if e["type"] == "step_regression"]

    rdir = runs[0]
    assert len(wandb_files(rdir)) == 1  # one W&B run, initialised once
    log = wandb_log(rdir)
    assert log.run["run_id"] == rdir.name and log.exit_code == 0
    assert [_wandb_values(r) for r in log.history] == [v for _, v in logged]
    assert [r.get("train/step", r.get("epoch/step")) for r in log.history] == [0, 1, 0, 2, 3, 1]
    assert [r["_step"] for r in log.history] == list(range(6))


# ---------------------------------------------------------------------- in process
def test_registered_by_name_and_refusals(monkeypatch: pytest.MonkeyPatch) -> None:
    import warnings

    import accelerate.tracking as tracking

    from steadyrun.integrations import accelerate as adapter

    assert tracking.LOGGER_TYPE_TO_CLASS["steadyrun"] is adapter.SteadyrunTracker
    assert tracking.filter_trackers(["steadyrun"]) == ["steadyrun"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second registration would warn "overwritten"
        assert adapter.register() is adapter.SteadyrunTracker

    # Accelerate without register_tracker_class (before 1.15): only instances work.
    monkeypatch.delitem(tracking.LOGGER_TYPE_TO_CLASS, "steadyrun")
    monkeypatch.delattr(tracking, "register_tracker_class")
    with pytest.raises(RuntimeError, match=r"instance.*SteadyrunTracker\(project="):
        adapter.register()

    # all_ranks would hang the main process in the run id's broadcast.
    with pytest.raises(ValueError, match="all_ranks"):
        adapter.SteadyrunTracker(project="p", all_ranks=True)
    tracker = adapter.SteadyrunTracker("p", name="n", mode="disabled")
    assert (tracker.name, tracker.requires_logging_directory, tracker.main_process_only) == (
        "steadyrun", False, True)
    assert (tracker.project, tracker.init_kwargs) == ("p", {"name": "n", "mode": "disabled"})
    assert adapter._flat({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {
        "a/b": 1, "a/c/d": 2, "e": 3}
