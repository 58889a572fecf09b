"""The W&B sidecar, checked against what W&B itself recorded.

Each test runs a training script in a fresh interpreter (its sidecar ships to W&B
offline files: no key, so `auto` means offline), waits for it to exit, and reads W&B's
own transaction log with `steadyrun.ship.wandb.txlog`. Nothing is mocked: the assertions are
on the rows, summary, config and run record a W&B user would get.
"""

from __future__ import annotations

import math
import signal
import time
from pathlib import Path

import orjson
import pytest
from wandb_helpers import (
    assert_once,
    assert_steps_strictly_increase,
    column,
    listed_files,
    run_script,
    sidecar_log,
    sink_status,
    steadyrun_cli,
    wandb_files,
    wandb_log,
)

import steadyrun
from steadyrun.store.cursor import Cursor


# ---------------------------------------------------------------------- steps (seeds 000, 001)
def test_two_stages_restarting_at_step_zero_keep_every_row(tmp_path: Path) -> None:
    """Seed 001: stage 2 starts again at step 0 in its own namespace; W&B drops nothing."""
    done = run_script(tmp_path, """
        import steadyrun
        run = steadyrun.init(project="stages")
        for i in range(100):
            run.log({"stage1/loss": 1.0 + i / 1000}, step=i)
        for i in range(50):
            run.log({"stage2/loss": 2.0 + i / 1000}, step=i)
        run.finish()
    """)
    log = wandb_log(done.rdir)

    assert len(log.history) == 150
    assert [row["_step"] for row in log.history] == list(range(150))  # the sink owns _step
    for i, row in enumerate(log.history[:100]):
        assert row["stage1/loss"] == pytest.approx(1.0 + i / 1000)
        assert row["stage1/step"] == i
        assert "stage2/loss" not in row and "stage2/step" not in row
    for i, row in enumerate(log.history[100:]):
        assert row["stage2/loss"] == pytest.approx(2.0 + i / 1000)
        assert row["stage2/step"] == i
        assert "stage1/loss" not in row and "stage1/step" not in row
    # Exact keys (no globs), each on its own namespace's step.
    assert log.metrics["stage1/loss"]["step_metric"] == "stage1/step"
    assert log.metrics["stage2/loss"]["step_metric"] == "stage2/step"
    assert not log.metrics["stage1/loss"]["glob"] and not log.metrics["stage2/loss"]["glob"]
    assert not any(m["glob"] for m in log.metrics.values())
    # Step metrics are axes: hidden from W&B's automatic panels, the data keys are not.
    assert log.metrics["stage1/step"]["hidden"] and log.metrics["stage2/step"]["hidden"]
    assert not log.metrics["stage1/loss"]["hidden"] and not log.metrics["stage2/loss"]["hidden"]
    assert log.exit_code == 0
    assert log.torn == 0
    # The sink's status names the W&B folder it wrote, and the offline note says why.
    status = sink_status(done.rdir)
    assert status["mode"] == "offline" and status["state"] == "finished"
    assert status["exit_code"] == 0
    assert listed_files(done.rdir) == wandb_files(done.rdir) == log.paths
    assert "W&B offline files" in sidecar_log(done.rdir)
    assert "no W&B API key" in sidecar_log(done.rdir)


def test_batch_and_epoch_commit_pattern_gives_one_row_per_epoch(tmp_path: Path) -> None:
    """Seed 000: commit=False batch logs merge into the epoch's committed row.

    WANDB_DIR keeps its meaning: W&B's files go there instead of into the run folder.
    """
    wdir = tmp_path / "elsewhere"
    done = run_script(tmp_path, """
        import steadyrun
        run = steadyrun.init(project="epochs")
        for epoch in range(5):
            for b in range(4):
                run.log({"batch/loss": epoch * 10 + b + 0.5}, commit=False)
            run.log({"epoch/loss": 100.0 + epoch, "epoch/acc": epoch / 10})
        run.finish()
    """, env={"WANDB_DIR": str(wdir)})
    assert not (done.rdir / "wandb").exists()
    (d,) = sink_status(done.rdir)["run_dirs"]
    assert Path(d).is_relative_to(wdir)
    log = wandb_log(done.rdir, wandb_dir=wdir)

    assert len(log.history) == 5
    assert_steps_strictly_increase(log)
    for epoch, row in enumerate(log.history):
        assert row["batch/loss"] == epoch * 10 + 3.5  # the last batch of the epoch
        assert row["epoch/loss"] == 100.0 + epoch
        assert row["epoch/acc"] == pytest.approx(epoch / 10)
        assert row["batch/step"] == epoch and row["epoch/step"] == epoch
    assert log.metrics["batch/loss"]["step_metric"] == "batch/step"
    assert log.metrics["epoch/loss"]["step_metric"] == "epoch/step"


def test_step_regression_keeps_both_rows(tmp_path: Path) -> None:
    done = run_script(tmp_path, """
        import warnings
        import steadyrun
        warnings.simplefilter("ignore")
        run = steadyrun.init(project="regress")
        run.log({"train/loss": 1.0}, step=10)
        run.log({"train/loss": 2.0}, step=5)
        run.log({"train/loss": 3.0}, step=6)
        for v in (1.0, float("nan"), float("inf"), float("-inf"), 2.0):
            run.log({"odd": v})
        run.finish()
    """)
    log = wandb_log(done.rdir)

    assert [(r["train/loss"], r["train/step"]) for r in log.history[:3]] == [
        (1.0, 10), (2.0, 5), (3.0, 6)]
    assert len(log.history) == 8
    assert_steps_strictly_increase(log)
    assert log.summary["steadyrun/step_regression"] == 1
    # NaN and inf are real values in W&B too, never strings or clamped.
    odd = column(log, "odd")
    assert odd[0] == 1.0 and math.isnan(odd[1]) and odd[2] == math.inf
    assert odd[3] == -math.inf and odd[4] == 2.0
    assert column(log, "step") == [0, 1, 2, 3, 4]  # the root namespace's step, as data
    assert log.metrics["odd"]["step_metric"] == "step"


# ---------------------------------------------------------------------- summary (seed 002)
def test_summary_goes_to_summary_only_and_goal_keeps_the_best(tmp_path: Path) -> None:
    done = run_script(tmp_path, """
        import steadyrun
        run = steadyrun.init(project="summary")
        run.define_metric("val/loss", goal="minimize")
        for i, v in enumerate([0.5, 0.3, 0.4, 0.2, 0.35]):
            run.log({"val/loss": v, "train/loss": 1.0 + i})
        run.log_summary({"nrmse": 0.09, "mse": 0.001}, prefix="eval")
        run.summary.update({"final/acc": 0.93, "note": "done"})
        run.finish()
    """)
    log = wandb_log(done.rdir)

    assert log.summary["eval/nrmse"] == 0.09
    assert log.summary["eval/mse"] == 0.001
    assert log.summary["final/acc"] == 0.93
    assert log.summary["note"] == "done"
    assert len(log.history) == 5
    for row in log.history:
        assert not {"eval/nrmse", "eval/mse", "final/acc", "note"} & set(row)
        assert not any(k.startswith("eval/") for k in row)
    assert column(log, "val/loss") == [0.5, 0.3, 0.4, 0.2, 0.35]
    # The goal: W&B's summary keeps the best value, not the last.
    assert log.summary["val/loss"] == {"min": 0.2}
    assert "min" in log.metrics["val/loss"]["summary"]
    assert log.metrics["val/loss"]["step_metric"] == "val/step"
    assert log.summary["train/loss"] == 5.0  # no goal: the last value


# ---------------------------------------------------------------------- config, run record, media
def test_config_tags_run_record_media_files_alerts(tmp_path: Path) -> None:
    done = run_script(tmp_path, """
        import numpy as np
        from pathlib import Path
        import steadyrun
        config = {"lr": 3e-4, "model": {"depth": 3, "act": {"name": "gelu", "approx": True}},
                  "layers": [64, 32]}
        run = steadyrun.init(project="meta", name="mlp-baseline", config=config,
                             tags={"model": "mlp", "data": "toy"}, group="ablation",
                             job_type="train", notes="a note")
        run.config.update({"optim": {"name": "adam", "betas": [0.9, 0.999]}})
        run.log({"train/loss": 1.0})
        run.log_table("eval/baseline_vs_ttc", columns=["metric", "baseline", "ttc"],
                      rows=[["nrmse", 0.78, 0.09], ["mse", 0.5, 0.01]])
        img = (np.arange(8 * 8 * 3) % 256).astype(np.uint8).reshape(8, 8, 3)
        run.log_image("samples/pred", img, caption="pred")
        Path("report.md").write_text("# report\\n")
        run.save("report.md")
        run.alert("loss diverged", "nan at step 1200", level="WARN")
        run.alert("loss diverged", "again")
        run.log({"train/loss": 0.5})
        run.finish()
    """)
    log = wandb_log(done.rdir)

    assert log.config["lr"] == 3e-4
    assert log.config["model"] == {"depth": 3, "act": {"name": "gelu", "approx": True}}
    assert log.config["layers"] == [64, 32]
    assert log.config["optim"] == {"name": "adam", "betas": [0.9, 0.999]}
    assert log.run["project"] == "meta"
    assert log.run["display_name"] == "mlp-baseline"
    assert log.run["group"] == "ablation"
    assert log.run["job_type"] == "train"
    assert log.run["notes"] == "a note"
    assert {"model:mlp", "data:toy"} <= set(log.run["tags"])
    assert log.run["run_id"] == done.run_id

    assert len(log.history) == 4
    assert_steps_strictly_increase(log)
    table = next(r["eval/baseline_vs_ttc"] for r in log.history if "eval/baseline_vs_ttc" in r)
    assert table["_type"] == "table-file"
    assert table["ncols"] == 3 and table["nrows"] == 2
    files = log.paths[-1].parent / "files"  # what W&B keeps next to its log
    stored = orjson.loads((files / table["path"]).read_bytes())
    assert stored["columns"] == ["metric", "baseline", "ttc"]
    assert stored["data"] == [["nrmse", 0.78, 0.09], ["mse", 0.5, 0.01]]
    image = next(r["samples/pred"] for r in log.history if "samples/pred" in r)
    assert image["_type"] == "image-file"
    assert (image["width"], image["height"], image["caption"]) == (8, 8, "pred")
    assert (files / image["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert column(log, "train/loss") == [1.0, 0.5]

    assert "report.md" in log.files
    # Each alert unthrottled (wandb's default wait would merge alerts of one title).
    assert [(a["title"], a["text"], a["level"]) for a in log.alerts] == [
        ("loss diverged", "nan at step 1200", "WARN"), ("loss diverged", "again", "WARN")]
    assert all(a["wait_duration"] < 1000 for a in log.alerts), log.alerts
    assert log.exit_code == 0


def test_exception_inside_with_block_fails_the_wandb_run(tmp_path: Path) -> None:
    done = run_script(tmp_path, """
        import steadyrun
        with steadyrun.init(project="boom") as run:
            for i in range(10):
                run.log({"train/loss": float(i)})
            raise RuntimeError("boom")
    """, check=False)
    assert done.returncode != 0 and "RuntimeError: boom" in done.stderr, done.output
    log = wandb_log(done.rdir)

    assert log.exit_code not in (None, 0)
    assert column(log, "train/loss") == [float(i) for i in range(10)]
    assert any(a["title"] == "run failed" and "boom" in a["text"] for a in log.alerts)


# ---------------------------------------------------------------------- sync
def test_sync_twice_never_duplicates(tmp_path: Path) -> None:
    done = run_script(tmp_path, """
        import steadyrun
        run = steadyrun.init(project="later", mode="local")
        run.config.update({"lr": 0.1})
        for i in range(120):
            run.log({"train/loss": float(i)})
            if i % 10 == 0:
                run.log({"val/loss": i / 10}, step=i // 10)
        run.summary.update({"eval/score": 0.5})
        run.finish()
    """)
    rdir = done.rdir
    assert not (rdir / "wandb").exists()  # local mode: no sidecar, no W&B files

    steadyrun_cli(tmp_path, "sync", done.run_id, "--mode", "offline", "--quiet")
    first = wandb_log(rdir)
    steadyrun_cli(tmp_path, "sync", done.run_id, "--mode", "offline", "--quiet")
    both = wandb_log(rdir)

    for log in (first, both):
        assert len(log.history) == 132
        assert_once(log, "train/loss", [float(i) for i in range(120)])
        assert_once(log, "val/loss", [float(j) for j in range(12)])
        assert_steps_strictly_increase(log)
        assert log.config["lr"] == 0.1
        assert log.summary["eval/score"] == 0.5
        assert log.exit_code == 0
    # The second sync found nothing to ship: it may skip W&B, or add an empty piece.
    assert wandb_files(rdir) == listed_files(rdir)


def test_rows_keep_the_time_they_were_logged_and_the_run_its_start(tmp_path: Path) -> None:
    """A run recorded with --no_wandb and synced later: W&B dated every row to the sync and
    started the run then. Each row now carries its own wall time (`_timestamp`), and the
    W&B run starts when the steadyrun run was created."""
    done = run_script(tmp_path, """
        import time
        import steadyrun
        run = steadyrun.init(project="later", mode="local")
        for i in range(5):
            run.log({"train/loss": float(i)})
            time.sleep(0.05)
        run.log_table("eval/t", columns=["a"], rows=[[1]])
        run.finish()
    """)
    time.sleep(1.5)  # the sync comes later than the training, so their clocks differ
    steadyrun_cli(tmp_path, "sync", done.run_id, "--mode", "offline", "--quiet")
    log = wandb_log(done.rdir)
    data = steadyrun.open_run(done.rdir)
    logged = [r["t"] for r in data.records if r["k"] in ("row", "table")]
    shipped = [row["_timestamp"] for row in log.history]
    assert shipped == pytest.approx(logged, abs=1e-6)
    # W&B's summary (the runs table's "last updated"), which wandb derives from the rows
    # (steadyrun never sets it): the last row's own time, not the sync's.
    assert log.summary["_timestamp"] == pytest.approx(logged[-1], abs=1e-6)
    assert log.run["start_time"] == pytest.approx(data.manifest["created_at"], abs=1e-3)


def test_sync_without_a_key_says_how_to_upload_and_keeps_wandbs_noise_out(
        tmp_path: Path) -> None:
    done = run_script(tmp_path, """
        import steadyrun
        run = steadyrun.init(project="later", mode="local")
        run.log({"a": 1.0})
        open("notes.txt", "w").write("n")
        run.save("notes.txt")
        run.finish()
    """)
    proc = steadyrun_cli(tmp_path, "sync", done.run_id)  # auto: no key, offline files
    said = proc.stdout + proc.stderr
    assert "WANDB_API_KEY" in said and "wandb login" in said
    assert "upload later with" not in said  # "run the command you just ran" is no answer
    assert "Symlinked" not in said, said  # W&B's own notes stay out of steadyrun's output
    help_text = steadyrun_cli(tmp_path, "sync", "--help").stdout
    for phrase in ("a run id", "every run under the root", "no progress bar"):
        assert phrase in help_text


def test_a_writer_attached_to_a_finished_run_reaches_wandb(tmp_path: Path) -> None:
    """attach() to a run whose owner (and sidecar) had ended stored its rows locally, and
    no W&B file ever got them. The attached writer now brings its own sidecar."""
    first = run_script(tmp_path, """
        import steadyrun
        run = steadyrun.init(project="late", mode="offline")
        for i in range(3):
            run.log({"train/loss": float(i)})
        print("RUN=" + run.id)
        run.finish()
    """)
    run_script(tmp_path, f"""
        import steadyrun
        run = steadyrun.attach({first.run_id!r}, job_type="eval")
        run.log({{"eval/acc": 0.9}}, step=0)
        run.summary["eval/final"] = 0.91
        run.finish()
    """)
    log = wandb_log(first.rdir)
    assert_once(log, "train/loss", [0.0, 1.0, 2.0])
    assert_once(log, "eval/acc", [0.9])
    assert log.summary["eval/final"] == 0.91
    assert_steps_strictly_increase(log)
    assert log.exit_code == 0


def test_a_state_resumed_under_another_root_never_reuses_a_wandb_step(
        tmp_path: Path) -> None:
    """A job restarted from another folder (so another ./steadyrun) resumed its state dict
    into a fresh local run of the same id, and its W&B `_step` began at 0 again while the
    W&B run already held 0..9: W&B drops such rows (seed 000's bug). The state now says
    where W&B's steps are, and the new piece continues after them."""
    first = run_script(tmp_path, """
        import json, steadyrun
        run = steadyrun.init(project="moved", mode="offline", dir="root_a")
        for i in range(10):
            run.log({"train/loss": float(i)})
        run.log_table("eval/t", columns=["a"], rows=[[1]])
        open("state.json", "w").write(json.dumps(run.state_dict()))
        print("RUN=" + run.id)
        run.finish()
    """)
    state = orjson.loads((tmp_path / "state.json").read_bytes())
    assert state["sinks"]["wandb"]["next_step"] == 11  # ten rows and a table
    first_id = first.value("RUN")
    second = run_script(tmp_path, """
        import json, steadyrun
        state = json.load(open("state.json"))
        run = steadyrun.init(mode="offline", dir="root_b", resume=state)
        for i in range(10, 15):
            run.log({"train/loss": float(i)})
        print("RUN=" + run.id)
        run.finish()
    """)
    assert second.value("RUN") == first_id
    assert "its folder is not under" in second.stderr
    old = wandb_log(tmp_path / "root_a" / "runs" / first_id)
    new = wandb_log(tmp_path / "root_b" / "runs" / first_id)
    old_steps = [row["_step"] for row in old.history]
    new_steps = [row["_step"] for row in new.history]
    assert old_steps == list(range(11))
    assert min(new_steps) >= 11 and new_steps == sorted(new_steps)
    assert [row["train/loss"] for row in new.history] == [10.0, 11.0, 12.0, 13.0, 14.0]
    assert [row["train/step"] for row in new.history] == [10, 11, 12, 13, 14]


def test_sync_after_a_kill_between_shipping_and_commit_ships_nothing_twice(
        tmp_path: Path) -> None:
    """A shipper killed after W&B wrote its batch, before the cursor commit: the next sync
    asks W&B's own log what it holds and adds no row twice."""
    done = run_script(tmp_path, """
        import steadyrun
        run = steadyrun.init(project="window", mode="local")
        for i in range(80):
            run.log({"train/loss": float(i)})
        run.finish()
    """)
    rdir = done.rdir
    steadyrun_cli(tmp_path, "sync", done.run_id, "--mode", "offline", "--quiet")
    assert_once(wandb_log(rdir), "train/loss", [float(i) for i in range(80)])
    # The cursor as such a shipper leaves it: the batch journaled, never committed.
    (seg,) = (rdir / "segments").glob("*.jsonl")
    Cursor(rdir / "sinks" / "wandb.cursor").begin({}, {seg.stem: seg.stat().st_size}, 80, 80)

    proc = steadyrun_cli(tmp_path, "sync", done.run_id, "--mode", "offline")
    log = wandb_log(rdir)
    assert_once(log, "train/loss", [float(i) for i in range(80)])
    assert [r["_step"] for r in log.history] == list(range(80))
    assert "0 new rows shipped to W&B offline (80 in all)" in proc.stderr, proc.stderr


# ---------------------------------------------------------------------- crashes
KILL_SIDECAR = """
    import os, signal, sys, time
    import orjson
    import steadyrun

    run = steadyrun.init(project="kill")
    status = run.dir / "sinks" / "wandb.json"
    cursor = run.dir / "sinks" / "wandb.cursor"
    rows = 0

    def log_one():
        global rows
        run.log({"train/loss": float(rows), "train/acc": rows / 1000})
        rows += 1

    def wait_for(what, ok):
        # Training goes on (a row every 10 ms) until the sidecar's status says `ok`.
        deadline = time.time() + 30
        while time.time() < deadline:
            try:
                st = orjson.loads(status.read_bytes())
                shipped = orjson.loads(cursor.read_bytes())["rows"]
            except (FileNotFoundError, orjson.JSONDecodeError, KeyError):
                st, shipped = {}, 0
            if ok(st, shipped):
                return st
            log_one()
            time.sleep(0.01)
        sys.exit(f"timed out waiting for {what}")

    for _ in range(150):
        log_one()
    run.flush()
    st = wait_for("the first sidecar", lambda st, n: st.get("state") == "shipping" and n > 0)
    os.kill(st["pid"], signal.SIGKILL)
    print(f"KILLED_AT={rows}", flush=True)
    # The owner's heartbeat notices and starts a new sidecar while training goes on.
    wait_for("the restarted sidecar", lambda new, n: new.get("state") == "shipping"
             and new.get("pid") not in (None, st["pid"]))
    print(f"RESTARTED_AT={rows}", flush=True)
    for _ in range(150):
        log_one()
    run.finish()
    print(f"ROWS={rows}", flush=True)
"""


def test_killed_sidecar_is_restarted_and_every_row_arrives_once(tmp_path: Path) -> None:
    done = run_script(tmp_path, KILL_SIDECAR)
    assert "restarting it" in done.stderr, done.output
    rows = int(done.value("ROWS"))
    assert int(done.value("KILLED_AT")) < int(done.value("RESTARTED_AT")) < rows - 100
    rdir = done.rdir
    log = wandb_log(rdir)

    assert len(wandb_files(rdir)) == 2  # the killed piece, then the restarted sidecar's
    assert_once(log, "train/loss", [float(i) for i in range(rows)])
    assert column(log, "train/acc") == pytest.approx([i / 1000 for i in range(rows)])
    assert column(log, "train/step") == list(range(rows))
    assert_steps_strictly_increase(log)
    assert log.exit_code == 0
    assert sink_status(rdir)["state"] == "finished"
    # The cursor's count agrees (a batch the kill left uncommitted is counted once).
    assert orjson.loads((rdir / "sinks" / "wandb.cursor").read_bytes())["rows"] == rows


SELF_KILL = """
    import os, signal
    import steadyrun

    run = steadyrun.init(project="crash", tags=["t"])
    run.config.update({"lr": 0.1})
    for i in range(300):
        run.log({"train/loss": float(i)})
    run.flush()
    print(f"RUN={run.id}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _wait_finished(rdir: Path, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            status = sink_status(rdir)
        except (FileNotFoundError, orjson.JSONDecodeError):
            status = {}
        if status.get("finished"):
            return status
        time.sleep(0.1)
    raise AssertionError(f"the sidecar did not finish in {timeout}s\n{sidecar_log(rdir)}")


def test_training_killed_the_sidecar_finishes_the_run_as_crashed(tmp_path: Path) -> None:
    done = run_script(tmp_path, SELF_KILL, check=False)
    assert done.returncode == -signal.SIGKILL, done.output
    rdir = done.rdir
    # Its sidecar lives on in its own session: it drains the log, then ends the W&B run.
    status = _wait_finished(rdir)
    assert status["state"] == "crashed"
    log = wandb_log(rdir)

    assert log.exit_code not in (None, 0)
    assert "crashed" in log.run["tags"] and "t" in log.run["tags"]
    assert_once(log, "train/loss", [float(i) for i in range(300)])
    assert log.config["lr"] == 0.1
    rows_before = [{k: v for k, v in r.items() if not k.startswith("_")} for r in log.history]

    # A later sync finds nothing new: no row twice, and the run stays crashed.
    steadyrun_cli(tmp_path, "sync", done.run_id, "--mode", "offline", "--quiet")
    after = wandb_log(rdir)
    assert [{k: v for k, v in r.items() if not k.startswith("_")} for r in after.history] \
        == rows_before
    assert_once(after, "train/loss", [float(i) for i in range(300)])
    assert after.exit_code not in (None, 0)


BOTH_KILLED = """
    import os, signal, time
    import orjson
    import steadyrun

    run = steadyrun.init(project="both", tags=["t"])
    for i in range(200):
        run.log({"train/loss": float(i)})
    run.flush()
    status = run.dir / "sinks" / "wandb.json"
    deadline = time.time() + 30
    while time.time() < deadline:  # the sidecar has started shipping
        try:
            st = orjson.loads(status.read_bytes())
        except (FileNotFoundError, orjson.JSONDecodeError):
            st = {}
        if st.get("state") == "shipping":
            break
        time.sleep(0.02)
    for i in range(200, 300):
        run.log({"train/loss": float(i)})
    run.flush()
    os.kill(st["pid"], signal.SIGKILL)  # a whole job killed at once: sidecar and training
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_sync_right_after_training_and_sidecar_were_killed_ends_crashed(
        tmp_path: Path) -> None:
    done = run_script(tmp_path, BOTH_KILLED, check=False)
    assert done.returncode == -signal.SIGKILL, done.output
    assert sink_status(done.rdir).get("finished") is not True
    # At once, while the dead owner's heartbeat is still fresh.
    steadyrun_cli(tmp_path, "sync", done.run_id, "--mode", "offline", "--quiet")
    log = wandb_log(done.rdir)

    assert_once(log, "train/loss", [float(i) for i in range(300)])
    assert log.exit_code not in (None, 0)
    assert "crashed" in log.run["tags"] and "t" in log.run["tags"]
    assert sink_status(done.rdir)["state"] == "crashed"


def test_an_explicit_summary_after_the_last_row_wins(tmp_path: Path) -> None:
    """W&B holds the last row open until finish and then writes its summary; the sink
    commits every row, so a later `summary` of the same key is what W&B keeps."""
    done = run_script(tmp_path, """
        import steadyrun
        run = steadyrun.init(project="summ")
        for i in range(10):
            run.log({"train/loss": float(i)})
        run.summary["train/loss"] = -5.0  # e.g. the best, set by hand at the end
        run.finish()
    """)
    log = wandb_log(done.rdir)
    assert column(log, "train/loss") == [float(i) for i in range(10)]
    assert log.summary["train/loss"] == -5.0


def test_a_chosen_run_id_is_the_wandb_run_id(tmp_path: Path) -> None:
    done = run_script(tmp_path, """
        import steadyrun
        run = steadyrun.init(project="ids", id="run_20251022_123456")
        for i in range(5):
            run.log({"train/loss": float(i)})
        run.finish()
    """)
    log = wandb_log(done.rdir)
    assert done.rdir.name == log.run["run_id"] == "run_20251022_123456"
    assert column(log, "train/loss") == [float(i) for i in range(5)]
