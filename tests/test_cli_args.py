"""Command-line flags, experiment presets, run names and required tags (seeds 003, 004)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import subprocess

import pytest

import steadyrun
from steadyrun.integrations.presets import PresetError, load_presets

TOML = """
[milan_baseline]
project = "discover-v2"
group = "milan"
tags = ["milan", "baseline"]
notes = "dual encoder baseline"
[milan_baseline.config]
lr = 0.0003
model = { depth = 6 }

[milan_ablation_mlm]
project = "discover-v2"
tags = { ablation = "mlm" }
[milan_ablation_mlm.config]
mlm_weight = 0.3
"""

YAML = """
experiments:
  small:
    project: yaml-proj
    config: {lr: 0.01, model: {width: 64}}
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--model.depth", dest="depth", type=int, default=2)
    steadyrun.add_argparse_args(parser)
    return parser


def test_flags_parse_with_both_spellings_and_tag_styles():
    parser = _parser()
    args = parser.parse_args([])
    assert (args.wandb_project, args.wandb_name, args.wandb_tags, args.wandb_notes,
            args.wandb_group, args.no_wandb, args.experiment) == (None,) * 5 + (False, None)
    args = parser.parse_args(["--wandb_project", "p", "--wandb-name", "n", "--wandb_tags",
                              "a,b", "c", "--wandb_tags", "d", "--wandb_notes", "why",
                              "--wandb-group", "g", "--no_wandb", "--experiment", "x"])
    assert args.wandb_tags == ["a", "b", "c", "d"]
    assert (args.wandb_project, args.wandb_name, args.wandb_notes, args.wandb_group,
            args.no_wandb, args.experiment) == ("p", "n", "why", "g", True, "x")


def test_existing_flags_are_left_alone():
    parser = argparse.ArgumentParser()
    parser.add_argument("--experiment", type=int)
    steadyrun.add_argparse_args(parser)
    assert parser.parse_args(["--experiment", "3"]).experiment == 3


def test_init_from_args_applies_flags_then_the_preset(sr_root, tmp_path):
    presets = tmp_path / "experiments.toml"
    presets.write_text(TOML)
    args = _parser().parse_args(["--experiment", "milan_baseline", "--lr", "0.5",
                                 "--wandb_tags", "run1", "--no_wandb"])
    run = steadyrun.init_from_args(args, presets=presets, tags=["script"])
    assert run.mode == "local"  # --no_wandb: recorded locally, W&B left out
    run.finish()
    data = steadyrun.open_run(run.id)
    assert data.manifest["project"] == "discover-v2" and data.manifest["group"] == "milan"
    assert data.manifest["notes"] == "dual encoder baseline"
    assert data.manifest["tags"] == ["script", "milan", "baseline", "run1"]
    # the parsed arguments are the config; the preset overrides the parser's defaults and
    # adds nested keys, and `--lr 0.5`, given on the command line, beats the preset
    assert data.config == {"lr": 0.5, "depth": 2, "model": {"depth": 6}}

    args = _parser().parse_args(["--experiment", "milan_ablation_mlm", "--wandb_project",
                                 "mine", "--wandb_name", "mlm_0.3", "--no_wandb"])
    run = steadyrun.init_from_args(args, config={"mlm_weight": 0.1, "lr": 1}, presets=presets)
    run.finish()
    data = steadyrun.open_run(run.id)
    assert data.manifest["project"] == "mine" and data.manifest["name"] == "mlm_0.3"
    assert data.manifest["tags"] == ["ablation:mlm"]
    assert data.config == {"mlm_weight": 0.3, "lr": 1}


@pytest.mark.parametrize(("argv", "expected"), [
    (["--experiment", "milan_ablation_mlm", "--mlm_weight", "0.9"], 0.9),
    (["--mlm_weight=0.9", "--experiment", "milan_ablation_mlm"], 0.9),
    (["--experiment", "milan_ablation_mlm", "--mlm", "0.9"], 0.9),  # an abbreviation
    (["--experiment", "milan_ablation_mlm", "-m", "0.9"], 0.9),
    (["--experiment", "milan_ablation_mlm", "-m0.9"], 0.9),
    (["--experiment", "milan_ablation_mlm", "--mlm_weight", "1.0"], 1.0),  # = the default
    (["--experiment", "milan_ablation_mlm"], 0.3),  # the preset beats the default
    (["--mlm_weight", "0.9"], 0.9),
    ([], 1.0),
])
def test_a_flag_on_the_command_line_beats_the_preset(sr_root, tmp_path, argv, expected):
    """Seed 003's CLI: `--experiment milan_ablation_mlm --mlm_weight 0.9` trained with 0.9
    and recorded the preset's 0.3. Parsed from real argv lists."""
    presets = tmp_path / "experiments.toml"
    presets.write_text(TOML)
    parser = argparse.ArgumentParser()
    parser.add_argument("-m", "--mlm_weight", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=3)
    steadyrun.add_argparse_args(parser)
    args = parser.parse_args(argv + ["--no_wandb"])
    run = steadyrun.init_from_args(args, presets=presets)
    run.finish()
    config = steadyrun.open_run(run.id).config
    assert config["mlm_weight"] == expected and config["epochs"] == 3


def test_yaml_presets_and_the_environment_variable(sr_root, tmp_path, monkeypatch):
    path = tmp_path / "presets.yaml"
    path.write_text(YAML)
    monkeypatch.setenv("STEADYRUN_PRESETS", str(path))
    run = steadyrun.init_from_args(_parser().parse_args(["--experiment", "small"]),
                                   mode="local")
    run.finish()
    data = steadyrun.open_run(run.id)
    assert data.manifest["project"] == "yaml-proj"
    assert data.config == {"lr": 0.01, "depth": 2, "model": {"width": 64}}
    assert "small" in load_presets(path)


def test_json_presets_are_read_like_yaml(sr_root, tmp_path):
    """Seed 003 keeps its experiment configs as JSON: JSON is YAML."""
    presets = tmp_path / "experiments.json"
    presets.write_text('{"small": {"project": "json-proj", "config": {"lr": 0.01}}}')
    run = steadyrun.init_from_args(_parser().parse_args(["--experiment", "small"]),
                                   presets=presets, mode="local")
    run.finish()
    data = steadyrun.open_run(run.id)
    assert data.manifest["project"] == "json-proj" and data.config["lr"] == 0.01


def test_preset_errors_name_the_file_the_preset_and_the_field(sr_root, tmp_path):
    good = tmp_path / "p.toml"
    good.write_text(TOML)
    args = _parser().parse_args(["--experiment", "milan_basline"])
    with pytest.raises(PresetError, match=r"unknown experiment 'milan_basline'.*did you mean "
                                          r"'milan_baseline'.*known: milan_ablation_mlm, "
                                          r"milan_baseline"):
        steadyrun.init_from_args(args, presets=good, mode="local")
    bad = tmp_path / "bad.toml"
    bad.write_text('[x]\nprojet = "p"\n')
    with pytest.raises(PresetError, match=r"experiment 'x' in .*bad.toml: unknown field "
                                          r"'projet' \(did you mean 'project'\?\)"):
        load_presets(bad)
    bad.write_text('[x]\ntags = "a,b"\n')
    with pytest.raises(PresetError, match=r"field 'tags' must be list or dict, got str"):
        load_presets(bad)
    bad.write_text('[x\n')
    with pytest.raises(PresetError, match="cannot parse presets file"):
        load_presets(bad)
    with pytest.raises(PresetError, match="does not exist"):
        load_presets(tmp_path / "none.toml")
    with pytest.raises(PresetError, match="needs a presets file"):
        steadyrun.init_from_args(args, mode="local")
    assert list(steadyrun.open_run(r) for r in steadyrun.list_runs()) == []  # none started


def _repo(path):
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@e",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    path.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    subprocess.run(["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=path, check=True,
                   env=env)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_run_name_convention(tmp_path, monkeypatch):
    commit = _repo(tmp_path / "repo")
    monkeypatch.chdir(tmp_path / "repo")
    name = steadyrun.run_name(model="eo1", objective="ar+fm", dataset="lego")
    assert re.fullmatch(rf"eo1_ar\+fm_lego_\d{{8}}_\d{{6}}_{commit[:7]}", name), name
    when = dt.datetime(2026, 1, 23, 14, 30, 52)
    assert steadyrun.run_name(model="vla base", objective="fm", dataset="a/b", when=when,
                              git_short="a1b2c3") == "vla-base_fm_a-b_20260123_143052_a1b2c3"
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    assert steadyrun.run_name(model="m", objective="o", dataset="d").endswith("_nogit")


def test_required_tags(new_run):
    with pytest.raises(ValueError, match=r"missing required tags 'dataset', 'objective'"):
        new_run(tags={"model": "eo1"}, required_tags=["model", "dataset", "objective"])
    with pytest.raises(ValueError, match=r"missing required tag 'model'"):
        new_run(mode="disabled", tags=["baseline"], required_tags=["model"])
    run = new_run(tags={"model": "eo1", "dataset": "lego"}, required_tags=["model", "dataset"])
    assert steadyrun.open_run(run.id).manifest["tags"] == ["model:eo1", "dataset:lego"]
    assert new_run(tags=["baseline"], required_tags=["baseline"]).id
