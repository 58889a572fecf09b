"""`steadyrun demo` end to end: the seed-002 pipeline shape recorded as exactly one run.

The demo is what new users run first, so it is tested as they run it: the command line
in a subprocess, then the run read back from disk with `steadyrun.open_run`. Mode
`local` keeps W&B out of it; the sidecar and sinks have their own tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest
from wandb_helpers import FOREIGN, NO_WANDB_URL, bare_env

import steadyrun

pytest.importorskip("numpy")
pytest.importorskip("sklearn")
PIL_Image = pytest.importorskip("PIL.Image")

EVAL_KEYS = {"eval/test_acc", "eval/test_loss", "eval/macro_acc", "eval/worst_class_acc",
             "eval/baseline_acc", "eval/n_test"}


def _env(root: Path) -> dict[str, str]:
    """The caller's environment without steadyrun, W&B or launcher settings."""
    return bare_env(STEADYRUN_DIR=str(root))


def _demo(root: Path, seed: int = 0) -> steadyrun.RunData:
    proc = subprocess.run([sys.executable, "-m", "steadyrun", "demo", "--mode", "local",
                           "--seed", str(seed)], env=_env(root), capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    runs = steadyrun.list_runs(root)
    assert len(runs) == 1, runs
    return steadyrun.open_run(runs[0])


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> steadyrun.RunData:
    return _demo(tmp_path_factory.mktemp("demo_a"))


def test_one_run_written_by_orchestrator_and_stages(demo_run):
    data = demo_run
    assert data.state == "finished"
    assert data.manifest["project"] == "steadyrun-demo"
    assert "demo:digits" in data.manifest["tags"]
    roles = [info["role"] for info in data.segments.values()]
    assert len(data.segments) >= 3
    assert roles.count("owner") == 1 and roles.count("child") >= 2
    job_types = {r.get("job_type") for r in data.records if r["k"] == "open"}
    assert {"pretrain", "finetune", "eval"} <= job_types
    assert all(info["closed"] and not info["torn"] for info in data.segments.values())
    assert data.config["stages"]["pretrain"]["epochs"] > 0
    assert data.config["seed"] == 0


def test_each_stage_has_its_own_step_axis(demo_run):
    data = demo_run
    assert {"pretrain", "finetune"} <= set(data.namespaces)
    for ns in ("pretrain", "finetune"):
        hist = data.history(ns)
        assert hist, ns
        steps = [row[f"{ns}/step"] for row in hist]
        assert all(isinstance(s, int) for s in steps)
        assert steps == sorted(steps), f"{ns} steps went back: {steps}"
        assert steps[0] == 0
        keys = set().union(*hist)
        assert {f"{ns}/acc", f"{ns}/lr", f"{ns}/val_loss", f"{ns}/val_acc"} <= keys
        # log_training_step with prefix=<stage>: loss and perf on the stage's own axes
        losses = data.history(f"{ns}/loss")
        assert losses and losses[0][f"{ns}/loss/step"] == 0
        assert all(row[f"{ns}/loss/total"] > 0 for row in losses)
        perf = data.history(f"{ns}/perf")
        assert perf and all(row[f"{ns}/perf/samples_per_sec"] > 0 for row in perf[1:])
    # finetune restarts at 0 in its own namespace, after pretrain reached a higher step
    assert data.history("pretrain")[-1]["pretrain/step"] > 0
    assert not [e for e in data.events if e["type"] == "step_regression"]
    assert not data.anomalies
    assert data.metrics["finetune/val_acc"]["goal"] == "maximize"


def test_eval_scores_go_to_summary_not_rows(demo_run):
    data = demo_run
    assert EVAL_KEYS <= set(data.summary)
    for row in data.rows:
        assert not EVAL_KEYS & set(row), row
        assert not any(k.startswith("eval/") for k in row)
    assert data.summary["eval/test_acc"] > 0.9
    assert data.summary["eval/test_acc"] > data.summary["eval/baseline_acc"] - 0.05


def test_learns(demo_run):
    for ns in ("pretrain", "finetune"):
        final = demo_run.column(f"{ns}/val_acc")[-1][1]
        assert final > 0.9, (ns, final)


def test_tables_images_and_model_file(demo_run):
    data = demo_run
    tables = {t["key"]: t for t in data.tables}
    per_class = tables["eval/per_class"]
    assert per_class["columns"][:4] == ["digit", "n", "correct", "accuracy"]
    assert [r[0] for r in per_class["rows"]] == list(range(10))
    cmp_ = tables["eval/baseline_vs_model"]
    assert "mlp" in cmp_["columns"] and len(cmp_["rows"]) >= 1
    images = {i["key"]: i for i in data.images}
    assert "eval/confusion" in images
    for img in images.values():
        with PIL_Image.open(data.dir / img["path"]) as im:
            assert im.format == "PNG" and im.size[0] > 8
    files = [f["path"] for f in data.files]
    assert "files/model.npz" in files and (data.dir / "files/model.npz").is_file()


def test_same_seed_same_numbers(demo_run, tmp_path):
    again = _demo(tmp_path)
    assert again.id != demo_run.id

    def numbers(data):
        summary = {k: v for k, v in data.summary.items() if k.startswith("eval/")}
        return (summary, data.history("pretrain"), data.history("finetune"),
                data.history("pretrain/loss"), data.history("finetune/loss"))

    assert numbers(again) == numbers(demo_run)


def test_failed_stage_fails_the_run(tmp_path, monkeypatch, capsys):
    from steadyrun.cli import demo

    def failing(cfg, tmp):
        return [("pretrain", [sys.executable, "-c", "raise SystemExit(3)"])]

    for k in [k for k in os.environ if k.startswith(FOREIGN)]:
        monkeypatch.delenv(k)
    monkeypatch.setenv("WANDB_BASE_URL", NO_WANDB_URL)  # as bare_env: W&B on loopback
    monkeypatch.setattr(demo, "stage_commands", failing)
    rc = demo.main(Namespace(mode="local", epochs=1, seed=0, dir=str(tmp_path)))
    assert rc != 0
    (rdir,) = steadyrun.list_runs(tmp_path)
    data = steadyrun.open_run(rdir)
    assert data.state == "failed"
    assert any(a["level"] == "ERROR" and "pretrain" in a["title"] for a in data.alerts)
    assert "exited with code 3" in capsys.readouterr().err


def test_preset_seeds_and_checkpoints_are_recorded(demo_run):
    data = demo_run
    manifest = data.manifest
    assert manifest["group"] == "digits-mlp" and "model:mlp" in manifest["tags"]
    assert "NumPy MLP" in manifest["notes"]
    ckpts = {tuple(a["aliases"]): a for a in data.artifacts}
    assert {("pretrain", "latest"), ("finetune", "latest")} <= set(ckpts)
    assert all(a["size"] > 0 and not a["upload"] for a in data.artifacts)
    for a in data.artifacts:  # the stage's final validation scores go with its checkpoint
        ns = a["aliases"][0]
        assert a["metadata"]["val_acc"] == data.column(f"{ns}/val_acc")[-1][1]
    hists = {k for h in data.histograms for k in h["v"]}
    assert {f"{ns}/weights/{w}" for ns in ("pretrain", "finetune")
            for w in ("w1", "b1", "w2", "b2")} <= hists
    seeds = [r["v"]["seeds"] for r in data.records if r["k"] == "config" and "seeds" in r["v"]]
    assert len(seeds) == 2 and all(s["seed"] == 0 and s["numpy"] == 0 for s in seeds)


def test_the_default_demo_reaches_wandb_offline_files_and_says_how_to_upload(tmp_path):
    """`make demo` as a new user runs it: auto mode, no key, so W&B offline files."""
    from wandb_helpers import column, wandb_env, wandb_log

    proc = subprocess.run([sys.executable, "-m", "steadyrun", "demo"], env=wandb_env(tmp_path),
                          capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (rdir,) = steadyrun.list_runs(tmp_path / "sr")
    data = steadyrun.open_run(rdir)
    log = wandb_log(rdir)
    assert log.run["run_id"] == data.id
    for ns in ("pretrain", "finetune"):
        assert column(log, f"{ns}/val_acc") == [v for _, v in data.column(f"{ns}/val_acc")]
    assert {k: log.summary[k] for k in EVAL_KEYS} == {k: data.summary[k] for k in EVAL_KEYS}
    (folder,) = [d for d in data.wandb["run_dirs"] if "offline-run-" in d]
    out = " ".join(proc.stdout.split())  # the console may wrap long lines
    assert f"upload later: steadyrun sync {data.id}" in out
    assert f"wandb sync {folder}" in out
    # ... and the one-file report of the run beside the runs, plus how to open the dashboard
    report = tmp_path / "sr" / "report.html"
    assert f"report: {report.relative_to(tmp_path)}" in out or f"report: {report}" in out
    assert "dashboard: steadyrun ui" in out
    html = report.read_text()
    embedded = html[html.index('id="sr-embed"'):]
    for key in ("pretrain/val_acc", "finetune/val_acc", "eval/test_acc"):
        assert f'"{key}"' in embedded
