"""The opt-in W&B row budget: the rule alone, then end to end in W&B's own transaction log.

The rule (DESIGN.md 4, "Row budget") is a function of the rows alone: each row carries the
time it was logged, and `RowBudget.keep(t, values)` never reads a clock. So the unit tests
drive `t` through window boundaries by hand, and the end-to-end scripts set the time their
rows carry (the training side's row clock), so where a window boundary falls is part of
the script, never of the machine's load. The same script runs straight through and with
its sidecar killed (with its wandb-core) mid-run: W&B must get the same rows, summary and
count either way.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from wandb_helpers import (
    assert_steps_strictly_increase,
    run_script,
    sink_status,
    wandb_files,
    wandb_log,
)

import steadyrun
from steadyrun.ship.wandb.budget import RowBudget, defined_metrics


# ---------------------------------------------------------------------- the rule alone
def test_the_first_row_of_each_kind_in_each_window_ships() -> None:
    budget = RowBudget(60)  # windows of 1 s: [10, 11) is one, 11.0 starts the next

    def train(loss: float) -> dict:
        return {"train/loss": loss, "train/step": int(loss)}

    val = {"val/loss": 0.5, "val/step": 0}
    judged = [
        (10.0, train(0), True),  # the first row of its kind
        (10.5, train(1), False),  # the same window
        (10.99, val, True),  # another kind has windows of its own
        (10.999999, train(2), False),  # just before the boundary
        (11.0, train(3), True),  # on the boundary: the next window
        (11.01, {**train(4), "train/extra": 1.0}, True),  # a new key ships mid-window
        (11.02, train(5), False),
        (14.7, train(6), True),  # windows without rows are skipped
        (14.9, train(7), False),
    ]
    assert [budget.keep(t, row) for t, row, _ in judged] == [keep for *_, keep in judged]
    assert budget.sampled_out == 4
    # The held-back last values: train/loss's (7) and its step's; val's last row shipped.
    assert budget.final_summary() == {"train/loss": 7, "train/step": 7}


def test_the_last_value_of_every_key_is_held_for_the_summary_until_a_row_ships_it() -> None:
    budget = RowBudget(120)  # windows of 0.5 s
    assert budget.keep(0.1, {"x": 1, "y": 1})
    assert not budget.keep(0.2, {"x": 2})
    assert budget.final_summary() == {"x": 2}
    assert not budget.keep(0.3, {"x": 3, "y": 3})
    assert budget.final_summary() == {"x": 3, "y": 3}
    assert budget.keep(0.5, {"x": 4})  # W&B's last x is now its true last value
    assert budget.final_summary() == {"y": 3}
    budget.summary_set(["y"])  # an explicit summary is newer than any held-back row
    assert budget.final_summary() == {}
    assert budget.sampled_out == 2
    with pytest.raises(ValueError, match="wandb_rows_per_min"):
        RowBudget(0)


def test_a_budget_given_the_judged_records_again_goes_on_as_one_budget_would() -> None:
    """What a restarted sidecar's budget is handed (Shipper._replay: the records the killed
    one judged): cut anywhere, the rest is judged, counted and summarised as by one."""
    recs: list[dict] = [{"k": "metric", "key": "val/acc", "goal": "maximize"}]
    for i in range(40):  # train rows 0.3 s apart in windows of 1 s; a val row every 2nd
        recs.append({"k": "row", "t": 100 + 0.3 * i,
                     "v": {"train/loss": float(i), "train/step": i}})
        if i % 2 == 0:  # a rising, noisy accuracy: a new best now and then, mid-window too
            recs.append({"k": "row", "t": 100.05 + 0.3 * i,
                         "v": {"val/acc": i / 100 + i * 7 % 11 / 50, "val/step": i}})
        if i == 20:
            recs.append({"k": "summary", "t": 106.05, "v": {"train/loss": -1.0}})

    def judge(budget: RowBudget, rec: dict) -> bool | None:  # what WandbSink does live
        if rec["k"] == "row":
            return budget.keep(rec["t"], rec["v"])
        budget.replay(rec)  # a summary or a metric definition: the same bookkeeping
        return None

    one = RowBudget(60)
    whole = [judge(one, rec) for rec in recs]
    assert 0 < one.sampled_out < 40 and one.final_summary()
    for cut in range(len(recs) + 1):
        again = RowBudget(60)
        for rec in recs[:cut]:
            again.replay(rec)
        assert [judge(again, rec) for rec in recs[cut:]] == whole[cut:], cut
        assert again.sampled_out == one.sampled_out, cut
        assert again.final_summary() == one.final_summary(), cut


def test_globs_and_summary_rules_protect_bests_and_their_summaries() -> None:
    budget = RowBudget(60)  # one row a second per kind
    budget.watch_best("val/*", "minimize", None)
    budget.watch_best("val/acc", None, "min,max")
    budget.watch_best("train/loss", None, "mean")
    rows = [{"val/loss": 1.0, "val/acc": 0.5, "train/loss": 3.0, "val/step": 0,
             "train/step": 0}]
    rows += [{"val/loss": 0.9, "val/acc": 0.5, "train/loss": 2.0, "val/step": 1,
              "train/step": 1},  # a new min of val/loss (the glob's goal)
             {"val/loss": 0.95, "val/acc": 0.9, "train/loss": 1.0, "val/step": 2,
              "train/step": 2},  # a new max of val/acc
             {"val/loss": 0.95, "val/acc": 0.1, "train/loss": 0.5, "val/step": 3,
              "train/step": 3},  # a new min of val/acc
             {"val/loss": 0.99, "val/acc": 0.5, "train/loss": 0.1, "val/step": 4,
              "train/step": 4}]  # nothing new: held back
    kept = [budget.keep(0.5, row) for row in rows]  # all inside one window
    assert kept == [True, True, True, True, False]
    # keys under a rule (val/* by its glob, train/loss by "mean") are left to W&B
    assert budget.final_summary() == {"train/step": 4}


# ---------------------------------------------------------------------- end to end
SCRIPT = """
    import sys, time
    import orjson, psutil
    import steadyrun
    import steadyrun.log.run as row_clock
    from steadyrun.ship.wandb.sink import WandbSink

    # Rows carry the times this script gives them: windows (0.25 s) start at T0 + k / 4.
    # (log/run.py's row clock; _check_wandb fails if rows stop reading it.)
    T0 = float(int(time.time()))
    now = [T0]
    row_clock._time = lambda: now[0]

    plan, marks = [], {}  # (time into the run, row); where a kill may fall
    for i in range(200):  # 4 train rows a window, at 0.01, 0.0725, 0.135, 0.1975 into it
        base = i / 16
        row = {"train/loss": float(i)}
        if i == 137:
            row["train/extra"] = 1.0  # a key first seen mid-window
        plan.append((base + 0.01, row))
        if i < 100:
            plan.append((base + 0.02, {"early/x": float(i)}))  # a key of the first half only
        if i % 40 == 37:  # a burst after a window's 2nd train row: a first, a best, a worse
            b = i // 40
            for j, acc in enumerate((0.1 * b + 0.01, 0.1 * b + 0.05, 0.1 * b + 0.02)):
                plan.append((base + 0.03 + 0.001 * j, {"val/acc": acc}))
                if i == 117 and j == 1:  # mid-burst, mid-window for train and val rows
                    marks["shipped"] = len(plan)  # right after a row W&B gets
        if i == 118:
            marks["held"] = len(plan)  # after two rows held back (val and train)

    run = steadyrun.init(project="budget", wandb_rows_per_min=240)
    run.define_metric("val/acc", goal="maximize")

    def log(rows):
        for dt, row in rows:
            now[0] = T0 + dt
            run.log(row)

    def wait_for(what, ok):
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                st = orjson.loads((run.dir / "sinks" / "wandb.json").read_bytes())
                judged = orjson.loads((run.dir / "sinks" / "wandb.cursor").read_bytes())["rows"]
            except (FileNotFoundError, orjson.JSONDecodeError, KeyError):
                st, judged = {}, 0
            if ok(st, judged):
                return st
            time.sleep(0.02)
        sys.exit(f"timed out waiting for {what}")

    kill = sys.argv[1] if len(sys.argv) > 1 else None
    split = marks.get(kill, len(plan))
    log(plan[:split])
    if kill:
        run.flush()
        # Once the sidecar has judged every row so far and W&B's own log holds the last
        # one it shipped (`_step` marks["shipped"] - 1): SIGKILL it with its wandb-core.
        # The restarted one resumes after that batch ("shipped"), or ships again the part
        # of it W&B lacks, which holds only rows held back ("held").
        durable = WandbSink(run.dir, "offline").durable_seq
        st = wait_for("the first sidecar", lambda st, n: st.get("state") == "shipping"
                      and n >= split and durable() == marks["shipped"] - 1)
        procs = [psutil.Process(st["pid"])]
        procs += procs[0].children(recursive=True)
        for proc in procs:
            proc.send_signal(9)
        print(f"KILLED={len(procs)}", flush=True)
        # The owner's heartbeat starts a new sidecar, which ships the rest.
        wait_for("the restarted sidecar", lambda new, n: new.get("state") == "shipping"
                 and new.get("pid") not in (None, st["pid"]))
    log(plan[split:])
    run.finish()
"""


def _expected_kept(values: dict) -> bool:
    """What W&B gets of the script's rows, by the rule: per kind, the first row of each
    window (train and early rows: every 4th, from the first); a row with a new key
    (train/extra); every new best of val/acc (the first two rows of each burst)."""
    if "train/loss" in values:
        return values["train/loss"] % 4 == 0 or "train/extra" in values
    if "early/x" in values:
        return values["early/x"] % 4 == 0
    return round(values["val/acc"] * 100) % 10 in (1, 5)


def _check_wandb(rdir: Path) -> None:
    """W&B holds exactly the rows the rule keeps, each once, at its own `_step`, and the
    true last value of each key, whatever the kill left to the restarted sidecar."""
    local = [r for r in steadyrun.open_run(rdir).records if r["k"] == "row"]
    assert len(local) == 200 + 100 + 3 * 5  # the local log keeps every row
    # The scripted clock took: the train rows fall four to a window, window after window.
    train = [r for r in local if "train/loss" in r["v"]]
    first = int(train[0]["t"] // 0.25)
    assert [int(r["t"] // 0.25) - first for r in train] == [i // 4 for i in range(200)]

    log = wandb_log(rdir)
    assert_steps_strictly_increase(log)
    index = {tuple(sorted(r["v"].items())): n for n, r in enumerate(local)}
    shipped = []  # each W&B row is one local row, whole, at the row's sequence number
    for row in log.history:
        n = index[tuple(sorted((k, v) for k, v in row.items() if not k.startswith("_")))]
        assert row["_step"] == n, (row, local[n])
        shipped.append(n)
    assert len(set(shipped)) == len(shipped)  # no row twice
    want = [n for n, r in enumerate(local) if _expected_kept(r["v"])]
    assert shipped == want, (sorted(set(shipped) - set(want)), sorted(set(want) - set(shipped)))
    assert len(want) == 51 + 25 + 2 * 5

    # The summary: the true last value of each key without a rule (both held back), W&B's
    # own best of the goal metric, and the count of rows W&B did not get.
    assert log.summary["train/loss"] == 199.0
    assert log.summary["early/x"] == 99.0
    assert log.summary["train/extra"] == 1.0
    assert log.summary["steadyrun/sampled_out"] == len(local) - len(want) == 229
    assert sink_status(rdir)["sampled_out"] == 229


def test_budget_thins_wandb_and_keeps_every_row_locally(tmp_path: Path) -> None:
    done = run_script(tmp_path, SCRIPT, timeout=120)
    _check_wandb(done.rdir)
    log = wandb_log(done.rdir)
    assert log.summary["val/acc"] == {"max": pytest.approx(0.45)}
    assert len(wandb_files(done.rdir)) == 1
    assert steadyrun.open_run(done.rdir).manifest["wandb_rows_per_min"] == 240


@pytest.mark.parametrize("after", ["shipped", "held"])
def test_budget_holds_across_a_sidecar_killed_and_restarted(tmp_path: Path, after: str) -> None:
    """A SIGKILL loses the sidecar's memory of what it held back; the restarted one must
    still ship no row twice, hold back what the first would have, and count and summarise
    the rows the first held back."""
    done = run_script(tmp_path, SCRIPT, args=[after], timeout=150)
    assert int(done.value("KILLED")) >= 2, done.output  # the sidecar and its wandb-core
    assert "restarting it" in done.stderr, done.output
    rdir = done.rdir
    assert len(wandb_files(rdir)) == 2  # the killed piece, then the restarted sidecar's
    _check_wandb(rdir)
    # The restarted piece was told val/acc's goal again: its summary is the best, not the
    # last value (W&B keeps metric definitions per piece).
    assert wandb_log(rdir).summary["val/acc"] == {"max": pytest.approx(0.45)}
    assert sink_status(rdir)["state"] == "finished"
    assert orjson.loads((rdir / "sinks" / "wandb.cursor").read_bytes())["rows"] == 315


def test_a_bad_budget_is_said_and_ignored_or_refused_in_strict_mode(sr_root: Path,
                                                                     capsys) -> None:
    run = steadyrun.init(mode="local", wandb_rows_per_min=-5)
    run.finish()
    assert "wandb_rows_per_min must be a number > 0" in capsys.readouterr().err
    assert "wandb_rows_per_min" not in steadyrun.open_run(run.id).manifest
    with pytest.raises(ValueError, match="wandb_rows_per_min"):
        steadyrun.init(mode="local", wandb_rows_per_min="often", strict=True)


def test_metric_definitions_are_found_for_a_restarted_sidecar(sr_root: Path) -> None:
    run = steadyrun.init(mode="local")
    for i in range(1000):
        run.log({"train/loss": float(i)})
    run.define_metric("val/acc", goal="maximize")
    run.define_metric("val/loss", summary="min")
    run.finish()
    found = {rec["key"]: (rec.get("goal"), rec.get("summary")) for rec in defined_metrics(run.dir)}
    assert found == {"val/acc": ("maximize", None), "val/loss": (None, "min")}
