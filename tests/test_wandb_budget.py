"""The opt-in W&B row budget, checked against W&B's own transaction log and the local log.

The local log must keep every row; W&B gets the first row of each kind of row in each
window, every row that brings a new key or a new best, and the true last values in its
summary.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from wandb_helpers import assert_steps_strictly_increase, run_script, sink_status, wandb_log

import steadyrun
from steadyrun.ship.wandb.budget import defined_metrics
from steadyrun.store.steps import is_step_metric

SCRIPT = """
    import time, steadyrun
    run = steadyrun.init(project="budget", wandb_rows_per_min=240)  # a window of 0.25 s
    run.define_metric("val/acc", goal="maximize")
    for i in range(300):
        row = {"train/loss": 1.0 / (i + 1)}
        if i == 137:
            row["train/extra"] = 1.0  # a key first seen late
        run.log(row)
        if i % 40 == 39:  # a burst inside one window: a first, a new best, a worse one
            b = i // 40
            for acc in (0.1 * b + 0.01, 0.1 * b + 0.05, 0.1 * b + 0.02):
                run.log({"val/acc": acc})
        time.sleep(0.005)
    # The last value, held back: logged right after another row of its kind, early in
    # a window (windows are t // 0.25), so no window boundary falls between the two.
    while time.time() % 0.25 > 0.05:
        time.sleep(0.002)
    run.log({"train/loss": 0.5})
    run.log({"train/loss": -1.0})
    run.finish()
"""


def _kind(values: dict) -> tuple[str, ...]:
    return tuple(sorted(k for k in values if is_step_metric(k)))


def test_budget_thins_wandb_and_keeps_every_row_locally(tmp_path: Path) -> None:
    done = run_script(tmp_path, SCRIPT, timeout=120)
    data = steadyrun.open_run(done.rdir)
    local = [r for r in data.records if r["k"] == "row"]
    assert len(local) == 300 + 3 * 7 + 2  # every row kept locally
    log = wandb_log(done.rdir)
    assert_steps_strictly_increase(log)
    shipped = [{k: v for k, v in row.items() if not k.startswith("_")} for row in log.history]
    assert 0 < len(shipped) < len(local) / 2  # thinned

    # Every W&B row is a local row, whole; find each one's time and window.
    by_values = {tuple(sorted(r["v"].items())): r for r in local}
    window = 60.0 / 240
    seen: dict[tuple, set] = defaultdict(set)
    for row in shipped:
        rec = by_values[tuple(sorted(row.items()))]
        seen[_kind(row)].add(int(rec["t"] // window))
    # The first row of each kind in every window reached W&B.
    for rec in local:
        assert int(rec["t"] // window) in seen[_kind(rec["v"])], rec
    # A row with a new key and every new best of a goal metric reached W&B.
    assert any("train/extra" in row for row in shipped)
    best, improving = float("-inf"), []
    for rec in local:
        acc = rec["v"].get("val/acc")
        if acc is not None and acc > best:
            best = acc
            improving.append(rec)
    assert len(improving) == 14  # the first two of each burst
    shipped_rows = {tuple(sorted(row.items())) for row in shipped}
    for rec in improving:
        assert tuple(sorted(rec["v"].items())) in shipped_rows, rec
    val_shipped = sum("val/acc" in row for row in shipped)
    assert 14 <= val_shipped < 21  # the worse third of a burst is held back (mostly)
    # The summary holds the true last value and says how many rows W&B did not get.
    # The last row shares its window with the row before it (the script waits for the
    # start of a window), so W&B did not get it: only its summary says -1.0.
    assert int(local[-2]["t"] // window) == int(local[-1]["t"] // window), local[-2:]
    assert log.summary["train/loss"] == -1.0 != shipped[-1].get("train/loss")
    sampled_out = len(local) - len(shipped)
    assert log.summary["steadyrun/sampled_out"] == sampled_out
    assert sink_status(done.rdir)["sampled_out"] == sampled_out
    assert data.manifest["wandb_rows_per_min"] == 240


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


def test_globs_and_summary_rules_protect_bests_and_their_summaries() -> None:
    from steadyrun.ship.wandb.budget import RowBudget

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
