"""`steadyrun compare` (read/compare.py, cli/compare.py) and run selection
(read/select.py) over real runs: deltas and better/worse marks against the first column,
`tag:` / `group:` sets as mean ± std with n, `latest`, prefixes, the config and metadata
that differ, the namespaces, and one-line errors."""

from __future__ import annotations

import math

import pytest
from compare_helpers import World, cli, cli_json, cli_process, make_world

from steadyrun.read.select import SelectError, is_many, select_runs


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("compare"))


def _metric(result: dict, key: str) -> dict:
    return next(m for m in result["metrics"] if m["key"] == key)


def test_deltas_and_marks_against_a_set_of_seeds(world: World) -> None:
    result = cli_json(world.root, "compare", "tag:base", "better1", "worse1")
    base, better, worse = result["columns"]
    assert base["many"] and base["n"] == 3 and base["label"] == "tag:base"
    assert base["runs"] == ["base-s0", "base-s1", "base-s2"]  # oldest first
    assert (better["runs"], worse["runs"]) == (["better1"], ["worse1"])

    acc = _metric(result, "val/acc")  # maximize; best over the rows (no summary value)
    assert acc["goal"] == "maximize" and acc["source"] == "best"
    mean = acc["values"][0]
    assert mean["n"] == 3
    assert mean["mean"] == pytest.approx(0.81) and mean["std"] == pytest.approx(0.01)
    assert acc["values"][1:] == [pytest.approx(0.90), pytest.approx(0.70)]
    assert acc["delta"] == [None, pytest.approx(0.09), pytest.approx(-0.11)]
    assert acc["rel"][1] == pytest.approx(0.09 / 0.81)
    assert acc["mark"] == [None, "better", "worse"]

    loss = _metric(result, "val/loss")  # a min summary: lower is better
    assert loss["goal"] == "minimize"
    assert loss["delta"] == [None, pytest.approx(-0.11), pytest.approx(0.09)]
    assert loss["mark"] == [None, "better", "worse"]

    f1 = _metric(result, "eval/f1")  # a summary value without a goal: deltas, no marks
    assert f1["source"] == "summary" and f1["goal"] is None
    assert f1["delta"] == [None, pytest.approx(0.09), pytest.approx(-0.11)]
    assert f1["mark"] == [None, None, None]
    same = _metric(result, "eval/n")
    assert same["delta"] == [None, 0, 0] and same["mark"] == [None, None, None]


def test_config_and_metadata_that_differ(world: World) -> None:
    result = cli_json(world.root, "compare", "tag:base", "better1", "worse1")
    config = {r["key"]: r["values"] for r in result["config"]}
    assert config["lr"] == [pytest.approx(1e-3), pytest.approx(3e-3), pytest.approx(1e-2)]
    assert config["seed"] == [{"values": [0, 1, 2]}, 0, 0]  # differs inside the set
    assert "batch_size" not in config and "model.depth" not in config  # the same everywhere
    meta = {r["key"]: r["values"] for r in result["metadata"]}
    commits = meta["git.commit"]
    assert isinstance(commits[0], str) and commits[1] == commits[2] != commits[0]
    assert meta["command"][1:] == ["train.py --lr 0.003", "train.py --lr 0.01"]
    assert "host" not in meta  # one machine


def test_namespaces_final_best_and_step(world: World) -> None:
    result = cli_json(world.root, "compare", "base-s1", "better1")
    assert [c["many"] for c in result["columns"]] == [False, False]
    val = next(ns for ns in result["namespaces"] if ns["namespace"] == "val")
    assert val["step_metric"] == "val/step" and val["step"] == [40, 40]
    acc = next(k for k in val["keys"] if k["key"] == "val/acc")
    assert acc["final"] == [pytest.approx(0.81), pytest.approx(0.89)]
    assert acc["best"] == [pytest.approx(0.82), pytest.approx(0.90)]
    assert acc["best_step"] == [30, 30]
    train = next(ns for ns in result["namespaces"] if ns["namespace"] == "train")
    assert train["step"] == [4, 4]
    assert "best" not in train["keys"][0]  # no goal: final only
    single = _metric(result, "val/acc")
    assert single["values"] == [pytest.approx(0.82), pytest.approx(0.90)]
    assert single["mark"] == [None, "better"]


def test_text_output(world: World) -> None:
    code, out, err = cli(world.root, "compare", "tag:base", "better1", "worse1")
    assert code == 0, err
    assert "tag:base (n=3) (reference)" in out
    assert "0.81 ± 0.01 (n=3)" in out
    assert "+0.09 (+11.1%) better" in out and "-0.11 (-13.6%) worse" in out
    for title in ("metrics", "config that differs", "metadata that differs", "namespaces"):
        assert title in out
    assert "0 | 1 | 2" in out  # the seeds of the set


def test_refs_prefix_latest_group(world: World) -> None:
    result = cli_json(world.root, "compare", "group:g-base", "bet", "latest")
    cols = result["columns"]
    assert cols[0]["runs"] == ["base-s0", "base-s1", "base-s2"] and cols[0]["many"]
    assert cols[1]["runs"] == ["better1"] and cols[1]["ref"] == "bet"
    assert cols[2]["runs"] == [world.order[-1]]  # newest by created_at


def test_select_runs(world: World) -> None:
    root = world.root
    assert [p.name for p in select_runs("tag:base", root)] == ["base-s0", "base-s1", "base-s2"]
    assert [p.name for p in select_runs("group:g-base", root)] == ["base-s0", "base-s1",
                                                                   "base-s2"]
    assert [p.name for p in select_runs("latest", root)] == [world.order[-1]]
    assert [p.name for p in select_runs("wor", root)] == ["worse1"]
    assert [p.name for p in select_runs(str(root / "runs" / "better1"), root)] == ["better1"]
    assert is_many("tag:x") and is_many("group:x") and not is_many("latest")
    for bad in ("tag:nope", "group:nope", "zzz", "base-s", "tag:"):
        with pytest.raises(SelectError):
            select_runs(bad, root)
    with pytest.raises(SelectError, match="no runs"):
        select_runs("latest", root / "empty")


@pytest.mark.parametrize("args, said", [
    (("missing-run", "better1"), "no run 'missing-run'"),
    (("base-s", "better1"), "ambiguous"),
    (("tag:nope", "better1"), "no run with tag 'nope'"),
    (("better1",), "at least two runs"),
])
def test_errors_are_one_line_exit_2(world: World, args: tuple[str, ...], said: str) -> None:
    code, out, err = cli(world.root, "compare", *args)
    assert code == 2 and said in err
    assert len(err.strip().splitlines()) == 1 and out == ""


def test_a_missing_run_in_a_fresh_process(world: World) -> None:
    proc = cli_process(world.root, "compare", "better1", "nosuchrun")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"steadyrun: no run 'nosuchrun' under {world.root / 'runs'}"]
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_relative_delta_of_a_zero_reference_is_none() -> None:
    from steadyrun.read.compare import compare_digests

    def digest(rid: str, value: float) -> dict:
        return {"id": rid, "summary": {"m": value}, "metrics": {"m": {"goal": "minimize"}},
                "keys": {}, "steps": {}, "config": {}, "metadata": {}}

    out = compare_digests([("a", [digest("a", 0.0)], False), ("b", [digest("b", 1.0)], False),
                           ("c", [digest("c", 0.0)], False)])
    m = out["metrics"][0]
    assert m["delta"] == [None, 1.0, 0.0] and m["rel"] == [None, None, None]
    assert m["mark"] == [None, "worse", "same"]
    assert not math.isnan(m["values"][0])
