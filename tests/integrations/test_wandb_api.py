"""`import steadyrun as wandb`: wandb's module API over steadyrun (integrations/wandb_api.py,
log/media_values.py, log/wandb_args.py, the callable log package).

The realistic check is a nanoGPT-style training script run unchanged but for its import
line, in its own interpreter, with W&B's own transaction log read back; the others run
in-process on local runs and read them back with `open_run`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from wandb_helpers import assert_once, run_script, wandb_log

import steadyrun
import steadyrun as wandb
from steadyrun import SteadyrunWarning


@pytest.fixture
def local(sr_root, monkeypatch):
    """wandb.init() makes local runs here; every run is finished at teardown."""
    monkeypatch.setenv("STEADYRUN_MODE", "local")
    yield sr_root
    wandb.finish()


def test_run_config_and_summary_follow_the_current_run(local):
    assert wandb.run is None
    assert dict(wandb.config) == {}
    with pytest.raises(RuntimeError, match="after steadyrun.init"):
        wandb.config.lr = 0.1
    with pytest.raises(RuntimeError, match="call steadyrun.init"):
        wandb.log({"a": 1})

    run = wandb.init(project="p", name="n", config={"lr": 0.1, "layers": 2},
                     config_exclude_keys=["layers"], settings=wandb.Settings(silent=True),
                     save_code=True, allow_val_change=True, reinit="finish_previous")
    assert wandb.run is run and run.name == "n"
    assert wandb.config.lr == 0.1 and wandb.config["lr"] == 0.1
    wandb.config.batch_size = 32
    wandb.config.update({"dropout": 0.0})
    wandb.summary["best/acc"] = 0.9
    wandb.run.summary.update({"final": 1})
    wandb.finish()
    assert wandb.run is None

    data = steadyrun.open_run(run.id)
    assert data.config == {"lr": 0.1, "batch_size": 32, "dropout": 0.0}
    assert data.summary == {"best/acc": 0.9, "final": 1}
    assert data.state == "finished"


def test_log_follows_wandbs_steps_and_keeps_what_wandb_drops(local):
    run = wandb.init()
    wandb.log({"train/loss": 1.0})                   # x 0
    wandb.log({"train/loss": 0.9})                   # x 1
    wandb.log({"val/loss": 2.0}, step=10)            # x 10: the step moves to 10
    wandb.log({"train/loss": 0.8})                   # x 10, joins it as in wandb
    wandb.log({"train/loss": 0.7})                   # x 11
    wandb.log({"a": 1}, commit=False)                # pending at 12
    wandb.log({"b": 2})                              # 12, with a
    with pytest.warns(SteadyrunWarning, match="went back"):
        wandb.log({"val/loss": 1.5}, step=5)         # wandb drops it; kept, and said
    wandb.log({"train/loss": 0.6})                   # x 13: a lower step never moves it
    wandb.finish()

    data = steadyrun.open_run(run.id)
    assert data.column("train/loss") == [(0, 1.0), (1, 0.9), (10, 0.8), (11, 0.7), (13, 0.6)]
    assert data.column("val/loss") == [(10, 2.0), (5, 1.5)]
    assert [r for r in data.rows if "a" in r] == [{"a": 1, "b": 2, "step": 12, "_x": 12}]
    assert [e["type"] for e in data.events if e["type"] == "step_regression"] == \
        ["step_regression"]


def test_media_nested_dicts_and_histograms_in_one_log_call(local):
    run = wandb.init()
    table = wandb.Table(columns=["id", "pred"])
    table.add_data(1, "cat")
    table.add_data(2, "dog")
    wandb.log({"eval/acc": 0.5, "eval/samples": table,
               "eval/pred": wandb.Image(np.zeros((4, 4, 3), dtype=np.uint8), caption="c"),
               "eval/w": wandb.Histogram([1.0, 2.0, 2.0, 3.0], num_bins=3),
               "eval/binned": wandb.Histogram(np_histogram=([1, 2], [0.0, 0.5, 1.0])),
               "opt": {"lr": 0.1, "mom": {"beta": 0.9}}}, step=7)
    wandb.finish()

    data = steadyrun.open_run(run.id)
    assert data.column("eval/acc") == [(7, 0.5)]
    assert data.column("opt.lr") == [(7, 0.1)] and data.column("opt.mom.beta") == [(7, 0.9)]
    (tab,) = data.tables
    assert (tab["key"], tab["columns"], tab["rows"], tab["x"]) == \
        ("eval/samples", ["id", "pred"], [[1, "cat"], [2, "dog"]], 7)
    (img,) = data.images
    assert (img["key"], img["caption"], img["x"]) == ("eval/pred", "c", 7)
    assert (run.dir / img["path"]).stat().st_size > 0
    hists = {k: (h["counts"], rec["x"]) for rec in data.histograms for k, h in rec["v"].items()}
    assert hists == {"eval/w": ([1, 2, 1], 7), "eval/binned": ([1.0, 2.0], 7)}


def test_save_alert_define_metric_artifact_and_watch(local, tmp_path):
    torch = pytest.importorskip("torch")
    (tmp_path / "out").mkdir()
    for name in ("a.txt", "b.txt", "c.json"):
        (tmp_path / "out" / name).write_text(name)
    run = wandb.init()
    assert wandb.save(str(tmp_path / "out" / "*.txt")) == ["a.txt", "b.txt"]
    wandb.alert("diverged", "nan at step 3", level=wandb.AlertLevel.WARN)
    wandb.define_metric("val/acc", summary="max")
    art = wandb.Artifact("bundle", type="dataset", metadata={"rows": 3})
    art.add_file(str(tmp_path / "out" / "a.txt"))
    art.add_file(str(tmp_path / "out" / "c.json"), name="meta/c.json")
    wandb.log_artifact(art, aliases=["v1"])
    model = torch.nn.Linear(3, 2)
    wandb.watch(model, log="parameters", log_freq=2)
    for i in range(4):
        wandb.log({"val/acc": i / 4})
    wandb.finish()

    data = steadyrun.open_run(run.id)
    assert sorted(f["name"] for f in data.files) == ["a.txt", "b.txt"]
    assert [(a["title"], a["level"]) for a in data.alerts] == [("diverged", "WARN")]
    assert list(data.metrics) == ["val/acc"]
    (rec,) = data.artifacts
    assert (rec["name"], rec["type"], rec["aliases"], sorted(rec["files"])) == \
        ("bundle", "dataset", ["v1"], ["a.txt", "meta/c.json"])
    assert rec["metadata"] == {"rows": 3}
    assert rec["path"] == str(run.dir / "artifacts" / "staged" / "bundle-0")  # hard links
    # parameters every 2nd wandb.log call, at that row's x (1 and 3)
    assert [(h["x"], sorted(h["v"])) for h in data.histograms] == \
        [(x, ["parameters/bias", "parameters/weight"]) for x in (1, 3)]


def test_what_steadyrun_lacks_says_what_to_use_instead(local):
    for call in (lambda: wandb.Api(), lambda: wandb.sweep({}), lambda: wandb.plot.line(1),
                 lambda: wandb.Video("x.mp4"), lambda: wandb.use_artifact("a:latest")):
        with pytest.raises(NotImplementedError, match="steadyrun does not implement wandb"):
            call()
    with pytest.raises(NotImplementedError, match="sync_tensorboard"):
        wandb.init(sync_tensorboard=True)
    with pytest.raises(NotImplementedError, match="fork"):
        wandb.init(fork_from="abc?_step=10")
    with pytest.raises(NotImplementedError, match="child_env"):
        wandb.init(mode="shared")
    with pytest.raises(TypeError, match="unknown arguments: projct"):
        wandb.init(projct="typo")
    with pytest.raises(AttributeError):
        wandb.no_such_thing  # noqa: B018
    assert wandb.run is None


def test_reinit_and_a_second_init(local):
    first = wandb.init()
    assert wandb.init(reinit="return_previous") is first
    second = wandb.init(reinit="finish_previous")
    assert first.finished and second is not first and wandb.run is second


NANOGPT = '''
import math, os, time
import torch
import steadyrun as wandb   # the one changed line: was `import wandb`

# nanoGPT's train.py, shrunk: its config, its wandb calls, a real (tiny) model
batch_size, block_size, n_embd, vocab = 4, 8, 16, 32
learning_rate, max_iters, eval_interval, log_interval = 6e-4, 30, 10, 5
wandb_log, wandb_project, wandb_run_name = True, "owt", "gpt2-tiny"
config = {k: v for k, v in dict(globals()).items()
          if not k.startswith("_") and isinstance(v, (int, float, bool, str))}
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Embedding(vocab, n_embd), torch.nn.Linear(n_embd, vocab))
opt = torch.optim.AdamW(model.parameters(), lr=learning_rate)
data = torch.randint(0, vocab, (512,))

def get_batch():
    ix = torch.randint(len(data) - block_size - 1, (batch_size,))
    x = torch.stack([data[i:i + block_size] for i in ix])
    y = torch.stack([data[i + 1:i + 1 + block_size] for i in ix])
    return x, y

def loss_of(x, y):
    return torch.nn.functional.cross_entropy(model(x).view(-1, vocab), y.view(-1))

@torch.no_grad()
def estimate_loss():
    return {split: float(loss_of(*get_batch())) for split in ("train", "val")}

if wandb_log:
    wandb.init(project=wandb_project, name=wandb_run_name, config=config)
for iter_num in range(max_iters + 1):
    lr = learning_rate * min(1.0, (iter_num + 1) / 10)
    if iter_num % eval_interval == 0 and wandb_log:
        losses = estimate_loss()
        wandb.log({"iter": iter_num, "train/loss": losses["train"],
                   "val/loss": losses["val"], "lr": lr, "mfu": 0.0})
    loss = loss_of(*get_batch())
    opt.zero_grad(); loss.backward(); opt.step()
    if iter_num % log_interval == 0 and wandb_log:
        wandb.log({"batch/loss": loss.item(), "batch/time_ms": 1.0}, step=iter_num)
print("RUN=" + wandb.run.id)
'''


def test_a_nanogpt_script_runs_unchanged_but_for_its_import(tmp_path: Path) -> None:
    done = run_script(tmp_path, NANOGPT, timeout=120)
    rdir = done.rdir
    assert done.value("RUN") == done.run_id  # one run, the one wandb.run named
    data = steadyrun.open_run(rdir)
    assert data.state == "finished"
    assert (data.manifest["name"], data.manifest["project"]) == ("gpt2-tiny", "owt")
    assert data.config["learning_rate"] == 6e-4 and data.config["max_iters"] == 30

    # wandb's steps: eval rows without step= continue at the last step= (0, 5, 15, 25,
    # 31 in wandb as here), batch rows at their iter_num; nothing dropped, nothing twice.
    evals = [0, 10, 20, 30]
    batches = list(range(0, 31, 5))
    assert [v for _, v in data.column("iter")] == evals
    assert [x for x, _ in data.column("batch/loss")] == batches
    assert [x for x, _ in data.column("val/loss")] == [0, 5, 15, 25]
    assert not [e for e in data.events if e["type"] in ("rejected", "dropped")]

    log = wandb_log(rdir)
    assert log.run["run_id"] == done.run_id
    assert_once(log, "iter", evals)
    assert_once(log, "batch/step", batches)
    assert_once(log, "val/step", [0, 5, 15, 25])
    assert len([r for r in log.history if "val/loss" in r]) == 4
    # every key on its namespace's step, defined by exact key (never an empty chart)
    for key, axis in (("val/loss", "val/step"), ("batch/loss", "batch/step"),
                      ("train/loss", "train/step"), ("lr", "step")):
        assert log.metrics[key]["step_metric"] == axis, (key, log.metrics[key])
    assert log.config["wandb_project"] == "owt"
    assert json.loads(json.dumps(log.summary))["val/loss"] == data.column("val/loss")[-1][1]
