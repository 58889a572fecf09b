"""The public API of DESIGN.md section 2 besides `log`: summary, config, tables, images,
files, alerts, lifecycle, disabled mode, state_dict and resume."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import warnings

import numpy as np
import pytest

import steadyrun
from steadyrun import SteadyrunWarning

REDACTED = "***REDACTED***"


def _rejected(data: steadyrun.RunData) -> list[dict]:
    return [e for e in data.events if e["type"] == "rejected"]


# ---------------------------------------------------------------------- summary

def test_summary_goes_to_the_summary_never_to_rows(new_run):
    run = new_run()
    run.summary.update({"eval/nrmse": 0.09})
    run.summary["best/acc"] = 0.97
    run.summary.update(final_loss=0.5)
    run.log_summary({"nrmse": 0.08, "mae": 0.1}, prefix="eval")
    run.log_summary({"f1": 0.7}, prefix="test/")
    run.log_summary({"plain": 1})
    run.summary["label"] = "baseline"
    assert run.summary["best/acc"] == 0.97
    run.finish()

    data = steadyrun.open_run(run.id)
    assert data.summary == {"eval/nrmse": 0.08, "best/acc": 0.97, "final_loss": 0.5,
                            "eval/mae": 0.1, "test/f1": 0.7, "plain": 1, "label": "baseline"}
    assert data.rows == []
    assert data.namespaces == []
    assert data.column("eval/nrmse") == []


def test_summary_rejects_bad_values_and_keys(new_run):
    run = new_run()
    with pytest.warns(SteadyrunWarning) as record:
        run.summary.update({"ok": 1.0, "lst": [1, 2], "_hidden": 2.0, "obj": object()})
    assert len([w for w in record if issubclass(w.category, SteadyrunWarning)]) == 3
    run.finish()

    data = steadyrun.open_run(run.id)
    assert data.summary == {"ok": 1.0}
    assert sorted(e["key"] for e in _rejected(data)) == ["_hidden", "lst", "obj"]


def test_summary_update_takes_pairs_and_rejects_non_mappings(new_run):
    run = new_run()
    run.summary.update([("pairs", 1)], extra=2)
    with pytest.warns(SteadyrunWarning, match="summary"):
        run.summary.update(42)
    run.finish()

    data = steadyrun.open_run(run.id)
    assert data.summary == {"pairs": 1, "extra": 2}
    assert [e["value_type"] for e in _rejected(data)] == ["int"]


def test_summary_is_separate_from_history_of_the_same_key(new_run):
    run = new_run()
    for i in range(3):
        run.log({"val/loss": 1.0 - i / 10})
    run.summary["val/loss"] = 0.1
    run.finish()

    data = steadyrun.open_run(run.id)
    assert [v for _, v in data.column("val/loss")] == [1.0, 0.9, 0.8]
    assert data.summary == {"val/loss": 0.1}


def test_define_metric_is_recorded(new_run):
    run = new_run()
    run.define_metric("val/loss", goal="minimize")
    run.define_metric("val/acc", step_metric="epoch", goal="max")
    with pytest.warns(SteadyrunWarning, match="goal"):
        run.define_metric("val/f1", goal="best")
    run.finish()

    metrics = steadyrun.open_run(run.id).metrics
    assert metrics["val/loss"]["goal"] == "minimize"
    assert metrics["val/acc"]["goal"] == "max" and metrics["val/acc"]["step_metric"] == "epoch"
    assert "goal" not in metrics["val/f1"]


# ---------------------------------------------------------------------- config

@dataclasses.dataclass
class Optim:
    lr: float = 3e-4
    betas: tuple = (0.9, 0.999)


@dataclasses.dataclass
class TrainConfig:
    model: str = "resnet"
    epochs: int = 10
    optim: Optim = dataclasses.field(default_factory=Optim)


NESTED = {"model": "resnet", "epochs": 10, "optim": {"lr": 3e-4, "betas": [0.9, 0.999]}}


def _omegaconf():
    omegaconf = pytest.importorskip("omegaconf")
    return omegaconf.OmegaConf.create({"model": "resnet", "epochs": 10,
                                       "optim": {"lr": 3e-4, "betas": [0.9, 0.999]}})


def _pydantic():
    pydantic = pytest.importorskip("pydantic")

    class OptimModel(pydantic.BaseModel):
        lr: float = 3e-4
        betas: tuple[float, float] = (0.9, 0.999)

    class TrainModel(pydantic.BaseModel):
        model: str = "resnet"
        epochs: int = 10
        optim: OptimModel = OptimModel()

    return TrainModel()


CONFIGS = {
    "dict": lambda: {"model": "resnet", "epochs": 10,
                     "optim": {"lr": 3e-4, "betas": (0.9, 0.999)}},
    "dataclass": TrainConfig,
    "namespace": lambda: argparse.Namespace(model="resnet", epochs=10,
                                            optim={"lr": 3e-4, "betas": [0.9, 0.999]}),
    "omegaconf": _omegaconf,
    "pydantic": _pydantic,
}


@pytest.mark.parametrize("kind", list(CONFIGS))
@pytest.mark.parametrize("how", ["init", "update"])
def test_config_of_every_accepted_kind_is_kept_nested(new_run, kind, how):
    config = CONFIGS[kind]()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SteadyrunWarning)
        if how == "init":
            run = new_run(config=config)
        else:
            run = new_run()
            run.config.update(config)
    run.finish()

    assert steadyrun.open_run(run.id).config == NESTED


def test_config_updates_merge_and_resolve_interpolations(new_run):
    omegaconf = pytest.importorskip("omegaconf")
    run = new_run(config={"lr": 1e-3})
    run.config.update({"batch": 32})
    run.config["seed"] = 7
    run.config.update(omegaconf.OmegaConf.create({"base": 4, "width": "${base}"}))
    run.config.update({"betas": omegaconf.OmegaConf.create([0.9, 0.999]),
                       "sub": omegaconf.OmegaConf.create({"depth": 2})})
    run.finish()

    assert steadyrun.open_run(run.id).config == {"lr": 1e-3, "batch": 32, "seed": 7,
                                                 "base": 4, "width": 4, "betas": [0.9, 0.999],
                                                 "sub": {"depth": 2}}


def test_secret_looking_config_keys_are_redacted(new_run):
    run = new_run(config={
        "api_key": "abc123", "token": "t0k3n", "password": "hunter2", "WANDB_API_KEY": "k",
        "db": {"password": "x", "host": "db.local"},
        "hub_url": "https://alice:s3cret@example.com/repo",
        "tokenizer": "bpe", "max_tokens": 512, "lr": 0.1,
    })
    run.finish()

    config = steadyrun.open_run(run.id).config
    for key in ("api_key", "token", "password", "WANDB_API_KEY"):
        assert config[key] == REDACTED, key
    assert config["db"] == {"password": REDACTED, "host": "db.local"}
    assert "s3cret" not in config["hub_url"] and "alice" not in config["hub_url"]
    assert config["hub_url"].endswith("@example.com/repo")
    assert config["tokenizer"] == "bpe" and config["max_tokens"] == 512 and config["lr"] == 0.1
    run_dir = steadyrun.open_run(run.id).dir
    on_disk = b"".join(p.read_bytes() for p in (run_dir / "segments").glob("*.jsonl"))
    assert b"hunter2" not in on_disk and b"abc123" not in on_disk and b"s3cret" not in on_disk


def test_unserialisable_config_value_is_skipped_and_recorded(new_run):
    run = new_run()
    with pytest.warns(SteadyrunWarning, match=r"config\.model\.obj.*object"):
        run.config.update({"lr": 0.1, "model": {"obj": object(), "depth": 3}})
    run.finish()

    data = steadyrun.open_run(run.id)
    assert data.config == {"lr": 0.1, "model": {"depth": 3}}
    rejected = _rejected(data)
    assert [(e["key"], e["value_type"]) for e in rejected] == [("config.model.obj", "object")]


def test_config_with_a_cycle_does_not_crash(new_run):
    cyclic: dict = {"lr": 0.1}
    cyclic["self"] = cyclic
    looped: list = [1]
    looped.append(looped)
    run = new_run()
    with pytest.warns(SteadyrunWarning, match="cycle"):
        run.config.update(cyclic)
    with pytest.warns(SteadyrunWarning, match="cycle"):
        run.config.update({"items": looped, "depth": 2})
    run.finish()

    data = steadyrun.open_run(run.id)
    assert data.config["lr"] == 0.1 and data.config["depth"] == 2
    assert data.config["items"] == [1]
    assert len(_rejected(data)) == 2
    assert all("cycle" in e["reason"] for e in _rejected(data))


def test_config_with_a_dataclass_cycle_does_not_crash(new_run):
    @dataclasses.dataclass
    class Node:
        name: str
        parent: object = None

    node = Node("root")
    node.parent = node
    run = new_run()
    with pytest.warns(SteadyrunWarning, match="cycle"):
        run.config.update({"node": node})
    run.finish()
    assert steadyrun.open_run(run.id).config["node"]["name"] == "root"


def test_config_that_is_not_a_mapping_is_rejected(new_run):
    run = new_run()
    with pytest.warns(SteadyrunWarning, match="config"):
        run.config.update(42)
    run.finish()
    data = steadyrun.open_run(run.id)
    assert data.config == {}
    assert len(_rejected(data)) == 1


# ---------------------------------------------------------------------- tables

def test_log_table(new_run):
    run = new_run()
    run.log({"a": 1})
    run.log_table("eval/baseline_vs_ttc", columns=["method", "nrmse"],
                  rows=[["baseline", 0.12], ["ttc", np.float32(0.5)]])
    run.log_table("eval/other", data=[[1, 2]], step=7)
    run.finish()

    tables = steadyrun.open_run(run.id).tables
    assert [t["key"] for t in tables] == ["eval/baseline_vs_ttc", "eval/other"]
    assert tables[0]["columns"] == ["method", "nrmse"]
    assert tables[0]["rows"] == [["baseline", 0.12], ["ttc", 0.5]]
    assert tables[0]["x"] == 0
    assert tables[1]["columns"] == ["c0", "c1"] and tables[1]["x"] == 7


@pytest.mark.parametrize("rows", [[[1, 2, 3]], [[object(), 1]]], ids=["width", "cell"])
def test_bad_table_is_rejected(new_run, rows):
    run = new_run()
    with pytest.warns(SteadyrunWarning, match="'t'"):
        run.log_table("t", columns=["a", "b"], rows=rows)
    run.finish()
    data = steadyrun.open_run(run.id)
    assert data.tables == []
    assert [e["key"] for e in _rejected(data)] == ["t"]


# ---------------------------------------------------------------------- images

def _png_of(data: steadyrun.RunData, index: int):
    from PIL import Image

    rec = data.images[index]
    assert rec["path"].startswith("media/") and rec["path"].endswith(".png")
    path = data.dir / rec["path"]
    assert path.is_file()
    img = Image.open(path)
    img.load()
    assert img.format == "PNG"
    return img


def test_log_image_from_every_kind_of_input(new_run, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from PIL import Image

    figure = Figure(figsize=(2, 1), dpi=50)
    figure.add_subplot().plot([0, 1], [1, 0])
    pil = Image.new("RGB", (6, 4), (255, 0, 0))
    jpg = tmp_path / "photo.jpg"
    Image.new("RGB", (5, 3), (0, 255, 0)).save(jpg)
    png = tmp_path / "plot.png"
    Image.new("L", (7, 2), 128).save(png)

    run = new_run()
    run.log_image("samples/gray", np.linspace(0, 1, 12).reshape(3, 4), caption="gray")
    run.log_image("samples/rgb", np.zeros((4, 5, 3), dtype=np.uint8))
    run.log_image("samples/chw", np.random.default_rng(0).normal(size=(3, 8, 9)))
    run.log_image("samples/pil", pil)
    run.log_image("samples/figure", figure, step=3)
    run.log_image("samples/jpg", jpg)
    run.log_image("samples/png", str(png))
    run.finish()

    data = steadyrun.open_run(run.id)
    assert [i["key"] for i in data.images] == ["samples/gray", "samples/rgb", "samples/chw",
                                               "samples/pil", "samples/figure", "samples/jpg",
                                               "samples/png"]
    sizes = [_png_of(data, i).size for i in range(7)]
    assert sizes[:4] == [(4, 3), (5, 4), (9, 8), (6, 4)]
    assert sizes[4] == (100, 50)
    assert sizes[5:] == [(5, 3), (7, 2)]
    assert data.images[0]["caption"] == "gray"
    assert data.images[4]["x"] == 3
    assert len({i["path"] for i in data.images}) == 7
    assert _rejected(data) == []


@pytest.mark.parametrize("image", ["missing.png", 42, np.zeros((2, 2, 2, 2))],
                         ids=["missing-file", "int", "4-d"])
def test_bad_image_is_rejected_not_raised(new_run, image):
    run = new_run()
    with pytest.warns(SteadyrunWarning, match="'img'"):
        run.log_image("img", image)
    run.finish()
    data = steadyrun.open_run(run.id)
    assert data.images == []
    assert [e["key"] for e in _rejected(data)] == ["img"]


# ---------------------------------------------------------------------- files, alerts

def test_save_copies_the_file_under_files(new_run, tmp_path):
    report = tmp_path / "report.md"
    report.write_text("# results\n")
    run = new_run()
    dest = run.save(report)
    report.write_text("changed later\n")
    run.save(report, name="sub/renamed.md")
    run.finish()

    data = steadyrun.open_run(run.id)
    assert [f["path"] for f in data.files] == ["files/report.md", "files/sub/renamed.md"]
    assert (data.dir / "files" / "report.md").read_text() == "# results\n"
    assert (data.dir / "files" / "sub" / "renamed.md").read_text() == "changed later\n"
    assert dest == (data.dir / "files" / "report.md").resolve()


def test_save_rejects_missing_files_and_escaping_names(new_run, tmp_path):
    src = tmp_path / "a.txt"
    src.write_text("x")
    run = new_run()
    with pytest.warns(SteadyrunWarning):
        assert run.save(tmp_path / "nope.txt") is None
    with pytest.warns(SteadyrunWarning, match="escapes"):
        assert run.save(src, name="../../evil.txt") is None
    run.finish()

    data = steadyrun.open_run(run.id)
    assert data.files == []
    assert len(_rejected(data)) == 2
    assert not (data.dir.parent / "evil.txt").exists()


def test_alert(new_run):
    run = new_run()
    run.alert("loss diverged", "nan at step 1200", level="error")
    run.alert("note")
    with pytest.warns(SteadyrunWarning, match="level"):
        run.alert("odd", level="LOUD")
    run.finish()

    alerts = steadyrun.open_run(run.id).alerts
    assert [(a["title"], a["text"], a["level"]) for a in alerts] == [
        ("loss diverged", "nan at step 1200", "ERROR"), ("note", "", "WARN"),
        ("odd", "", "WARN")]


# ---------------------------------------------------------------------- lifecycle

def test_context_manager_finishes_the_run(sr_root):
    with steadyrun.init(mode="local") as run:
        run.log({"a": 1})
    data = steadyrun.open_run(run.id)
    assert data.state == "finished"
    assert data.rows[0]["a"] == 1


def test_exception_in_context_manager_fails_the_run_and_propagates(sr_root):
    with pytest.raises(ValueError, match="boom"):
        with steadyrun.init(mode="local") as run:
            run.log({"a": 1})
            raise ValueError("boom")

    data = steadyrun.open_run(run.id)
    assert data.state == "failed"
    assert data.manifest["exit_code"] == 1
    assert any("ValueError: boom" in a["text"] for a in data.alerts)
    assert data.rows[0]["a"] == 1


def test_finish_is_idempotent_and_log_after_finish_is_ignored(new_run):
    run = new_run()
    run.log({"a": 1})
    run.finish()
    run.finish()
    with pytest.warns(SteadyrunWarning, match="finish"):
        run.log({"a": 2})
    data = steadyrun.open_run(run.id)
    assert len(data.rows) == 1
    assert data.state == "finished"


def test_summary_and_config_after_finish_are_kept_and_said(new_run):
    """They used to vanish without a word. The run's segment stays sealed (its last
    record says how the run ended); the late values go into a segment of their own."""
    run = new_run()
    run.log({"a": 1})
    run.finish()
    with pytest.warns(SteadyrunWarning, match="after finish"):
        run.summary["final/acc"] = 0.97
    run.config.update({"note": "set late"})
    with pytest.warns(SteadyrunWarning, match="finish"):
        run.log({"a": 2})
    data = steadyrun.open_run(run.id)
    assert data.summary["final/acc"] == 0.97
    assert data.config["note"] == "set late"
    assert [r["a"] for r in data.rows] == [1]
    assert any(e["type"] == "rejected" and e["key"] == "log" for e in data.events)
    assert data.state == "finished"
    owner = [info for info in data.segments.values() if info["role"] == "owner"]
    assert owner and all(info["closed"] for info in data.segments.values())


def test_finish_with_an_exit_code_marks_failed(new_run):
    run = new_run()
    run.finish(exit_code=3)
    data = steadyrun.open_run(run.id)
    assert data.state == "failed" and data.manifest["exit_code"] == 3


def test_init_metadata_reaches_the_manifest(new_run):
    run = new_run(project="p", name="n", group="g", job_type="train", notes="hello",
                  tags={"model": "unet", "data": "era5"})
    run.finish()
    manifest = steadyrun.open_run(run.id).manifest
    assert (manifest["project"], manifest["name"], manifest["group"]) == ("p", "n", "g")
    assert manifest["job_type"] == "train" and manifest["notes"] == "hello"
    assert manifest["tags"] == ["model:unet", "data:era5"]


def test_init_rejects_unknown_arguments_and_modes(sr_root):
    with pytest.raises(TypeError, match="projet"):
        steadyrun.init(mode="local", projet="typo")
    with pytest.raises(ValueError, match="mode"):
        steadyrun.init(mode="sometimes")
    assert not (sr_root / "runs").exists()


# ---------------------------------------------------------------------- disabled mode

def _exercise(run, src) -> None:
    """Every call of the API once, bad input included."""
    run.log({"a": 1})
    run.log({"a": "bad"})
    run.log({"a": 2}, step=5, commit=False)
    run.summary.update({"s": 1})
    run.summary["t"] = 2
    run.log_summary({"u": 3}, prefix="eval")
    run.config.update({"lr": 0.1})
    run.define_metric("a", goal="min")
    run.log_table("t", columns=["a"], rows=[[1]])
    run.log_image("img", np.zeros((2, 2)))
    run.save(src)
    run.alert("x")
    run.flush()
    run.finish()


@pytest.mark.parametrize("how", ["argument", "STEADYRUN_MODE", "WANDB_MODE"])
def test_disabled_mode_writes_nothing(sr_root, monkeypatch, tmp_path_factory, how):
    src = tmp_path_factory.mktemp("outside-root") / "file.txt"
    src.write_text("x")
    if how == "argument":
        kwargs = {"mode": "disabled"}
    else:
        monkeypatch.setenv(how, "disabled")
        kwargs = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error", SteadyrunWarning)
        with steadyrun.init(config={"lr": 1}, **kwargs) as run:
            assert not run
            _exercise(run, src)
    assert run.state_dict() == {}
    assert run.id is None
    assert sorted(p.name for p in sr_root.iterdir()) == []
    assert steadyrun.list_runs() == []


def test_mode_argument_beats_the_environment(sr_root, monkeypatch):
    monkeypatch.setenv("STEADYRUN_MODE", "disabled")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run = steadyrun.init(mode="local")
    run.log({"a": 1})
    run.finish()
    assert steadyrun.open_run(run.id).rows[0]["a"] == 1


def test_steadyrun_mode_beats_wandb_mode(sr_root, monkeypatch):
    monkeypatch.setenv("STEADYRUN_MODE", "local")
    monkeypatch.setenv("WANDB_MODE", "disabled")
    run = steadyrun.init()
    run.finish()
    assert steadyrun.open_run(run.id).manifest["mode"] == "local"


# ---------------------------------------------------------------------- state_dict, resume

def test_state_dict_holds_run_id_and_namespace_steps(new_run):
    run = new_run()
    for _ in range(4):
        run.log({"train/loss": 0.1, "loss": 1.0})
    run.log({"val/acc": 0.9}, step=500)
    state = run.state_dict()
    run.finish()

    assert state["run_id"] == run.id
    assert state["steps"] == {"train/step": 3, "step": 3, "val/step": 500}
    assert state["global_step"] == 4
    json.dumps(state)  # it goes into checkpoints


def test_resume_from_state_dict_of_another_process(sr_root, run_python):
    proc = run_python(
        """
        import json, steadyrun
        run = steadyrun.init(mode="local", name="pretrain")
        for i in range(5):
            run.log({"train/loss": 1.0 / (i + 1)})
        run.log({"val/acc": 0.5}, step=10)
        print(json.dumps(run.state_dict()))
        run.finish()
        """
    )
    state = json.loads(proc.stdout)

    with warnings.catch_warnings():
        warnings.simplefilter("error", SteadyrunWarning)
        run = steadyrun.init(mode="local", resume=state)
        assert run.id == state["run_id"]
        for i in range(5, 10):
            run.log({"train/loss": 1.0 / (i + 1)})
        run.log({"val/acc": 0.7}, step=20)
        run.finish()

    data = steadyrun.open_run(state["run_id"])
    assert [s for s, _ in data.column("train/loss")] == list(range(10))
    assert data.column("val/acc") == [(10, 0.5), (20, 0.7)]
    assert [e for e in data.events if e["type"] == "step_regression"] == []
    pids = {s["pid"] for s in data.segments.values()}
    assert len(data.segments) == 2 and len(pids) == 2 and os.getpid() in pids
    assert data.manifest["name"] == "pretrain"
    assert data.state == "finished"
    assert len(list((sr_root / "runs").iterdir())) == 1


def test_resume_by_run_id_continues_the_steps(sr_root, new_run):
    first = new_run()
    for i in range(3):
        first.log({"a/x": i})
    first.finish()

    second = new_run(resume=first.id)
    assert second.id == first.id
    second.log({"a/x": 3})
    second.finish()

    data = steadyrun.open_run(first.id)
    assert data.column("a/x") == [(0, 0), (1, 1), (2, 2), (3, 3)]
    assert [r["_x"] for r in data.rows] == [0, 1, 2, 3]


def test_resume_after_a_crash_continues_after_the_last_row(sr_root, run_python):
    proc = run_python(
        """
        import os, signal, steadyrun
        run = steadyrun.init(mode="local")
        for i in range(7):
            run.log({"a/x": i})
        run.flush()
        print(run.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        check=False,
    )
    run_id = proc.stdout.strip()
    assert steadyrun.open_run(run_id).state == "crashed"

    run = steadyrun.init(mode="local", resume=run_id)
    run.log({"a/x": 7})
    run.finish()

    data = steadyrun.open_run(run_id)
    assert [s for s, _ in data.column("a/x")] == list(range(8))
    assert data.state == "finished"


def test_resuming_a_run_that_is_not_there_is_said(sr_root):
    """`resume="doesnotexist"` created that run without a word."""
    with pytest.raises(FileNotFoundError, match="no run 'doesnotexist' under"):
        steadyrun.init(mode="local", resume="doesnotexist", strict=True)
    with pytest.warns(SteadyrunWarning, match="Starting a NEW run"):
        run = steadyrun.init(mode="local", resume="doesnotexist")
    assert run.id != "doesnotexist"
    run.finish()
    assert not (sr_root / "runs" / "doesnotexist").exists()


def test_resume_words_follow_wandb(sr_root):
    with pytest.raises(ValueError, match="resume='must'"):
        steadyrun.init(mode="local", id="abc", resume="must")
    with pytest.raises(ValueError, match="needs id="):
        steadyrun.init(mode="local", resume="never")
    run = steadyrun.init(mode="local", id="abc", resume="allow")  # absent: started
    run.log({"x": 1.0})
    run.finish()
    with pytest.raises(ValueError, match="resume='never'"):
        steadyrun.init(mode="local", id="abc", resume="never")
    again = steadyrun.init(mode="local", id="abc", resume="must")  # present: continued
    again.log({"x": 2.0})
    again.finish()
    assert [s for s, _ in steadyrun.open_run("abc").column("x")] == [0, 1]


def test_invalid_run_ids_are_refused(sr_root):
    for bad in ("a/b", "../up", "-dash", "x" * 65, "sp ace", "ünï"):
        with pytest.raises(ValueError, match=r"1 to 64 characters of \[A-Za-z0-9_-\]"):
            steadyrun.init(mode="local", resume=bad)
        with pytest.raises(ValueError, match="1 to 64 characters"):
            steadyrun.init(mode="local", id=bad)
    with pytest.raises(ValueError, match="name two runs"):
        steadyrun.init(mode="local", id="one", resume="two")
    assert not (sr_root / "runs").exists()


def test_a_chosen_id_names_the_run_and_continues_it(sr_root):
    """Seed 002 names its runs itself (`run_20251022_123456`)."""
    run = steadyrun.init(mode="local", id="run_20251022_123456")
    run.log({"a/x": 1.0})
    run.finish()
    again = steadyrun.init(mode="local", id="run_20251022_123456")
    again.log({"a/x": 2.0})
    again.finish()
    assert run.id == again.id == "run_20251022_123456"
    data = steadyrun.open_run("run_20251022_123456")
    assert data.dir == sr_root / "runs" / "run_20251022_123456"
    assert [s for s, _ in data.column("a/x")] == [0, 1]  # steps continue
    assert data.manifest["resumes"] == 1
