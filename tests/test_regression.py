"""Baselines and live regression alerts (issue 14, parts 4-6): `init(baseline=...,
regression=...)`, `run.set_baseline`, the check on the writer thread, `steadyrun show`,
and the alert as W&B records it.

Baseline: three seeds tagged `base` whose val/acc climbs linearly to 0.80, 0.81, 0.79
over val/step 1..10 (at step s: mean 0.08 s, std 0.001 s).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson
import pytest
from wandb_helpers import run_script, wandb_log

import steadyrun
from steadyrun import SteadyrunWarning
from steadyrun.cli.main import main
from steadyrun.log import regression


def seed(final: float, *, tags=("base",), project="reg", goals=("val/acc",)) -> str:
    run = steadyrun.init(mode="local", project=project, tags=list(tags))
    for key in goals:
        run.define_metric(key, goal="maximize")
    for s in range(1, 11):
        run.log({"val/acc": final * s / 10}, step=s)
    run.finish()
    return run.id


@pytest.fixture
def base(sr_root: Path) -> list[str]:
    return [seed(f) for f in (0.80, 0.81, 0.79)]


def of_type(data, kind: str) -> list[dict]:
    return [e for e in data.events if e["type"] == kind]


def test_one_alert_per_crossing_and_an_event_each(base, sr_root):
    run = steadyrun.init(mode="local", project="reg", baseline="tag:base")
    # fine, fine, fine, regressed, still regressed, fine again (re-armed), regressed, fine...
    values = {1: 0.08, 2: 0.16, 3: 0.24, 4: 0.20, 5: 0.25, 6: 0.48, 7: 0.40, 8: 0.64,
              9: 0.72, 10: 0.80, 11: 0.10}  # step 11: beyond the baseline, not compared
    for step, v in values.items():
        run.log({"val/acc": v}, step=step)
        if step == 5:
            run.flush()  # the check also runs at flush: the order stays the rows' order
    run.finish()

    data = steadyrun.open_run(run.id)
    assert data.manifest["baseline"] == {"ref": "tag:base", "runs": base, "rules": [], "k": 2.0}
    alerts = data.alerts
    assert [a["title"] for a in alerts] == ["regression: val/acc"] * 2
    assert all(a["level"] == "WARN" for a in alerts)
    assert "val/acc = 0.2 at val/step 4 is worse than the baseline 0.32 ± 0.004 (n=3)" in \
        alerts[0]["text"]
    assert "rule val/acc>=-1%" in alerts[0]["text"] and "tag:base" in alerts[0]["text"]
    events = of_type(data, "regression")
    assert [(e["phase"], e["step"], e["value"]) for e in events] == [("live", 4, 0.20),
                                                                   ("live", 7, 0.40)]
    e = events[0]
    assert e["key"] == "val/acc" and e["step_metric"] == "val/step"
    assert e["baseline"] == pytest.approx(0.32) and e["n"] == 3
    assert e["std"] == pytest.approx(0.004) and e["band"] == pytest.approx(0.312)
    assert e["limit"] == pytest.approx(0.3168) and e["rule"] == "val/acc>=-1%"
    assert e["baseline_runs"] == base and e["alerted"] is True
    # The final value (best: 0.80) is within the baseline's: nothing at finish.


def test_a_resumed_run_keeps_watching_its_baseline(base, sr_root):
    """Resumed without baseline=: the one in run.json is watched again (its rules too)."""
    run = steadyrun.init(mode="local", project="reg", baseline="tag:base",
                         regression={"val/acc": "-5%"})
    for s in range(1, 4):
        run.log({"val/acc": 0.08 * s}, step=s)
    run.finish()
    again = steadyrun.init(mode="local", project="reg", id=run.id)  # continued
    for s in range(4, 7):
        again.log({"val/acc": 0.01 if s == 5 else 0.08 * s}, step=s)
    again.finish()
    data = steadyrun.open_run(run.id)
    assert data.manifest["baseline"]["rules"] == ["val/acc>=-5%"]
    events = of_type(data, "regression")
    # each finish judges the best so far (0.24, then 0.48) against the baseline's final
    # (0.80); between them, the resumed process caught the dip at step 5
    assert [(e["phase"], e.get("step")) for e in events] == [("final", None), ("live", 5),
                                                             ("final", None)]
    assert {e["rule"] for e in events} == {"val/acc>=-5%"}


def test_the_final_check_judges_the_summary_value(base, sr_root):
    run = steadyrun.init(mode="local", project="reg", baseline="tag:base",
                         regression={"val/acc": "-5%"})
    run.define_metric("val/acc", goal="maximize")
    for step in (20, 30):  # beyond the baseline's steps: no live comparison
        run.log({"val/acc": 0.70}, step=step)
    run.finish()
    data = steadyrun.open_run(run.id)
    (event,) = of_type(data, "regression")
    assert (event["phase"], event["source"], event["value"]) == ("final", "best", 0.70)
    assert event["rule"] == "val/acc>=-5%" and event["alerted"] is True
    (alert,) = data.alerts
    assert "val/acc = 0.7 (best value of the run)" in alert["text"]
    assert data.manifest["baseline"]["rules"] == ["val/acc>=-5%"]


def test_a_final_regression_in_a_live_crossing_is_not_alerted_twice(base, sr_root):
    run = steadyrun.init(mode="local", project="reg", baseline="tag:base")
    for step in range(1, 11):
        run.log({"val/acc": 0.05 * step}, step=step)  # worse from step 2 on, to the end
    run.summary["val/acc"] = 0.5
    run.finish()
    data = steadyrun.open_run(run.id)
    events = of_type(data, "regression")
    assert [(e["phase"], e["alerted"]) for e in events] == [("live", True), ("final", False)]
    assert events[1]["source"] == "summary" and events[1]["value"] == 0.5
    assert len(data.alerts) == 1


def test_the_check_runs_on_the_writer_thread_never_in_log(base, sr_root, monkeypatch):
    seen: list[tuple[str, bool]] = []
    in_log = threading.local()
    observe = regression.RegressionWatch.observe

    def spy(self, recs):
        seen.append((threading.current_thread().name, getattr(in_log, "on", False)))
        return observe(self, recs)

    monkeypatch.setattr(regression.RegressionWatch, "observe", spy)
    run = steadyrun.init(mode="local", project="reg", baseline="tag:base")
    for step in range(1, 200):
        in_log.on = True
        run.log({"val/acc": 0.01}, step=step)
        in_log.on = False
    deadline = time.monotonic() + 6
    while not any(name == "steadyrun-writer" for name, _ in seen) and time.monotonic() < deadline:
        time.sleep(0.1)
    run.finish()
    assert any(name == "steadyrun-writer" for name, _ in seen), seen
    assert not any(inside for _, inside in seen)
    assert len(steadyrun.open_run(run.id).alerts) == 1


def test_bad_baselines_warn_and_record_or_raise_when_strict(base, sr_root):
    cases = [("nope", None, "no run 'nope'"),
             ("tag:nothing", None, "no finished run with tag 'nothing'"),
             ("tag:base", {"val/acc": "+1%"}, "wrong way"),
             ("tag:base", {"val/acc": "lots"}, "cannot read the tolerance"),
             ("tag:base", {"val/f1": "-1%"}, "has no value of val/f1")]
    for ref, rules, says in cases:
        with pytest.warns(SteadyrunWarning, match=says):
            run = steadyrun.init(mode="local", project="reg", baseline=ref, regression=rules)
        run.log({"val/acc": 0.0}, step=1)  # training goes on, unjudged
        run.finish()
        data = steadyrun.open_run(run.id)
        (rejected,) = of_type(data, "rejected")
        assert rejected["key"] == "baseline" and says in rejected["reason"]
        assert "baseline" not in data.manifest and data.alerts == []
        with pytest.raises(ValueError, match=says):
            steadyrun.init(mode="local", project="reg", baseline=ref, regression=rules,
                           strict=True)


def test_best_is_the_best_run_of_the_project_by_its_one_goal_metric(sr_root):
    ids = [seed(f, project="p", tags=()) for f in (0.6, 0.9, 0.7)]
    run = steadyrun.init(mode="local", project="p", baseline="best")
    run.finish()
    assert steadyrun.open_run(run.id).manifest["baseline"]["runs"] == [ids[1]]
    seed(0.5, project="q", goals=("val/acc", "val/f1"), tags=())
    with pytest.raises(ValueError, match=r"one metric with a goal, and it has 2: val/acc, val/f1"):
        steadyrun.init(mode="local", project="q", baseline="best", strict=True)


def test_set_baseline_later_and_show_lists_regressions(base, sr_root, capsys):
    run = steadyrun.init(mode="local", project="reg")
    run.log({"val/acc": 0.01}, step=1)  # no baseline yet: not judged
    with pytest.warns(SteadyrunWarning, match="no run 'gone'"):
        run.set_baseline("gone")
    run.set_baseline("tag:base", regression={"val/acc": "-2%"}, k=3)
    assert steadyrun.open_run(run.id).manifest["baseline"] == {
        "ref": "tag:base", "runs": base, "rules": ["val/acc>=-2%"], "k": 3.0}
    run.log({"val/acc": 0.02}, step=2)
    run.finish()
    data = steadyrun.open_run(run.id)
    assert [(e["phase"], e.get("step")) for e in of_type(data, "regression")] == [
        ("live", 2), ("final", None)]  # step 1 came before the baseline

    assert main(["show", run.id]) == 0
    out = capsys.readouterr().out
    assert "baseline: tag:base" in out and "rules: val/acc>=-2%; k=3.0" in out
    assert "regression val/acc = 0.02 at val/step 2 vs baseline 0.16 ± 0.002 (n=3)" in out
    assert main(["show", run.id, "--json"]) == 0
    shown = orjson.loads(capsys.readouterr().out)
    assert [r.get("step") for r in shown["regressions"]] == [2, None]
    assert shown["baseline"]["runs"] == base


def test_disabled_and_inert_runs_take_set_baseline():
    run = steadyrun.init(mode="disabled", baseline="anything")
    run.set_baseline("tag:base")
    run.finish()


def test_a_live_regression_reaches_wandb_as_one_alert(tmp_path: Path) -> None:
    """W&B's own transaction log holds the alert exactly once: one crossing, however
    many regressed rows and checks (ticks, flush, the final check) follow."""
    done = run_script(tmp_path, """
        import steadyrun
        for final in (0.80, 0.81, 0.79):
            base = steadyrun.init(project="reg", mode="local", tags=["base"])
            base.define_metric("val/acc", goal="maximize")
            for s in range(1, 11):
                base.log({"val/acc": final * s / 10}, step=s)
            base.finish()
        run = steadyrun.init(project="reg", baseline="tag:base")
        for s in range(1, 6):
            run.log({"val/acc": 0.08 * s}, step=s)
        for s in range(6, 11):
            run.log({"val/acc": 0.03 * s}, step=s)  # regressed from step 6 to the end
            run.flush()
        run.finish()
        print(f"RUN={run.id}")
    """)
    rdir = done.root / "runs" / done.value("RUN")
    log = wandb_log(rdir)
    regressions = [a for a in log.alerts if a["title"].startswith("regression")]
    assert len(regressions) == 1, log.alerts
    (alert,) = regressions
    assert alert["title"] == "regression: val/acc" and alert["level"] == "WARN"
    assert "at val/step 6" in alert["text"] and "tag:base" in alert["text"]
    data = steadyrun.open_run(rdir)
    # The final check (best 0.40 against 0.80) is the same crossing: recorded, not alerted.
    assert [(e["phase"], e["alerted"]) for e in of_type(data, "regression")] == [
        ("live", True), ("final", False)]
