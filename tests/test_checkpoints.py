"""Checkpoints and artifacts: the local record, the upload policy, symlinks (seed 004)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

import steadyrun
from steadyrun import SteadyrunWarning
from steadyrun.store.redact import REDACTED


@pytest.fixture(autouse=True)
def _no_policy(monkeypatch):
    for var in ("STEADYRUN_LOG_MODEL", "WANDB_LOG_MODEL"):
        monkeypatch.delenv(var, raising=False)


def _ckpt(root: Path) -> Path:
    (root / "shards").mkdir(parents=True)
    (root / "model.pt").write_bytes(b"m" * 1000)
    (root / "shards" / "rank0.pt").write_bytes(b"s" * 300)
    (root / "latest").write_text("step20")
    return root


def test_checkpoint_is_recorded_locally_and_the_policy_is_said_once(new_run, tmp_path, capsys):
    ckpt = _ckpt(tmp_path / "ckpt")
    run = new_run(log_interval=5)
    for step in range(21):
        run.log_training_step(1.0 / (step + 1), step)
    run.log_checkpoint(ckpt)
    run.log_checkpoint(ckpt / "model.pt", aliases=["best", "step20"], step=18)
    run.finish()

    err = capsys.readouterr().err
    assert err.count("Uploads are off") == 1 and "STEADYRUN_LOG_MODEL=1" in err
    first, second = steadyrun.open_run(run.id).artifacts
    assert first["name"] == f"checkpoint-{run.id}" and first["type"] == "model"
    assert first["path"] == str(ckpt.absolute()) and first["x"] == 20
    assert first["aliases"] == ["latest"] and first["upload"] is False
    assert sorted(first["files"]) == ["latest", "model.pt", "shards/rank0.pt"]
    assert first["size"] == 1000 + 300 + len("step20")
    assert second["files"] == ["model.pt"] and second["size"] == 1000
    assert second["aliases"] == ["best", "step20"] and second["x"] == 18


@pytest.mark.parametrize("env", ["STEADYRUN_LOG_MODEL=1", "WANDB_LOG_MODEL=true", "force"])
def test_upload_policy_prints_the_size(new_run, tmp_path, capsys, monkeypatch, env):
    ckpt = _ckpt(tmp_path / "ckpt")
    force = env == "force"
    if not force:
        name, value = env.split("=")
        monkeypatch.setenv(name, value)
    run = new_run()
    run.log_checkpoint(ckpt, force=force)
    run.finish()
    err = capsys.readouterr().err
    assert "goes to W&B: 1.28 KiB in 3 files" in err and "Uploads are off" not in err
    assert steadyrun.open_run(run.id).artifacts[0]["upload"] is True


def test_policy_off_values(new_run, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_LOG_MODEL", "false")
    monkeypatch.setenv("STEADYRUN_LOG_MODEL", "0")
    run = new_run()
    run.log_artifact(_ckpt(tmp_path / "c"), type="dataset", name="my data/v1")
    run.finish()
    art = steadyrun.open_run(run.id).artifacts[0]
    assert art["upload"] is False and art["type"] == "dataset" and art["name"] == "my-data-v1"


def test_above_five_gib_warns_before_upload(new_run, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as fh:  # sparse: no disk is used
        fh.truncate((5 << 30) + 1)
    run = new_run()
    with pytest.warns(SteadyrunWarning, match="above 5 GiB"):
        run.log_checkpoint(big, force=True)
    run.finish()
    assert steadyrun.open_run(run.id).artifacts[0]["size"] == (5 << 30) + 1


def test_symlink_loops_are_skipped_and_escaping_links_refused(new_run, tmp_path):
    ckpt = _ckpt(tmp_path / "ckpt")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.bin").write_bytes(b"x" * 10_000)
    os.symlink("..", ckpt / "shards" / "up")  # loop back to the checkpoint folder
    os.symlink("self", ckpt / "self")  # a link to itself
    os.symlink(outside, ckpt / "escape_dir")
    os.symlink(outside / "secret.bin", ckpt / "escape_file")
    os.symlink("model.pt", ckpt / "alias.pt")  # inside: kept
    os.symlink("shards", ckpt / "shards_again")  # the same folder twice: once
    os.symlink("missing", ckpt / "dangling")
    run = new_run()
    with pytest.warns(SteadyrunWarning) as caught:
        rec = run.log_checkpoint(ckpt)
    run.finish()

    assert rec is not None
    art = steadyrun.open_run(run.id).artifacts[0]
    assert sorted(art["files"]) == ["alias.pt", "latest", "model.pt", "shards/rank0.pt"]
    assert art["size"] == 1000 + 1000 + 300 + len("step20")
    why = {s["path"]: s["why"] for s in art["skipped"]}
    assert why["shards/up"] == "symlink loop" and why["self"] == "symlink loop"
    assert why["escape_dir"].startswith("symlink escapes") and why["escape_file"].startswith(
        "symlink escapes")
    assert why["shards_again"] == "symlink to a folder already included"
    assert why["dangling"] == "dangling symlink"
    messages = " ".join(str(w.message) for w in caught)
    assert "escape_dir" in messages and "symlink loop" in messages
    rejected = [e["key"] for e in steadyrun.open_run(run.id).events if e["type"] == "rejected"]
    assert sorted(rejected) == [f"checkpoint-{run.id}:escape_dir",
                                f"checkpoint-{run.id}:escape_file"]


def test_strict_run_refuses_an_escaping_link(new_run, tmp_path):
    ckpt = _ckpt(tmp_path / "ckpt")
    os.symlink(tmp_path, ckpt / "root")
    run = new_run(strict=True)
    with pytest.raises(ValueError, match="escapes"):
        run.log_checkpoint(ckpt)


def test_missing_path_is_rejected_not_raised(new_run, tmp_path):
    run = new_run()
    with pytest.warns(SteadyrunWarning, match="existing file"):
        assert run.log_checkpoint(tmp_path / "nope") is None
    run.finish()
    assert steadyrun.open_run(run.id).artifacts == []


def test_config_artifact_is_the_resolved_redacted_config_as_yaml(new_run):
    run = new_run(config={"lr": 0.1, "model": {"depth": 3, "act": "gelu"},
                          "api_key": "planted-yaml-secret", "layers": [64, 32]})
    run.config.update({"epochs": 3})
    path = run.log_config_artifact()
    run.finish()

    data = steadyrun.open_run(run.id)
    assert path == data.dir / "files" / "config.yaml"
    loaded = yaml.safe_load(path.read_text())
    assert loaded == {"lr": 0.1, "model": {"depth": 3, "act": "gelu"}, "api_key": REDACTED,
                      "layers": [64, 32], "epochs": 3}
    assert [f["name"] for f in data.files] == ["config.yaml"]
    (art,) = data.artifacts
    assert art["type"] == "config" and art["upload"] is True and art["path"] == str(path)


def test_the_best_checkpoint_gets_the_alias_best_and_keeps_its_metadata(new_run, tmp_path):
    run = new_run()
    losses = [0.9, 0.5, 0.7, 0.4, 0.6]
    for i, loss in enumerate(losses):
        path = tmp_path / f"ckpt{i}.pt"
        path.write_bytes(b"w" * (i + 1))
        run.log_checkpoint(path, metric=loss, metadata={"epoch": i, "api_key": "planted-key"})
    run.finish()
    arts = steadyrun.open_run(run.id).artifacts
    best = [i for i, a in enumerate(arts[:5]) if "best" in a["aliases"]]
    assert best == [0, 1, 3]  # each one beat every earlier checkpoint
    assert all("latest" in a["aliases"] for a in arts) and len(arts) == 5
    assert [a["metadata"]["metric"] for a in arts[:5]] == losses
    assert [a["metadata"]["epoch"] for a in arts[:5]] == list(range(5))
    assert all(a["metadata"]["api_key"] == REDACTED for a in arts[:5])
    acc = new_run()
    for a in (0.5, 0.8, 0.7):
        acc.log_checkpoint(tmp_path / "ckpt0.pt", metric=a, goal="maximize")
    acc.finish()
    assert ["best" in a["aliases"] for a in steadyrun.open_run(acc.id).artifacts] == [
        True, True, False]


def test_a_resumed_run_keeps_the_best_checkpoint_of_its_earlier_processes(
        new_run, tmp_path, sr_root):
    """Found by the framework adapters: the best metric lived only in the process, so the
    first checkpoint after a resume took `best` from a better one."""
    ckpt = tmp_path / "ckpt.pt"
    ckpt.write_bytes(b"w")
    run = new_run(id="ckpts")
    run.log_checkpoint(ckpt, metric=0.5)
    run.log_checkpoint(ckpt, metric=0.6)
    state = run.state_dict()
    assert state["best_checkpoint"] == 0.5
    run.finish()
    again = new_run(id="ckpts")                    # resumed in its folder: read from it
    again.log_checkpoint(ckpt, metric=0.7)         # worse than 0.5: not the best
    again.log_checkpoint(ckpt, metric=0.4)         # better: the best
    again.finish()
    assert ["best" in a["aliases"] for a in steadyrun.open_run("ckpts").artifacts] == [
        True, False, False, True]
    elsewhere = new_run(resume=state, dir=tmp_path / "other")  # another root: from the state
    elsewhere.log_checkpoint(ckpt, metric=0.55)
    elsewhere.finish()
    (rec,) = steadyrun.open_run("ckpts", tmp_path / "other").artifacts
    assert "best" not in rec["aliases"]


def test_uploaded_checkpoint_metadata_reaches_wandb(tmp_path):
    from wandb_helpers import run_script, wandb_files

    from steadyrun.ship.wandb.txlog import iter_records

    done = run_script(tmp_path, """
        import pathlib, steadyrun
        run = steadyrun.init(project="ckpt")
        p = pathlib.Path("model.pt"); p.write_bytes(b"m" * 100)
        run.log({"val/loss": 0.3})
        run.log_checkpoint(p, metric=0.3, metadata={"epoch": 4}, force=True)
        run.finish()
    """, timeout=120)
    found = []
    for path in wandb_files(done.rdir):
        for rec in iter_records(path):
            if rec.WhichOneof("record_type") == "artifact":
                found.append((rec.artifact.type, sorted(rec.artifact.aliases),
                              yaml.safe_load(rec.artifact.metadata)))
    (kind, aliases, meta), = found
    assert kind == "model" and aliases == ["best", "latest"]
    assert meta["metric"] == 0.3 and meta["epoch"] == 4 and meta["size"] == 100


def test_bad_metrics_and_missing_paths_never_take_the_best_alias(new_run, tmp_path):
    from argparse import Namespace

    good = tmp_path / "ok.pt"
    good.write_bytes(b"w")
    run = new_run()
    with pytest.warns(SteadyrunWarning, match="metric must be a finite number"):
        run.log_checkpoint(good, metric=float("nan"))
    run.log_checkpoint(good, metric="0.05")  # the same key: warned once, recorded once
    with pytest.warns(SteadyrunWarning, match="missing.pt"):
        run.log_checkpoint(tmp_path / "missing.pt", metric=0.1)  # not recorded: not the best
    run.log_checkpoint(good, metric=0.2, metadata=Namespace(epoch=3))
    run.finish()
    data = steadyrun.open_run(run.id)
    arts = data.artifacts
    assert ["best" in a["aliases"] for a in arts] == [False, False, True]
    assert arts[2]["metadata"] == {"epoch": 3, "metric": 0.2}
    assert "log_checkpoint.metric" in {e["key"] for e in data.events if e["type"] == "rejected"}
    strict = new_run(strict=True)
    with pytest.raises(TypeError, match="metric"):
        strict.log_checkpoint(good, metric="abc")
