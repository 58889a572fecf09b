"""The step rules of DESIGN.md section 3, read back through `steadyrun.open_run`."""

from __future__ import annotations

import inspect
import math
import warnings

import pytest

import steadyrun
from steadyrun import SteadyrunWarning


def _next_line() -> int:
    """The line number just after the caller's line."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno + 1


def _regression_warnings(record: pytest.WarningsRecorder) -> list[warnings.WarningMessage]:
    return [w for w in record if issubclass(w.category, SteadyrunWarning)
            and "went back" in str(w.message)]


def _regression_events(data: steadyrun.RunData) -> list[dict]:
    return [e for e in data.events if e["type"] == "step_regression"]


# ---------------------------------------------------------------------- step metrics as data

def test_every_namespace_step_metric_is_data_in_every_row(new_run):
    run = new_run()
    for i in range(3):
        run.log({"loss": 1.0 + i, "train/loss": 2.0 + i, "train/inner/x": 3.0 + i})
    run.finish()

    data = steadyrun.open_run(run.id)
    assert len(data.rows) == 3
    for i, row in enumerate(data.rows):
        assert row["_x"] == i
        assert row["step"] == i
        assert row["train/step"] == i
        assert row["train/inner/step"] == i
        assert row["loss"] == 1.0 + i and row["train/loss"] == 2.0 + i
    assert set(data.namespaces) == {"", "train", "train/inner"}


def test_step_metric_only_for_namespaces_in_the_row(new_run):
    run = new_run()
    run.log({"train/loss": 1.0})
    run.log({"val/acc": 0.5})
    run.finish()

    rows = steadyrun.open_run(run.id).rows
    assert "train/step" in rows[0] and "val/step" not in rows[0] and "step" not in rows[0]
    assert "val/step" in rows[1] and "train/step" not in rows[1]
    assert rows[1]["val/step"] == 1


def test_history_holds_one_namespace_with_its_step(new_run):
    run = new_run()
    run.log({"train/loss": 0.5, "train/lr": 1e-3, "val/acc": 0.1, "train/deep/x": 1})
    run.log({"val/acc": 0.2})
    run.finish()

    data = steadyrun.open_run(run.id)
    assert data.history("train") == [{"train/loss": 0.5, "train/lr": 1e-3, "train/step": 0}]
    assert data.history("val") == [{"val/acc": 0.1, "val/step": 0}, {"val/acc": 0.2, "val/step": 1}]
    assert data.history("train/deep") == [{"train/deep/x": 1, "train/deep/step": 0}]
    assert data.history("") == []
    assert data.column("val/acc") == [(0, 0.1), (1, 0.2)]
    assert len(data.history()) == 2


@pytest.mark.parametrize("mixed", [False, True], ids=["same-keys", "changing-keys"])
def test_global_step_advances_once_per_committed_call(new_run, mixed):
    run = new_run()
    for i in range(50):
        metrics = {"a/x": float(i)}
        if mixed and i % 3 == 0:
            metrics["b/y"] = i
        if mixed and i % 7 == 0:
            metrics["nan"] = math.nan
        run.log(metrics)
    assert run.step == 50
    run.finish()

    data = steadyrun.open_run(run.id)
    assert [r["_x"] for r in data.rows] == list(range(50))
    assert data.column("a/x") == [(i, float(i)) for i in range(50)]
    if mixed:
        assert data.column("b/y") == [(i, i) for i in range(0, 50, 3)]


def test_step_argument_sets_x(new_run):
    run = new_run()
    run.log({"val/acc": 0.9}, step=500)
    run.log({"val/acc": 0.95}, step=1000)
    run.finish()

    data = steadyrun.open_run(run.id)
    assert [r["_x"] for r in data.rows] == [500, 1000]
    assert data.column("val/acc") == [(500, 0.9), (1000, 0.95)]


def test_whole_float_step_is_accepted(new_run):
    run = new_run()
    run.log({"a/x": 1}, step=7.0)
    run.finish()

    row = steadyrun.open_run(run.id).rows[0]
    assert row["_x"] == 7 and row["a/step"] == 7 and type(row["a/step"]) is int


@pytest.mark.parametrize("bad_step", [1.5, "ten", [3], math.nan, math.inf])
def test_bad_step_falls_back_to_global_step_with_a_warning(new_run, bad_step):
    run = new_run()
    run.log({"a/x": 0})
    with pytest.warns(SteadyrunWarning, match="step="):
        run.log({"a/x": 1}, step=bad_step)
    run.finish()

    data = steadyrun.open_run(run.id)
    assert [r["_x"] for r in data.rows] == [0, 1]
    assert [e["key"] for e in data.events if e["type"] == "rejected"] == ["step="]


# ---------------------------------------------------------------------- commit=False

def test_commit_false_batch_epoch_pattern_makes_one_row_per_epoch(new_run):
    """Seed 000: batch logs with commit=False, then one committed epoch log."""
    run = new_run()
    last_batch = {}
    for epoch in range(3):
        for batch in range(5):
            loss = 10.0 * epoch + batch
            run.log({"batch_loss": loss, "batch/idx": batch}, commit=False)
            last_batch[epoch] = loss
        run.log({"epoch": epoch, "train_loss": epoch / 10}, commit=True)
    run.finish()

    data = steadyrun.open_run(run.id)
    assert len(data.rows) == 3
    for epoch, row in enumerate(data.rows):
        assert row["_x"] == epoch
        assert row["step"] == epoch
        assert row["batch_loss"] == last_batch[epoch]
        assert row["batch/idx"] == 4
        assert row["batch/step"] == epoch
        assert row["epoch"] == epoch
        assert row["train_loss"] == epoch / 10
    assert data.column("batch_loss") == [(0, 4.0), (1, 14.0), (2, 24.0)]


def test_values_replaced_in_a_pending_row_are_warned_and_counted(new_run):
    """Seed 000's pattern drops 95 of 100 batch losses: that is W&B's rule for a pending
    row, but it must not happen without a word."""
    run = new_run()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for epoch in range(5):
            for batch in range(20):
                run.log({"batch_loss": float(batch), "batch/idx": batch}, commit=False)
            run.log({"epoch": epoch})
    said = [str(w.message) for w in caught if issubclass(w.category, SteadyrunWarning)]
    assert len(said) == 2 and all("step=" in m and "namespace" in m for m in said)
    run.finish()
    data = steadyrun.open_run(run.id)
    assert [e["key"] for e in data.events if e["type"] == "overwritten"] == \
        ["batch/idx", "batch_loss"]
    counts = {e["key"]: e["count"] for e in data.events if e["type"] == "overwritten_count"}
    assert counts == {"batch_loss": 95, "batch/idx": 95}
    assert sum(a["type"] == "overwritten" for a in data.anomalies) == 2
    assert [r["batch_loss"] for r in data.rows] == [19.0] * 5


def test_commit_false_keeps_the_last_value_of_a_key(new_run):
    run = new_run()
    run.log({"a": 1}, commit=False)
    run.log({"a": 2, "b": 3}, commit=False)
    run.log({"c": 4})
    run.finish()

    rows = steadyrun.open_run(run.id).rows
    assert len(rows) == 1
    assert {k: rows[0][k] for k in "abc"} == {"a": 2, "b": 3, "c": 4}


def test_commit_false_nonfinite_is_overwritten_both_ways(new_run):
    run = new_run()
    run.log({"a": math.nan, "b": 1.0}, commit=False)
    run.log({"a": 2.0, "b": math.inf})
    run.finish()

    data = steadyrun.open_run(run.id)
    row = data.rows[0]
    assert row["a"] == 2.0
    assert row["b"] == math.inf
    assert [(a["key"], a["value"]) for a in data.anomalies if a["type"] == "nonfinite"] == [
        ("b", "inf")]


def test_commit_false_step_of_the_pending_row_is_kept(new_run):
    run = new_run()
    run.log({"val/a": 1}, step=40, commit=False)
    run.log({"val/b": 2})
    run.finish()

    rows = steadyrun.open_run(run.id).rows
    assert len(rows) == 1
    assert rows[0]["_x"] == 40 and rows[0]["val/step"] == 40


def test_pending_row_is_committed_by_finish(new_run):
    run = new_run()
    run.log({"a": 1})
    run.log({"b": 2}, commit=False)
    run.finish()

    data = steadyrun.open_run(run.id)
    assert [r["_x"] for r in data.rows] == [0, 1]
    assert data.rows[1]["b"] == 2


# ---------------------------------------------------------------------- regressions

def test_lower_step_is_kept_warned_once_and_recorded_each_time(new_run):
    run = new_run()
    run.log({"val/loss": 1.0}, step=10)
    with pytest.warns(SteadyrunWarning) as record:
        line = _next_line()
        run.log({"val/loss": 2.0}, step=5)
        run.log({"val/loss": 3.0}, step=3)
        run.log({"val/loss": 4.0}, step=2)
    run.finish()

    found = _regression_warnings(record)
    assert len(found) == 1
    message = str(found[0].message)
    assert f"{__file__}:{line}" in message
    assert "'val'" in message
    assert found[0].filename == __file__ and found[0].lineno == line

    data = steadyrun.open_run(run.id)
    assert data.column("val/loss") == [(10, 1.0), (5, 2.0), (3, 3.0), (2, 4.0)]
    events = _regression_events(data)
    assert [(e["namespace"], e["previous"], e["step"]) for e in events] == [
        ("val", 10, 5), ("val", 5, 3), ("val", 3, 2)]
    assert all(e["site"].startswith(__file__) for e in events)
    assert sum(a.get("type") == "step_regression" for a in data.anomalies) == 3


def test_regressions_warn_once_per_namespace(new_run):
    run = new_run()
    run.log({"a/x": 1, "b/x": 1, "x": 1}, step=10)
    with pytest.warns(SteadyrunWarning) as record:
        run.log({"a/x": 2}, step=1)
        run.log({"a/x": 2}, step=0)
        run.log({"b/x": 2}, step=1)
        run.log({"x": 2}, step=1)
        run.log({"x": 2}, step=0)
    run.finish()

    messages = [str(w.message) for w in _regression_warnings(record)]
    assert len(messages) == 3
    assert "'a'" in messages[0] and "'b'" in messages[1] and "'<root>'" in messages[2]
    events = _regression_events(steadyrun.open_run(run.id))
    assert [e["namespace"] for e in events] == ["a", "a", "b", "<root>", "<root>"]


def test_auto_step_behind_an_explicit_step_is_a_regression(new_run):
    """The fast path must not skip the check once the key set is known."""
    run = new_run()
    run.log({"a/x": 0})
    run.log({"a/x": 1}, step=100)
    with pytest.warns(SteadyrunWarning, match="went back"):
        for i in range(4):
            run.log({"a/x": 2 + i})
    run.finish()

    data = steadyrun.open_run(run.id)
    assert len(data.rows) == 6
    assert [s for s, _ in data.column("a/x")] == [0, 100, 1, 2, 3, 4]
    # Only the first auto row goes back (100 -> 1); from there the axis rises again.
    assert [(e["previous"], e["step"]) for e in _regression_events(data)] == [(100, 1)]


def test_equal_step_is_not_a_regression(new_run):
    run = new_run()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SteadyrunWarning)
        run.log({"a/x": 1}, step=3)
        run.log({"a/y": 2}, step=3)
    run.finish()

    data = steadyrun.open_run(run.id)
    assert len(data.rows) == 2
    assert _regression_events(data) == []


def test_stages_restarting_at_zero_in_their_own_namespaces_do_not_regress(new_run):
    """Seed 001: each stage has its own x-axis and may start again at 0."""
    run = new_run()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SteadyrunWarning)
        for stage in ("stage1", "stage2", "stage3"):
            for i in range(5):
                run.log({f"{stage}/loss": 1.0 / (i + 1)}, step=i)
    run.finish()

    data = steadyrun.open_run(run.id)
    assert _regression_events(data) == []
    for stage in ("stage1", "stage2", "stage3"):
        assert [s for s, _ in data.column(f"{stage}/loss")] == [0, 1, 2, 3, 4]
        assert [r[f"{stage}/step"] for r in data.history(stage)] == [0, 1, 2, 3, 4]
    assert len(data.rows) == 15


def test_user_logged_step_metric_sets_the_step(new_run):
    """Seed 001's fix: `training/<stage>/step` logged as data is the axis."""
    run = new_run()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SteadyrunWarning)
        for i in range(3):
            run.log({"training/operator/loss": 0.1 * i, "training/operator/step": 100 + i})
        for i in range(3):  # the next stage starts its own axis at 0
            run.log({"training/diffusion/loss": 0.2 * i, "training/diffusion/step": i})
        run.log({"loss": 1.0, "step": 42})
    run.finish()

    data = steadyrun.open_run(run.id)
    assert data.column("training/operator/loss") == [(100, 0.0), (101, 0.1), (102, 0.2)]
    assert [s for s, _ in data.column("training/diffusion/loss")] == [0, 1, 2]
    assert data.column("loss") == [(42, 1.0)]
    assert [r["_x"] for r in data.rows] == list(range(7))  # x stays the global step
    assert _regression_events(data) == []


def test_user_logged_step_metric_that_goes_back_is_a_regression(new_run):
    run = new_run()
    run.log({"a/x": 1, "a/step": 50})
    with pytest.warns(SteadyrunWarning, match="went back from 50 to 10"):
        run.log({"a/x": 2, "a/step": 10})
    run.finish()

    data = steadyrun.open_run(run.id)
    assert data.column("a/x") == [(50, 1), (10, 2)]
    assert len(_regression_events(data)) == 1
