"""`steadyrun leaderboard` (read/leaderboard.py, cli/leaderboard.py) over real runs: the
ranking by a goal metric, the runs lacking it listed last, the config keys that vary,
every output format, the metric chosen or refused in one line; and the same table put
into a run by `run.log_leaderboard` and `--to-run` (a finished run: through attach, and
on to W&B)."""

from __future__ import annotations

import csv
import io

import orjson
import pytest
from compare_helpers import World, cli, cli_json, cli_process, make_world

import steadyrun
from steadyrun.read.leaderboard import LeaderboardError, leaderboard, table
from steadyrun.store.values import SteadyrunWarning

RANKED = ["better1", "base-s1", "base-s2", "base-s0", "worse1"]  # val/acc, best first


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("leaderboard"))


def test_ranking_by_a_maximized_metric(world: World) -> None:
    board = cli_json(world.root, "leaderboard", "--project", "main", "--metric", "val/acc")
    assert board["metric"] == "val/acc" and board["goal"] == "maximize"
    ids = [r["id"] for r in board["runs"]]
    assert ids == RANKED + ["lacking1"]  # lacking the metric: listed last, unranked
    assert [r["rank"] for r in board["runs"]] == [1, 2, 3, 4, 5, None]
    first = board["runs"][0]
    assert first["best"] == pytest.approx(0.90) and first["best_step"] == 30
    assert first["final"] == pytest.approx(0.89) and first["step"] == 40
    assert first["state"] == "finished" and first["age"].endswith("s")
    assert board["varying_config"] == ["lr", "seed"]  # batch_size, model.depth: the same
    assert first["config"] == {"lr": pytest.approx(3e-3), "seed": 0}
    assert (board["ranked"], board["unranked"]) == (5, 1)
    assert board["columns"][:9] == ["rank", "run", "name", "best val/acc", "best step",
                                    "final", "step", "state", "age"]


def test_a_min_summary_ranks_lowest_first_and_top_cuts(world: World) -> None:
    board = cli_json(world.root, "leaderboard", "--project", "main", "--metric", "val/loss",
                     "--top", "3")
    assert board["goal"] == "minimize"
    assert [r["id"] for r in board["runs"]] == ["better1", "base-s0", "base-s2"]
    assert board["varying_config"] == ["lr", "seed"]
    solo = cli_json(world.root, "leaderboard", "--tag", "base", "--metric", "val/acc")
    assert [r["id"] for r in solo["runs"]] == ["base-s1", "base-s2", "base-s0"]
    assert solo["varying_config"] == ["seed"]


def test_the_one_goal_metric_is_chosen(world: World) -> None:
    # group g-base defines two goals too; a run set with exactly one: ask the API
    from steadyrun.read.digest import run_digest
    from steadyrun.read.leaderboard import rank

    digests = [run_digest(world.root / "runs" / rid) for rid in RANKED]
    for d in digests:
        d["metrics"].pop("val/loss")
    assert rank(digests)["metric"] == "val/acc"


def test_csv_markdown_and_text(world: World) -> None:
    args = ("leaderboard", "--project", "main", "--metric", "val/acc")
    code, out, err = cli(world.root, *args, "--csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0][:4] == ["rank", "run", "name", "best val/acc"] and rows[0][-2:] == ["lr",
                                                                                        "seed"]
    assert [r[1] for r in rows[1:]] == RANKED + ["lacking1"]
    assert float(rows[1][3]) == pytest.approx(0.90) and rows[-1][0] == ""
    code, out, err = cli(world.root, *args, "--markdown")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("| rank | run | name | best val/acc | best step | final |")
    assert set(lines[1]) <= set("|-") and len(lines) == 2 + 6
    assert lines[2].startswith("| 1 | better1 |")
    code, out, err = cli(world.root, *args)
    assert code == 0, err
    assert "val/acc (maximize): 5 ranked, 1 without it (listed last)" in out
    assert out.index("better1") < out.index("worse1") < out.index("lacking1")


@pytest.mark.parametrize("args, said", [
    (("--project", "main"), "2 metrics have a goal: val/acc (maximize), val/loss "
                            "(minimize); choose one with --metric KEY"),
    (("--project", "other"), "no metric has a goal"),
    (("--project", "nope"), "no runs under"),
    (("--metric", "nosuch"), "nosuch is in none of the"),
    (("--metric", "train/loss"), "train/loss has no goal in any run: give --goal min|max"),
])
def test_a_metric_that_cannot_be_told_is_one_line_exit_2(world: World, args: tuple[str, ...],
                                                         said: str) -> None:
    code, out, err = cli(world.root, "leaderboard", *args)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and said in err, err
    assert err.startswith("steadyrun: leaderboard: ")


def test_no_goal_lists_the_usable_keys_and_goal_ranks_them(world: World) -> None:
    code, _, err = cli(world.root, "leaderboard", "--project", "other")
    assert "eval/f1" in err and "train/loss" in err and "--goal" in err
    board = cli_json(world.root, "leaderboard", "--metric", "train/loss", "--goal", "min",
                     "--project", "main")
    assert board["runs"][0]["id"] in ("base-s0", "better1", "worse1", "lacking1")
    assert board["runs"][0]["best"] == pytest.approx(0.2)


def test_errors_in_a_fresh_process_have_no_traceback(world: World) -> None:
    proc = cli_process(world.root, "leaderboard", "--project", "main")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    proc = cli_process(world.root, "leaderboard", "--metric", "val/acc", "--to-run", "nosuch")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"steadyrun: no run 'nosuch' under {world.root / 'runs'}"]


def test_to_run_adds_the_table_to_a_finished_run(world: World) -> None:
    before = (world.root / "runs" / "worse1" / "run.json").read_bytes()
    code, out, err = cli(world.root, "leaderboard", "--project", "main", "--metric", "val/acc",
                         "--top", "2", "--markdown", "--to-run", "wor", "--key", "eval/board")
    assert code == 0, err
    assert "in run worse1 as the table 'eval/board' (2 rows)" in err
    data = steadyrun.open_run(world.root / "runs" / "worse1")
    assert data.state == "finished"
    assert (world.root / "runs" / "worse1" / "run.json").read_bytes() == before
    [t] = data.tables
    assert t["key"] == "eval/board" and [r[1] for r in t["rows"]] == ["better1", "base-s1"]
    assert t["columns"][3] == "best val/acc"
    writer = data.segments[t["_seg"]]
    assert writer["role"] == "child" and writer["close"]["state"] == "finished"


def test_log_leaderboard_from_a_live_run(world: World, monkeypatch: pytest.MonkeyPatch
                                         ) -> None:
    monkeypatch.setenv("STEADYRUN_METADATA", "0")
    for var in ("STEADYRUN_MODE", "WANDB_MODE", "STEADYRUN_STRICT", "STEADYRUN_CONTEXT"):
        monkeypatch.delenv(var, raising=False)
    run = steadyrun.init(mode="local", dir=world.root, project="live")
    run.log_leaderboard(project="main", metric="val/acc", top=3)
    with pytest.warns(SteadyrunWarning, match="no leaderboard: 2 metrics have a goal"):
        run.log_leaderboard("lb2", project="main")
    run.finish()
    data = steadyrun.open_run(run.dir)
    [t] = data.tables
    expected = table(leaderboard(world.root, project="main", metric="val/acc", top=3))
    assert t["key"] == "leaderboard"
    assert t["columns"] == expected[0]
    assert [r[:8] for r in t["rows"]] == [r[:8] for r in expected[1]]  # the age moves on
    assert any(e.get("type") == "rejected" and e.get("key") == "lb2" for e in data.events)

    strict = steadyrun.init(mode="local", dir=world.root, project="live", strict=True)
    with pytest.raises(ValueError, match="no metric has a goal"):
        strict.log_leaderboard(project="other")
    strict.finish()
    steadyrun.init(mode="disabled").log_leaderboard()  # the inert handle takes it too


def test_leaderboard_api_errors(world: World) -> None:
    with pytest.raises(LeaderboardError, match="goal must be"):
        leaderboard(world.root, metric="val/acc", goal="up")


def test_to_run_reaches_wandb_as_a_table(tmp_path) -> None:
    """A finished offline run gets the leaderboard from `--to-run`: the attached writer's
    own sidecar ships it, and W&B's transaction log holds it as a table."""
    from wandb_helpers import run_script, steadyrun_cli, wandb_log

    done = run_script(tmp_path, """
        import steadyrun
        run = steadyrun.init(project="w", mode="offline", config={"lr": 0.1})
        run.define_metric("val/acc", goal="maximize")
        run.log({"val/acc": 0.5}, step=0)
        run.log({"val/acc": 0.7}, step=1)
        print("RUN=" + run.id)
        run.finish()
    """)
    proc = steadyrun_cli(tmp_path, "leaderboard", "--to-run", done.run_id)
    assert "as the table 'leaderboard' (1 rows)" in proc.stderr
    log = wandb_log(done.rdir)
    [entry] = [r["leaderboard"] for r in log.history if "leaderboard" in r]
    assert entry["_type"] == "table-file" and entry["nrows"] == 1
    files = done.rdir / "wandb"
    stored = next(files.rglob(entry["path"].split("/")[-1]))
    assert orjson.loads(stored.read_bytes())["data"][0][:4] == [1, done.run_id,
                                                                done.run_id, 0.7]
