"""The Transformers adapter, checked on real Trainer runs on CPU.

A GPT-2 built from a tiny config (2 layers, hidden size 32, no hub download) trains on
random tokens in a fresh interpreter; its sidecar ships to real W&B offline files. The
tests read the run back with `steadyrun.open_run` and W&B's own transaction log (only
after the script exited), and assert exact rows and steps: 16 steps, a row every 2 steps,
an evaluation every 4 and a checkpoint every 8.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("torch")

from wandb_helpers import (  # noqa: E402
    assert_once,
    free_port,
    run_script,
    wandb_env,
    wandb_log,
)

import steadyrun  # noqa: E402
from steadyrun.integrations import transformers as adapter  # noqa: E402
from steadyrun.store.redact import REDACTED  # noqa: E402

SECRET = "hf_" + "Qx7Lm2Vp9Rt4" * 3  # the shape of a Hugging Face token

COMMON = """
import os, sys
import torch
from transformers import (GPT2Config, GPT2LMHeadModel, Trainer, TrainerCallback,
                          TrainingArguments)
from steadyrun.integrations.transformers import SteadyrunCallback, register

SECRET = "@SECRET@"


class Tokens(torch.utils.data.Dataset):
    def __init__(self, n, seed):
        gen = torch.Generator().manual_seed(seed)
        self.x = torch.randint(0, 64, (n, 16), generator=gen)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"input_ids": self.x[i], "labels": self.x[i]}


def tiny_model():
    torch.manual_seed(0)
    # auth_token: a secret in the model config, which Transformers does not mask
    return GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64,
                                      n_positions=16, bos_token_id=0, eos_token_id=0,
                                      auth_token=SECRET))


def trainer_args(out, **kw):
    base = dict(output_dir=out, max_steps=16, per_device_train_batch_size=4,
                per_device_eval_batch_size=4, logging_steps=2, eval_strategy="steps",
                eval_steps=4, save_steps=8, disable_tqdm=True, use_cpu=True,
                dataloader_num_workers=0, report_to=[], seed=0)
    base.update(kw)
    return TrainingArguments(**base)


def make_trainer(args, callbacks=()):
    return Trainer(model=tiny_model(), args=args, train_dataset=Tokens(64, 0),
                   eval_dataset=Tokens(8, 1), callbacks=list(callbacks))
""".replace("@SECRET@", SECRET)

TRAIN_STEPS = list(range(2, 17, 2))  # logging_steps=2 over 16 steps
EVAL_STEPS = [4, 8, 12, 16]  # eval_steps=4
END = {"train_runtime", "train_samples_per_second", "train_steps_per_second", "train_loss",
       "total_flos"}


def _env(**extra: str) -> dict[str, str]:
    return {"OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
            "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", **extra}


def _steps(data: steadyrun.RunData, key: str) -> list[int]:
    return [step for step, _ in data.column(key)]


def _no_secret_under(folder: Path) -> None:
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    leaked = [p for p in files if SECRET.encode() in p.read_bytes()]
    assert not leaked, f"the planted token is in clear in {leaked}"


# ---------------------------------------------------------------------- one training
def test_sixteen_steps_with_eval_and_save_via_report_to(tmp_path: Path) -> None:
    """register() + report_to="steadyrun", in the setup of transformers#34701 (eval
    dataset, load_best_model_at_end, save_total_limit): training ends cleanly, rows are
    logged once at the global step, final numbers (and predict()'s after train()) are in
    the summary only, the config holds args and model config with the token redacted."""
    done = run_script(tmp_path, COMMON + """
register()
register()  # idempotent
args = trainer_args(str(sys.argv[1]), report_to="steadyrun", hub_token=SECRET,
                    load_best_model_at_end=True, metric_for_best_model="eval_loss",
                    save_total_limit=1, run_name="tiny-gpt2")
trainer = make_trainer(args)
ours = [c for c in trainer.callback_handler.callbacks if isinstance(c, SteadyrunCallback)]
assert len(ours) == 1, trainer.callback_handler.callbacks
metrics = trainer.train().metrics
trainer.predict(Tokens(8, 2))  # after train(): into the same run, as final scores
print(f"RUN={ours[0].run.id}")
print(f"LOSS={metrics['train_loss']!r}")
""", args=[str(tmp_path / "out")], env=_env(), timeout=120)
    data = steadyrun.open_run(done.rdir)
    assert done.value("RUN") == data.id == done.run_id  # one run, the callback's
    assert data.state == "finished" and data.manifest["name"] == "tiny-gpt2"

    # Local rows: one per logging step on train/, one per evaluation on eval/.
    train = data.history("train")
    assert [r["train/step"] for r in train] == TRAIN_STEPS
    assert set(train[0]) >= {"train/loss", "train/grad_norm", "train/learning_rate",
                             "train/epoch", "train/step"}
    eval_rows = data.history("eval")
    assert [r["eval/step"] for r in eval_rows] == EVAL_STEPS
    assert _steps(data, "eval/loss") == EVAL_STEPS and _steps(data, "eval/epoch") == EVAL_STEPS
    assert len(data.rows) == len(TRAIN_STEPS) + len(EVAL_STEPS)
    assert not any(k in row for row in data.rows for k in END)  # never charted
    assert not [e for e in data.events if e.get("type") in ("step_regression", "rejected")]

    # Final scores in the summary, under Trainer's names.
    assert END <= set(data.summary)
    assert data.summary["train_loss"] == float(done.value("LOSS"))
    assert data.summary["model/parameters"] > 0
    assert {"test/loss", "test/runtime"} <= set(data.summary)  # predict(): summary only
    assert not any(k.startswith("test/") for row in data.rows for k in row)

    # Config: args and model config, nested, redacted.
    assert data.config["args"]["max_steps"] == 16
    assert data.config["args"]["hub_token"] == REDACTED
    assert data.config["model"]["n_layer"] == 2 and data.config["model"]["n_embd"] == 32
    assert data.config["model"]["auth_token"] == REDACTED
    _no_secret_under(done.rdir)  # the run's files and W&B's, which lie inside it

    # Checkpoints: recorded at their step with the run state inside; the first is `best`.
    ckpts = data.artifacts
    assert [a["x"] for a in ckpts] == [8, 16]
    assert all(adapter.STATE_FILE in a["files"] for a in ckpts)
    assert "best" in ckpts[0]["aliases"]
    for folder in (tmp_path / "out").glob("checkpoint-*"):
        state = (folder / adapter.STATE_FILE).read_text()
        assert f'"run_id": "{data.id}"' in state

    # W&B: the same rows exactly once, an exact-key step metric per key, steps as data.
    log = wandb_log(done.rdir)
    assert len(log.history) == len(TRAIN_STEPS) + len(EVAL_STEPS)
    assert_once(log, "train/step", TRAIN_STEPS)
    assert_once(log, "eval/step", EVAL_STEPS)
    assert [r["train/step"] for r in log.history if "train/loss" in r] == TRAIN_STEPS
    for key in ("train/loss", "train/grad_norm", "train/learning_rate", "eval/loss"):
        assert log.metrics[key]["step_metric"] == key.split("/")[0] + "/step"
        assert not log.metrics[key]["glob"]
    assert log.summary["train_runtime"] == data.summary["train_runtime"]
    assert log.summary["train_loss"] == data.summary["train_loss"]
    assert log.summary["test/loss"] == data.summary["test/loss"]
    assert not any(k in row for row in log.history for k in END)
    assert log.config["args"]["hub_token"] == REDACTED
    assert log.exit_code == 0


# ---------------------------------------------------------------------- resume
def test_resume_from_checkpoint_8_continues_the_run_and_its_steps(tmp_path: Path) -> None:
    """A training stopped after checkpoint-8 and resumed from it is one run: the second
    process finds the run in checkpoint-8/steadyrun_state.json, and its steps go on."""
    script = COMMON + """
class StopAt8(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == 8:
            control.should_training_stop = True


out = sys.argv[1]
callback = SteadyrunCallback(project="resume")
if sys.argv[2] == "first":
    make_trainer(trainer_args(out), [callback, StopAt8()]).train()
else:
    make_trainer(trainer_args(out), [callback]).train(
        resume_from_checkpoint=os.path.join(out, "checkpoint-8"))
print(f"RUN={callback.run.id}")
"""
    out = str(tmp_path / "out")
    first = run_script(tmp_path, script, args=[out, "first"], env=_env(), name="first",
                       timeout=120)
    saved = (tmp_path / "out" / "checkpoint-8" / adapter.STATE_FILE).read_text()
    second = run_script(tmp_path, script, args=[out, "second"], env=_env(), name="second",
                        timeout=120)
    assert first.value("RUN") == second.value("RUN") == second.run_id  # one run id
    assert f'"run_id": "{second.run_id}"' in saved

    data = steadyrun.open_run(second.rdir)
    assert data.state == "finished"
    assert data.manifest["resumes"] == 1
    assert len(data.segments) == 2  # one per process, both the owner's
    assert _steps(data, "train/loss") == TRAIN_STEPS
    assert _steps(data, "eval/loss") == EVAL_STEPS
    assert len(data.rows) == len(TRAIN_STEPS) + len(EVAL_STEPS)
    assert not [e for e in data.events if e.get("type") == "step_regression"]
    assert [a["x"] for a in data.artifacts] == [8, 16]

    log = wandb_log(second.rdir)  # both processes' W&B pieces, read as one run
    assert len(log.paths) == 2
    assert {log.run.get("run_id")} == {second.run_id}
    assert_once(log, "train/step", TRAIN_STEPS)
    assert_once(log, "eval/step", EVAL_STEPS)
    assert len(log.history) == len(TRAIN_STEPS) + len(EVAL_STEPS)
    steps = [r["_step"] for r in log.history]
    assert steps == sorted(set(steps))  # W&B's own steps never repeat across the pieces
    assert END <= set(log.summary)


# ---------------------------------------------------------------------- ranks
@pytest.mark.xdist_group("ddp")
def test_torchrun_two_processes_make_exactly_one_run(tmp_path: Path) -> None:
    """Under torchrun (gloo, CPU) both processes have the callback; the main process
    alone starts a run and writes it, and W&B gets each row once."""
    script = tmp_path / "train.py"
    script.write_text(COMMON + """
callback = SteadyrunCallback(project="ddp")
trainer = make_trainer(trainer_args(sys.argv[1], max_steps=8), [callback])
trainer.train()
rank = trainer.args.process_index
run = callback.run
os.write(1, f"RUN {rank} {type(run).__name__} {getattr(run, 'id', None)}\\n".encode())
""")
    env = wandb_env(tmp_path, **_env())
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
         f"--master_port={free_port()}", str(script), str(tmp_path / "out")],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout
    lines = sorted(line for line in proc.stdout.splitlines() if line.startswith("RUN "))
    runs = steadyrun.list_runs(tmp_path / "sr")
    assert len(runs) == 1, (runs, proc.stdout)
    data = steadyrun.open_run(runs[0])
    assert lines == [f"RUN 0 Run {data.id}", "RUN 1 NoneType None"], proc.stdout

    assert [s["role"] for s in data.segments.values()] == ["owner"]
    assert _steps(data, "train/loss") == [2, 4, 6, 8]
    assert _steps(data, "eval/loss") == [4, 8]
    assert len(data.rows) == 6
    assert [a["x"] for a in data.artifacts] == [8]
    log = wandb_log(runs[0])
    assert len(log.paths) == 1
    assert_once(log, "train/step", [2, 4, 6, 8])
    assert_once(log, "eval/step", [4, 8])
    assert len(log.history) == 6
    assert log.config["args"]["max_steps"] == 8


# ---------------------------------------------------------------------- in process
def test_register_is_idempotent_and_touches_one_entry() -> None:
    from transformers.integrations import integration_utils

    table = integration_utils.INTEGRATION_TO_CALLBACK
    before = dict(table)
    had = "steadyrun" in table
    try:
        adapter.register()
        adapter.register()
        assert table["steadyrun"] is adapter.SteadyrunCallback
        assert {k: v for k, v in table.items() if k != "steadyrun"} == \
            {k: v for k, v in before.items() if k != "steadyrun"}
        assert integration_utils.get_reporting_integration_callbacks("steadyrun") == [
            adapter.SteadyrunCallback]
        with pytest.raises(ValueError, match="WandbCallback"):
            adapter.register("wandb")
        assert table["wandb"] is before["wandb"]
    finally:
        if not had:
            table.pop("steadyrun", None)


def test_wandb_in_report_to_warns_once_and_starts_no_run(
        sr_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer, TrainingArguments

    monkeypatch.setattr(adapter, "_warned_wandb", False)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64,
                                       n_positions=16, bos_token_id=0, eos_token_id=0))
    args = TrainingArguments(output_dir=str(tmp_path / "out"), report_to=["wandb"],
                             use_cpu=True, disable_tqdm=True)
    data = [{"input_ids": torch.zeros(4, dtype=torch.long)}]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            Trainer(model=model, args=args, train_dataset=data,
                    callbacks=[adapter.SteadyrunCallback()])
    said = [w for w in caught if issubclass(w.category, steadyrun.SteadyrunWarning)]
    assert len(said) == 1 and "second W&B run" in str(said[0].message)
    assert not (sr_root / "runs").exists()  # the run starts with training, not before


@pytest.mark.parametrize(("key", "split", "expected"), [
    ("loss", "train", "train/loss"), ("grad_norm", "train", "train/grad_norm"),
    ("epoch", "train", "train/epoch"), ("eval_loss", "eval", "eval/loss"),
    ("epoch", "eval", "eval/epoch"), ("test_accuracy", "test", "test/accuracy"),
    ("custom/metric", "train", "custom/metric"), ("val_loss", "val", "val/loss"),
])
def test_log_keys_map_to_namespaces(key: str, split: str, expected: str) -> None:
    assert adapter._series_key(key, split) == expected


@pytest.mark.parametrize(("logs", "split"), [
    ({"loss": 1.0, "grad_norm": 0.5, "learning_rate": 1e-4, "epoch": 0.5}, "train"),
    ({"eval_loss": 1.0, "eval_runtime": 0.1, "epoch": 0.5}, "eval"),
    ({"test_loss": 1.0, "test_runtime": 0.1}, "test"),
    ({"val_loss": 1.0, "val_runtime": 0.1, "epoch": 0.5}, "val"),  # metric_key_prefix
])
def test_each_log_goes_to_one_namespace(logs: dict[str, float], split: str) -> None:
    assert adapter._split_of(logs) == split
    assert {adapter._series_key(k, split).split("/")[0] for k in logs} == {split}

