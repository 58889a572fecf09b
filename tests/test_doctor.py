"""`steadyrun doctor` (issue 16, part 1) on real W&B runs, one per seed's bug.

Every W&B run here is made by raw `wandb` in offline mode, in a subprocess, the way the
seeds' wrappers made them; doctor reads the folders only after the processes exited.
Three scripts run at once (module fixture `wb`):

- `seeds.py`, one process, one run after the other (each in its own folder):
  seed000 (step counters that fight: dropped rows, and final scores logged as rows),
  seed001 (a step metric defined but never logged: empty charts), mixed (a namespace
  logged with and without its step key), seed003 (a key in the config, on the command
  line and in a saved file), clean (done right), killed (os._exit: no exit record).
- `rank.py` twice at once, RANK=0 and RANK=1, no rank-0 guard (seed 004).
- `orchestrate.py`, which starts `train.py` as a stage with a run of its own, then logs
  its eval scores with wandb.log (seed 002).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import steadyrun
from steadyrun.cli.main import main
from steadyrun.doctor import DoctorInputError, examine
from steadyrun.testing import wandb_env

PRELUDE = """
import os, sys, time
import wandb

def settings():
    return wandb.Settings(x_disable_stats=True, disable_git=True, save_code=False)
"""

SEEDS = PRELUDE + """
# seed 000: the batch loop lets wandb count, the epoch logger keeps its own counter.
run = wandb.init(project="cine", dir="seed000", settings=settings())
global_step = 0
for epoch in range(3):
    for batch in range(5):
        wandb.log({"batch_loss": 1.0 / (global_step + 1)})
        global_step += 1
    wandb.log({"epoch_loss": 0.5 - epoch * 0.1, "val_acc": 0.7 + epoch * 0.05},
              step=epoch, commit=False)
for batch in range(5):  # the next epoch starts; W&B's warnings reach the console
    wandb.log({"batch_loss": 0.01})
time.sleep(0.3)
final_step = wandb.run.step
wandb.log({"test_acc": 0.91, "test_loss": 0.2}, step=final_step)
wandb.log({"training_history": 3}, step=final_step + 1)
run.finish()

# seed 001: the x-axis is defined, the rows never carry it.
run = wandb.init(project="ups", dir="seed001", settings=settings())
wandb.define_metric("training/operator/step")
wandb.define_metric("training/operator/*", step_metric="training/operator/step")
for step in range(6):
    run.log({"training/operator/loss": 1.0 / (step + 1), "training/operator/lr": 1e-3},
            step=step)
run.finish()

# a namespace whose step key is in some rows only
run = wandb.init(project="mix", dir="mixed", settings=settings())
for epoch in range(3):
    run.log({"val/loss": 1.0 - epoch * 0.1, "val/step": epoch})
    run.log({"val/loss": 0.5})  # another component logs val/loss without val/step
run.finish()

# seed 003: a key in the config, one on the command line, one in a saved file
sys.argv = [sys.argv[0], "--lr", "0.1", "--wandb_api_key", "0123456789abcdef0123456789abcdef01234567"]
run = wandb.init(project="casas", dir="seed003", settings=settings(),
                 config={"lr": 0.1, "wandb_api_key": "0123456789abcdef0123456789abcdef01234567",
                         "data": {"url": "https://alice:s3cretpass@data.example.com/x"}})
with open("notes.txt", "w") as fh:
    fh.write("run notes\\nHF_TOKEN = 'hf_abcdefghijklmnopqrstuvwxyz012345'\\n")
wandb.save("notes.txt", policy="now")
for i in range(3):
    run.log({"train/loss": 1.0 / (i + 1)})
run.finish()
sys.argv = sys.argv[:1]

# done right: the step metric is logged as data, final scores go to the summary
run = wandb.init(project="clean", dir="clean", settings=settings(), config={"lr": 0.1})
wandb.define_metric("train/step")
wandb.define_metric("train/*", step_metric="train/step")
for step in range(20):
    run.log({"train/loss": 1.0 / (step + 1), "train/step": step})
run.summary["eval/acc"] = 0.93
run.finish()

# a longer run, which the parallel test reads in block ranges: console lines, and a
# step metric defined after rows
run = wandb.init(project="long", dir="long", settings=settings())
for i in range(1500):
    run.log({"a/loss": 1.0 / (i + 1), "a/acc": i / 1500})
    if i % 100 == 0:
        print(f"progress {i}", flush=True)
    if i == 1000:
        run.define_metric("b/x", step_metric="b/n")
    if i > 1000 and i % 50 == 0:
        run.log({"b/n": i, "b/x": 1.0})
run.finish()

# killed: no finish, no exit record
run = wandb.init(project="crash", dir="killed", settings=settings())
for i in range(50):
    run.log({"loss": float(i)})
time.sleep(1.5)  # wandb-core writes its log about once a second
os._exit(1)
"""

RANK = PRELUDE + """
# seed 004's tracker without its rank-0 guard: every rank opens a run
run = wandb.init(project="vla", dir="ddp", settings=settings(),
                 config={"world_size": int(os.environ["WORLD_SIZE"])})
for step in range(30):
    run.log({"loss/total": 1.0 / (step + 1)})
    time.sleep(0.02)
run.finish()
"""

TRAIN = PRELUDE + """
run = wandb.init(project="ups", dir="pipe", group="pipe-1", job_type="train",
                 settings=settings())
for step in range(10):
    run.log({"train/loss": 1.0 / (step + 1)})
run.finish()
"""

ORCHESTRATE = PRELUDE + """
import subprocess
# seed 002: the orchestrator has a run, the training stage makes its own, linked by group
run = wandb.init(project="ups", dir="pipe", group="pipe-1", job_type="orchestrator",
                 settings=settings())
subprocess.run([sys.executable, "train.py"], check=True)
subprocess.run([sys.executable, "-c", "pass"], env={**os.environ, "WANDB_MODE": "disabled"},
               check=True)  # the eval stage, with W&B disabled
wandb.log({"eval/nrmse": 0.09, "eval/mse": 0.001})  # final scores as a time series
run.finish()
"""


def _start(base: Path, name: str, code: str, **env: str) -> subprocess.Popen[bytes]:
    (base / f"{name}.py").write_text(textwrap.dedent(code))
    log = open(base / f"{name}-{env.get('RANK', '')}.out", "wb")  # noqa: SIM115
    return subprocess.Popen([sys.executable, f"{name}.py"], cwd=base, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=wandb_env(base, WANDB_MODE="offline", **env))


@pytest.fixture(scope="module")
def wb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("doctor")
    (base / "train.py").write_text(textwrap.dedent(TRAIN))
    procs = [_start(base, "seeds", SEEDS), _start(base, "orchestrate", ORCHESTRATE)]
    ranks = {"WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    procs += [_start(base, "rank", RANK, RANK=str(r), LOCAL_RANK=str(r), **ranks)
              for r in (0, 1)]
    codes = [p.wait(timeout=180) for p in procs]
    outs = {p.name: p.read_text(errors="replace") for p in base.glob("*.out")}
    assert codes == [1, 0, 0, 0], f"{codes}\n{outs}"  # seeds.py ends in os._exit(1)
    return base


def findings(*paths: Path) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for f in examine(paths).findings:
        out.setdefault(f.code, []).append(f)
    return out


def only(found: dict[str, list[Any]], code: str) -> Any:
    assert len(found.get(code, [])) == 1, found
    return found[code][0]


def codes(found: dict[str, list[Any]]) -> set[str]:
    return set(found)


# ---------------------------------------------------------------------- one bug per run
def test_dropped_rows_give_their_steps(wb: Path) -> None:
    found = findings(wb / "seed000")
    assert codes(found) == {"dropped-rows", "one-point-series", "not-synced"}
    drop = only(found, "dropped-rows")
    assert drop.severity == "error"
    assert drop.evidence["count"] == 3
    assert drop.evidence["steps"] == [0, 1, 2]
    assert drop.evidence["current_steps"] == [5, 10, 15]
    assert all(w.startswith("run-") and "console line" in w for w in drop.evidence["where"])
    assert drop.keys == []  # W&B keeps no key of a dropped row
    # all_metrics / training_history logged as rows at the end (seed 000's "fix")
    one = only(found, "one-point-series")
    assert one.keys == ["test_acc", "test_loss", "training_history"]


def test_dropped_rows_read_from_output_log_too(wb: Path) -> None:
    """A log whose console records are missing (console capture in another form, a log
    cut short) still has files/output.log beside it: the same drops, with their lines."""
    from steadyrun.doctor.folders import discover
    from steadyrun.doctor.wandb_checks import check_run
    from steadyrun.doctor.wandb_scan import WandbScan
    from steadyrun.doctor.wandb_side import read_side

    folder = next((wb / "seed000" / "wandb").glob("offline-run-*"))
    assert "Tried to log to step 0" in (folder / "files" / "output.log").read_text()
    scan = WandbScan(discover([str(folder)]).wandb[0])  # nothing read from the log
    [drop] = [f for f in check_run(scan, read_side(scan)) if f.code == "dropped-rows"]
    assert drop.evidence["steps"] == [0, 1, 2]
    assert drop.evidence["where"][0].startswith("files/output.log:")


def test_empty_chart_names_key_and_step_metric(wb: Path) -> None:
    found = findings(wb / "seed001")
    assert codes(found) == {"empty-chart", "not-synced"}
    chart = only(found, "empty-chart")
    assert chart.severity == "error"
    assert chart.keys == ["training/operator/loss", "training/operator/lr"]
    assert chart.evidence["step_metric"] == "training/operator/step"
    assert chart.evidence["defined_as"] == "training/operator/*"
    assert chart.evidence["rows"] == {"training/operator/loss": 6, "training/operator/lr": 6}
    # wandb 0.31's step_sync writes the never-logged step metric as 0 into every row
    assert chart.evidence["step_value"] == "0"


def test_mixed_axes(wb: Path) -> None:
    found = findings(wb / "mixed")
    assert codes(found) == {"mixed-axes", "not-synced"}
    mixed = only(found, "mixed-axes")
    assert mixed.keys == ["val/loss"]
    assert mixed.evidence == {"step_metric": "val/step",
                              "rows": {"val/loss": {"with": 3, "without": 3}}}


def test_secrets_are_located_never_shown(wb: Path) -> None:
    found = findings(wb / "seed003")
    assert codes(found) == {"secret-in-config", "not-synced"}
    secret = only(found, "secret-in-config")
    assert secret.keys == ["data.url", "wandb_api_key"]
    where = secret.evidence["where"]
    assert "config:wandb_api_key" in where and "config:data.url" in where
    assert "wandb-metadata args[3]" in where  # the value after --wandb_api_key
    assert "files/notes.txt:2" in where
    text = json.dumps(secret.as_dict())
    for value in ("0123456789abcdef0123456789abcdef01234567", "s3cretpass", "hf_abcdef"):
        assert value not in text


def test_killed_run_is_unfinished(wb: Path) -> None:
    found = findings(wb / "killed")
    assert codes(found) == {"unfinished", "not-synced"}
    assert only(found, "unfinished").severity == "warn"


def test_duplicate_ranks(wb: Path) -> None:
    found = findings(wb / "ddp")
    assert codes(found) == {"duplicate-ranks", "not-synced"}
    dup = only(found, "duplicate-ranks")
    ids = sorted(p.name.split("-")[-1] for p in (wb / "ddp" / "wandb").glob("offline-run-*"))
    assert len(ids) == 2 and sorted(dup.evidence["runs"]) == ids
    assert dup.evidence["program"].endswith("rank.py")
    assert dup.evidence["started_within_s"] < 10
    assert len(found["not-synced"]) == 2


def test_split_pipeline_and_final_scores_as_rows(wb: Path) -> None:
    found = findings(wb / "pipe")
    assert codes(found) == {"split-pipeline", "one-point-series", "not-synced"}
    split = only(found, "split-pipeline")
    assert split.evidence["group"] == "pipe-1"
    assert sorted(split.evidence["job_types"]) == ["orchestrator", "train"]
    assert len(split.evidence["runs"]) == 2
    one = only(found, "one-point-series")
    assert one.keys == ["eval/mse", "eval/nrmse"]
    assert one.run == split.evidence["runs"][0]  # the orchestrator, started first


# ---------------------------------------------------------------------- clean runs
def test_clean_wandb_run_gives_no_finding(wb: Path) -> None:
    found = findings(wb / "clean")
    assert codes(found) == {"not-synced"}  # offline, never uploaded
    log = next((wb / "clean" / "wandb").glob("offline-run-*/run-*.wandb"))
    # what `wandb sync` leaves beside a log it uploaded (this test has no network)
    marker = log.with_name(log.name + ".synced")
    marker.touch()
    try:
        assert findings(wb / "clean") == {}
    finally:
        marker.unlink()


def test_clean_steadyrun_run_gives_no_finding(sr_root: Path) -> None:
    with steadyrun.init(mode="local", project="clean", config={"lr": 0.1}) as run:
        for step in range(20):
            run.log({"train/loss": 1.0 / (step + 1)})
        run.summary.update({"eval/acc": 0.9})
    report = examine([sr_root])
    assert report.findings == []
    assert [r["kind"] for r in report.runs] == ["steadyrun"]


def test_steadyrun_run_reports_what_it_recorded(sr_root: Path) -> None:
    with pytest.warns(Warning):
        with steadyrun.init(mode="local", project="bad") as run:
            run.log({"train/loss": 1.0}, step=5)
            run.log({"train/loss": 0.9}, step=2)  # the step goes back
            run.log({"train/acc": "high"})  # not a number
    found = findings(Path(run.dir))
    assert codes(found) == {"step-regression", "rejected-values"}
    reg = only(found, "step-regression")
    assert reg.keys == ["train/step"] and reg.evidence["steps"] == [[5, 2]]
    assert only(found, "rejected-values").keys == ["train/acc"]


# ---------------------------------------------------------------------- the command
def test_cli_exit_codes_and_json(wb: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", str(wb / "clean")]) == 0  # info only
    capsys.readouterr()
    assert main(["doctor", str(wb / "mixed")]) == 0  # a warning, --fail-on error
    assert main(["doctor", "--fail-on", "warn", str(wb / "mixed")]) == 1
    capsys.readouterr()
    assert main(["doctor", "--json", str(wb / "seed001"), str(wb / "clean")]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [f["code"] for f in out["findings"]] == ["empty-chart", "not-synced",
                                                    "not-synced"]
    assert out["counts"] == {"error": 1, "warn": 0, "info": 2}
    assert {r["kind"] for r in out["runs"]} == {"wandb"}
    assert main(["doctor", str(wb / "seed001")]) == 1
    text = capsys.readouterr().out
    assert "ERROR empty-chart" in text and "training/operator/step" in text


def test_whole_folder_finds_no_cross_run_noise(wb: Path) -> None:
    """The seeds script made its runs one after the other in one process: the same
    program and host within seconds, but never alive together, so not ranks."""
    report = examine([wb / d for d in ("seed000", "seed001", "mixed", "seed003", "clean")])
    assert not {f.code for f in report.findings} & {"duplicate-ranks", "split-pipeline"}
    assert len(report.runs) == 5


@pytest.mark.parametrize("case", ["truncated", "empty folder", "not W&B", "missing",
                                  "bad header"])
def test_unreadable_input_exits_2(case: str, wb: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    log = next((wb / "clean" / "wandb").glob("offline-run-*/run-*.wandb"))
    if case == "truncated":
        path = tmp_path / "offline-run-20250101_000000-cut"
        path.mkdir()
        (path / log.name).write_bytes(log.read_bytes()[:20])
        why = f"{path / log.name}: W&B transaction log is truncated: no whole record"
    elif case == "empty folder":
        path = tmp_path / "wandb"
        path.mkdir()
        why = f"{path}: is empty"
    elif case == "not W&B":
        path = tmp_path / "notes.txt"
        path.write_text("hello")
        why = f"{path}: not a W&B transaction log"
    elif case == "missing":
        path = tmp_path / "nope"
        why = f"{path}: no such file or folder"
    else:
        path = tmp_path / "run-abc.wandb"
        path.write_bytes(b"PK\x03\x04 a zip file")
        why = f"{path}: not a W&B transaction log (bad header"
    assert main(["doctor", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("steadyrun doctor: cannot read: ") and why in err
    assert "Traceback" not in err and err.count("\n") == 1
    with pytest.raises(DoctorInputError):
        examine([path])


def test_torn_tail_is_unfinished_not_unreadable(wb: Path, tmp_path: Path) -> None:
    """A log cut after some whole records (a killed wandb-core) is read up to the cut."""
    log = next((wb / "seed001" / "wandb").glob("offline-run-*/run-*.wandb"))
    cut = tmp_path / log.parent.name
    cut.mkdir()
    data = log.read_bytes()
    (cut / log.name).write_bytes(data[:len(data) * 2 // 3])
    found = findings(cut)
    unfinished = only(found, "unfinished")
    assert unfinished.evidence["torn_records"] >= 1
    assert "empty-chart" in found  # what was read is still checked


def test_the_fast_row_path_reads_what_protobuf_reads(wb: Path, monkeypatch) -> None:
    """wandb_scan reads history records with a regex over protobuf's wire format, for
    speed; it must agree with wandb's own protobuf classes on every run of the fixture."""
    import re

    from steadyrun.doctor import folders, wandb_scan

    def summary(scan: Any) -> Any:
        shapes = {tuple(sorted(k)): (s.count, s.first_row, s.last_row, s.first_step,
                                     s.last_step) for k, s in scan.shapes.items()}
        steps = {k: (t.first, t.changed) for k, t in scan.steps.items()}
        return (scan.rows, shapes, steps, scan.kinds, scan.drops, scan.exit_code,
                scan.summary_strings, scan.last_time)

    targets = folders.discover([str(d) for d in wb.iterdir()
                                if d.is_dir() and any(d.rglob("run-*.wandb"))]).wandb
    assert len(targets) >= 6
    parsed = []  # history records that went to protobuf
    slow_row = wandb_scan._Scanner.history_slow
    monkeypatch.setattr(wandb_scan._Scanner, "history_slow",
                        lambda self, rec: (parsed.append(1), slow_row(self, rec)))
    fast = [summary(wandb_scan.scan(t)) for t in targets]
    rows = sum(f[0] for f in fast)
    assert rows > 50 and len(parsed) < rows / 2, (rows, len(parsed))  # the fast path ran
    monkeypatch.setattr(wandb_scan, "_HEAD", re.compile(rb"(?!)"))  # protobuf for all
    parsed.clear()
    slow = [summary(wandb_scan.scan(t)) for t in targets]
    assert len(parsed) == rows
    assert fast == slow


@pytest.mark.parametrize("procs", [2, 3, 6])
def test_a_log_read_by_several_processes_gives_what_one_pass_gives(
        wb: Path, monkeypatch: pytest.MonkeyPatch, procs: int) -> None:
    """doctor/parallel.py reads a big log in block ranges at once; on every run of the
    fixture (forced into ranges of a few blocks) the scan, and every finding, must be
    the one a single pass gives."""
    from steadyrun.doctor import diagnose, folders, wandb_scan

    def summary(scan: Any) -> Any:
        shapes = {tuple(sorted(k)): (s.count, s.first_row, s.last_row, s.first_step,
                                     s.last_step) for k, s in scan.shapes.items()}
        steps = {k: (t.first, t.changed) for k, t in scan.steps.items()}
        return (scan.rows, shapes, steps, scan.kinds, scan.drops, scan.exit_code,
                scan.summary_strings, scan.last_time, scan.console_lines, scan.metrics,
                scan.config, scan.run, scan.stats.torn, scan.stats.records)

    dirs = [str(d) for d in wb.iterdir() if d.is_dir() and any(d.rglob("run-*.wandb"))]
    targets = folders.discover(dirs).wandb
    assert max(f.stat().st_size for t in targets for f in t.files) > 8 * 32 * 1024
    one = [summary(wandb_scan.scan(t)) for t in targets]
    found_one = [repr(f) for f in diagnose(dirs)]
    assert found_one
    monkeypatch.setattr(wandb_scan, "_PROCS", procs)
    many = [summary(wandb_scan.scan(t)) for t in targets]
    assert many == one
    assert [repr(f) for f in diagnose(dirs)] == found_one
