"""`steadyrun runs` and `steadyrun show`, run as a user would: the console script in a
fresh process, with STEADYRUN_DIR from `sr_root`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import steadyrun

CONSOLE_SCRIPT = Path(sys.executable).with_name("steadyrun")


def cli(*args: str, module: bool = False) -> subprocess.CompletedProcess[str]:
    """The installed `steadyrun` script (or `python -m steadyrun`), wide and colourless."""
    if module or not CONSOLE_SCRIPT.exists():
        cmd = [sys.executable, "-m", "steadyrun"]
    else:
        cmd = [str(CONSOLE_SCRIPT)]
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60, env=env)


def cli_json(*args: str, module: bool = False):
    proc = cli(*args, "--json", module=module)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def finished_run(new_run):
    run = new_run(project="cli-proj", name="baseline", config={"lr": 0.1, "model": {"depth": 3}})
    for i in range(5):
        run.log({"train/loss": 1.0 / (i + 1), "loss": float(i)})
    run.log({"val/acc": 0.9}, step=40)
    run.summary["eval/nrmse"] = 0.09
    run.finish()
    return run


@pytest.fixture
def crashed_run_id(sr_root, run_python) -> str:
    proc = run_python(
        """
        import os, signal, steadyrun
        run = steadyrun.init(mode="local", name="doomed")
        for i in range(3):
            run.log({"train/loss": float(i)})
        run.flush()
        print(run.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    return proc.stdout.strip()


def test_runs_lists_the_run_with_id_state_and_rows(finished_run):
    proc = cli("runs")
    assert proc.returncode == 0, proc.stderr
    (line,) = [ln for ln in proc.stdout.splitlines() if finished_run.id in ln]
    cells = [c.strip() for c in line.replace("│", "|").split("|") if c.strip()]
    assert cells[:5] == [finished_run.id, "baseline", "cli-proj", "finished", "6"]


def test_runs_json(finished_run):
    (row,) = cli_json("runs")
    assert row["id"] == finished_run.id
    assert row["state"] == "finished"
    assert row["rows"] == 6
    assert row["last_step"] == 40
    assert row["name"] == "baseline" and row["project"] == "cli-proj"


def test_runs_with_no_runs(sr_root):
    proc = cli("runs")
    assert proc.returncode == 0
    assert "no runs" in proc.stdout
    assert cli_json("runs") == []


def test_runs_lists_every_run(sr_root, new_run):
    ids = []
    for _ in range(3):
        run = new_run()
        run.log({"a": 1})
        run.finish()
        ids.append(run.id)
    assert sorted(r["id"] for r in cli_json("runs")) == sorted(ids)


def test_show_json(finished_run):
    info = cli_json("show", finished_run.id)
    assert info["id"] == finished_run.id
    assert info["state"] == "finished"
    assert info["summary"] == {"eval/nrmse": 0.09}
    assert info["config"] == {"lr": 0.1, "model": {"depth": 3}}
    assert info["namespaces"] == {"train": 5, "<root>": 5, "val": 1}
    assert info["rows"] == 6 and info["torn"] == 0
    assert info["anomalies"] == []


def test_show_json_by_prefix_and_by_path(finished_run, sr_root):
    assert cli_json("show", finished_run.id[:6])["id"] == finished_run.id
    path = str(sr_root / "runs" / finished_run.id)
    assert cli_json("show", path)["id"] == finished_run.id


def test_show_json_lists_anomalies_and_events(new_run):
    run = new_run()
    run.log({"a/x": 1}, step=5)
    with pytest.warns(steadyrun.SteadyrunWarning):
        run.log({"a/x": float("nan")}, step=2)
        run.log({"a/x": "bad"})
    run.finish()

    info = cli_json("show", run.id)
    types = sorted(a["type"] for a in info["anomalies"])
    assert types == ["nonfinite", "rejected", "step_regression"]
    assert all("_seg" not in e for e in info["events"])


def test_show_text(finished_run):
    proc = cli("show", finished_run.id)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert f"run {finished_run.id}" in out
    assert "state=finished" in out and "rows=6" in out
    assert "eval/nrmse" in out and "0.09" in out
    assert "train/loss" in out
    assert '"lr":0.1' in out


def test_show_unknown_run_fails_cleanly(sr_root):
    proc = cli("show", "nosuchrun")
    assert proc.returncode == 2
    assert "no run 'nosuchrun'" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_dir_option_beats_the_environment(sr_root, tmp_path_factory):
    other = tmp_path_factory.mktemp("cli-other")
    run = steadyrun.init(mode="local", dir=other)
    run.finish()
    assert cli_json("runs") == []
    (row,) = cli_json("--dir", str(other), "runs")
    assert row["id"] == run.id
    assert cli_json("--dir", str(other), "show", run.id)["id"] == run.id


def test_python_dash_m_steadyrun(finished_run):
    (row,) = cli_json("runs", module=True)
    assert row["id"] == finished_run.id


def test_crashed_run_is_shown_as_crashed(crashed_run_id):
    (row,) = cli_json("runs")
    assert row["id"] == crashed_run_id
    assert row["state"] == "crashed"
    assert row["rows"] == 3

    info = cli_json("show", crashed_run_id)
    assert info["state"] == "crashed"
    assert info["namespaces"] == {"train": 3}
    assert info["manifest"]["state"] == "running"  # derived from the dead owner, not stored

    proc = cli("runs")
    (line,) = [ln for ln in proc.stdout.splitlines() if crashed_run_id in ln]
    assert "crashed" in line


def test_live_run_is_running_then_finished(new_run):
    run = new_run()
    run.log({"a": 1})
    run.flush()
    (row,) = cli_json("runs")
    assert row["state"] == "running" and row["rows"] == 1
    run.finish()
    assert cli_json("show", run.id)["state"] == "finished"


def test_failed_run_is_shown_as_failed(sr_root):
    with pytest.raises(RuntimeError):
        with steadyrun.init(mode="local") as run:
            raise RuntimeError("oops")
    (row,) = cli_json("runs")
    assert row["id"] == run.id and row["state"] == "failed"


def _cli_at(columns: int, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "steadyrun", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_runs_never_cuts_the_id_and_says_where_it_looked(new_run, sr_root, tmp_path):
    run = new_run(id="run_20251022_123456_with_a_long_name", name="n" * 40, project="p" * 30)
    run.log({"a": 1.0})
    run.finish()
    proc = _cli_at(80, "runs")
    assert proc.returncode == 0, proc.stderr
    assert run.id in proc.stdout  # whole, on one line, at 80 columns
    assert str(sr_root / "runs") in proc.stdout.replace("\n", "")
    missing = tmp_path / "nowhere"
    proc = _cli_at(80, "--dir", str(missing), "runs")
    assert proc.returncode == 0 and str(missing / "runs") in proc.stdout
    assert "does not exist" in proc.stdout


def test_last_step_is_the_owners_not_a_stage_that_restarted(new_run, sr_root):
    """A pipeline listed 1, then 0: the last row of whichever writer wrote last."""
    run = new_run()
    for i in range(3):
        run.log({"train/loss": float(i)})
    stage = steadyrun.attach(run.id)  # a stage of the pipeline, restarting at 0
    for i in range(2):
        stage.log({"stage2/loss": float(i)})
    stage.finish()
    run.finish()
    (row,) = cli_json("runs")
    assert row["last_step"] == 2
    assert steadyrun.open_run(run.id).last_step == 2


def test_show_lists_alerts_and_alert_levels_follow_wandb(new_run):
    run = new_run()
    with pytest.warns(steadyrun.SteadyrunWarning, match="alert.level"):
        run.alert("odd", "text", level="loud")
    run.alert("diverged", "nan at step 12", level="critical")
    run.alert("fine", level="info")
    run.alert("careful", level="Warning")
    run.finish()
    levels = [(a["title"], a["level"]) for a in steadyrun.open_run(run.id).alerts]
    assert levels == [("odd", "WARN"), ("diverged", "ERROR"), ("fine", "INFO"),
                      ("careful", "WARN")]
    critical = steadyrun.open_run(run.id).alerts[1]
    assert "CRITICAL" in critical["text"] and "nan at step 12" in critical["text"]
    proc = cli("show", run.id)
    assert proc.returncode == 0, proc.stderr
    assert "alert ERROR diverged: nan at step 12" in proc.stdout


def test_a_second_init_while_the_first_run_is_open_is_warned(new_run):
    first = new_run()
    with pytest.warns(steadyrun.SteadyrunWarning, match=f"still open.*{first.id}|{first.id}"):
        new_run()
