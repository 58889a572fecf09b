"""`steadyrun sync --all`, checked against what W&B itself recorded (issue 18).

One root holds runs in every state `sync --all` meets after a bad night on a cluster: a
run recorded in mode local and never shipped, one killed in mode local (crashed, never
shipped), one whose training and sidecar were SIGKILLed together while it was shipping
(partly shipped, crashed), and one that finished offline (its sidecar shipped it all).
The real command runs over the root twice; W&B's own transaction log of each run must
then hold that run's rows exactly once, in order, with the right exit, and the second
pass must add nothing. Nothing is mocked.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from wandb_helpers import (
    Finished,
    assert_once,
    assert_steps_strictly_increase,
    start_script,
    steadyrun_cli,
    wandb_env,
    wandb_files,
    wandb_log,
)

# Each run logs its own value range under the same key: a row that reached the wrong
# W&B run, or reached it twice, shows up as an extra or a duplicate in `assert_once`.
LOCAL_DONE = """
    import steadyrun
    run = steadyrun.init(project="night", mode="local")
    print(f"RUN={run.id}", flush=True)
    run.config.update({"lr": 0.1})
    for i in range(40):
        run.log({"train/loss": 1000.0 + i})
    run.summary.update({"eval/score": 0.5})
    run.finish()
"""

LOCAL_KILLED = """
    import os, signal
    import steadyrun
    run = steadyrun.init(project="night", mode="local")
    print(f"RUN={run.id}", flush=True)
    for i in range(50):
        run.log({"train/loss": 4000.0 + i})
    run.flush()
    os.kill(os.getpid(), signal.SIGKILL)  # no finish(), no sidecar: nothing shipped
"""

# Training and sidecar killed at once after the sidecar shipped a first batch (as a
# scheduler's kill of the whole job does): W&B holds a part of the rows and no exit; the
# rest waits on disk.
BOTH_KILLED = """
    import os, signal, time
    import orjson
    import steadyrun
    run = steadyrun.init(project="night", mode="offline", tags=["t"])
    print(f"RUN={run.id}", flush=True)
    for i in range(200):
        run.log({"train/loss": 2000.0 + i})
    run.flush()
    status = run.dir / "sinks" / "wandb.json"
    cursor = run.dir / "sinks" / "wandb.cursor"
    deadline = time.time() + 60
    st, shipped = {}, 0
    while time.time() < deadline and not (st.get("state") == "shipping" and shipped > 0):
        time.sleep(0.02)
        try:
            st = orjson.loads(status.read_bytes())
            shipped = orjson.loads(cursor.read_bytes())["rows"]
        except (FileNotFoundError, orjson.JSONDecodeError, KeyError):
            st, shipped = {}, 0
    for i in range(200, 300):
        run.log({"train/loss": 2000.0 + i})
    run.flush()
    if st.get("pid"):
        os.kill(st["pid"], signal.SIGKILL)
    os.kill(os.getpid(), signal.SIGKILL)
"""

OFFLINE_DONE = """
    import steadyrun
    run = steadyrun.init(project="night", mode="offline")
    print(f"RUN={run.id}", flush=True)
    for i in range(30):
        run.log({"train/loss": 3000.0 + i})
    run.finish()  # waits for its sidecar: W&B holds every row and the exit
"""

# name: (script, rows it logged, first value, W&B exit after sync --all is 0)
RUNS = {
    "local_done": (LOCAL_DONE, 40, 1000.0, True),
    "local_killed": (LOCAL_KILLED, 50, 4000.0, False),
    "both_killed": (BOTH_KILLED, 300, 2000.0, False),
    "offline_done": (OFFLINE_DONE, 30, 3000.0, True),
}

LINE = re.compile(r"steadyrun: run (\S+): (\d+) new rows shipped to W&B offline "
                  r"\((\d+) in all\), state (\S+)")


def _outcomes(stderr: str) -> dict[str, tuple[int, int, str]]:
    """{run id: (rows shipped by this call, rows shipped in all, state)} from the
    command's summary lines; a run named twice fails here."""
    out: dict[str, tuple[int, int, str]] = {}
    for m in LINE.finditer(stderr):
        assert m.group(1) not in out, f"run {m.group(1)} synced twice in one pass\n{stderr}"
        out[m.group(1)] = (int(m.group(2)), int(m.group(3)), m.group(4))
    return out


def _user_rows(rdir: Path) -> list[dict]:
    """The rows W&B holds, without its own `_` keys (`_runtime` differs between reads)."""
    return [{k: v for k, v in row.items() if not k.startswith("_")}
            for row in wandb_log(rdir).history]


def test_sync_all_ships_every_run_once_whatever_state_it_was_left_in(tmp_path: Path) -> None:
    # The four runs are made at once, each in its own interpreter, under one root.
    scripts = {name: start_script(tmp_path, code, name=name)
               for name, (code, *_rest) in RUNS.items()}
    done: dict[str, Finished] = {name: s.wait(timeout=120, check=False)
                                 for name, s in scripts.items()}
    for name, fin in done.items():
        killed = name.endswith("killed")
        assert fin.returncode == (-signal.SIGKILL if killed else 0), f"{name}\n{fin.output}"
    ids = {name: fin.value("RUN") for name, fin in done.items()}
    assert sorted(ids.values()) == done["local_done"].run_ids  # four runs, no other
    rdir = {name: tmp_path / "sr" / "runs" / rid for name, rid in ids.items()}
    # Local runs have no W&B files before the sync: what W&B holds later came from it.
    assert not wandb_files(rdir["local_done"]) and not wandb_files(rdir["local_killed"])
    # The killed run was caught part-way: its sidecar had committed some rows, not all.
    cursor = orjson.loads((rdir["both_killed"] / "sinks" / "wandb.cursor").read_bytes())
    assert 0 < cursor["rows"] < 300, cursor
    synced_before = wandb_files(rdir["offline_done"])
    rows_before = _user_rows(rdir["offline_done"])

    first = steadyrun_cli(tmp_path, "sync", "--all", "--mode", "offline", timeout=180)
    said = _outcomes(first.stderr)
    assert sorted(said) == sorted(ids.values()), first.stderr  # every run, once
    assert "Traceback" not in first.stdout + first.stderr
    new, total, state = said[ids["local_done"]]
    assert (new, total, state) == (40, 40, "finished")
    new, total, state = said[ids["local_killed"]]
    assert (new, total, state) == (50, 50, "crashed")
    new, total, state = said[ids["both_killed"]]
    # Only what W&B lacked: some rows, not all (a batch shipped but not committed at
    # the kill is found in W&B's own log and not sent again).
    assert total == 300 and 0 < new < 300 and state == "crashed", first.stderr
    # The run its sidecar had fully shipped and finished is left alone.
    assert said[ids["offline_done"]] == (0, 30, "up-to-date")
    assert wandb_files(rdir["offline_done"]) == synced_before

    logs = {}
    for name, (_, n, lo, clean) in RUNS.items():
        log = wandb_log(rdir[name])
        assert_once(log, "train/loss", [lo + i for i in range(n)])
        assert len(log.history) == n  # nothing but its own rows
        assert_steps_strictly_increase(log)
        assert log.run["run_id"] == ids[name]
        if clean:
            assert log.exit_code == 0, name
        else:  # DESIGN section 5: a crashed run ends in W&B with 255 and the tag `crashed`
            assert log.exit_code == 255, name
            assert "crashed" in log.run["tags"], name
        logs[name] = [{k: v for k, v in row.items() if not k.startswith("_")}
                      for row in log.history]
    assert logs["offline_done"] == rows_before
    assert "t" in wandb_log(rdir["both_killed"]).run["tags"]
    local = wandb_log(rdir["local_done"])
    assert local.config["lr"] == 0.1 and local.summary["eval/score"] == 0.5

    # Idempotent: a second pass ships nothing, opens no W&B run, and says so per run.
    files = {name: wandb_files(d) for name, d in rdir.items()}
    again = steadyrun_cli(tmp_path, "sync", "--all", "--mode", "offline", timeout=180)
    said = _outcomes(again.stderr)
    assert said == {ids[name]: (0, n, "up-to-date") for name, (_, n, _, _) in RUNS.items()}, \
        again.stderr
    for name, d in rdir.items():
        assert wandb_files(d) == files[name], name
        assert _user_rows(d) == logs[name], name


def _sync(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real command, whatever its exit (steadyrun_cli insists on 0)."""
    return subprocess.run([sys.executable, "-m", "steadyrun", "sync", *args], cwd=tmp_path,
                          env=wandb_env(tmp_path), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("args", "words"), [
    ((), "name a RUN or pass --all"),
    (("abc", "--all"), "not both"),
    (("--all", "--follow"), "--follow"),
])
def test_sync_refuses_a_bad_combination_in_one_line(tmp_path: Path, args: tuple[str, ...],
                                                    words: str) -> None:
    """`RUN --all` used to ignore RUN silently, and `--all --follow` died in a traceback
    (ValueError: not enough values to unpack): a usage error is one line and exit 2,
    like every other command's, and nothing is shipped."""
    proc = _sync(tmp_path, *args)
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("steadyrun sync: "), proc.stderr
    assert words in lines[0]
    assert "Traceback" not in proc.stderr and not proc.stdout.strip()
    assert not (tmp_path / "sr").exists()  # nothing made, nothing shipped


def test_sync_all_on_an_empty_root_says_where_it_looked(tmp_path: Path) -> None:
    """Run from the wrong folder, `sync --all` said nothing and exited 0: it looked as if
    every run had been shipped. It now names the root it found empty (still exit 0)."""
    proc = _sync(tmp_path, "--all", "--mode", "offline")
    assert proc.returncode == 0, proc
    assert "no runs under" in proc.stderr and str(tmp_path / "sr") in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sync_all_goes_past_a_folder_that_is_no_run_and_a_damaged_run(tmp_path: Path) -> None:
    """A stray folder under runs/ (made by hand, or emptied) ended the whole pass in a
    FileNotFoundError traceback, and a damaged run ended it too: the runs after them never
    reached W&B. Now each is named in one line, the good run is shipped, and the exit is 1
    because one run was not synced."""
    import os

    import steadyrun

    root = tmp_path / "sr"
    made = []
    for v in (1.0, 2.0):  # in this process: a local run needs no sidecar
        run = steadyrun.init(mode="local", dir=root, metadata=False)
        run.log({"a": v})
        run.finish()
        made.append(run.dir)
    damaged, good = made
    sinks = damaged / "sinks"  # what a bad copy or restore can leave: a file for a folder
    for child in sinks.iterdir():
        child.unlink()
    sinks.rmdir()
    sinks.write_text("not a folder")
    stray = root / "runs" / "notes"
    stray.mkdir()
    # list_runs goes oldest first: the stray folder and the damaged run come before the
    # good one, so a pass that stops at the first problem never ships it.
    for age, path in ((300, stray), (200, damaged), (100, good)):
        os.utime(path, (path.stat().st_atime, path.stat().st_mtime - age))

    proc = _sync(tmp_path, "--all", "--mode", "offline")
    assert proc.returncode == 1, proc
    assert "Traceback" not in proc.stderr, proc.stderr
    assert f"{stray} is not a run (no run.json, no segments/): skipped" in proc.stderr
    assert f"run {damaged.name} was not synced: NotADirectoryError" in proc.stderr
    assert _outcomes(proc.stderr) == {good.name: (1, 1, "finished")}, proc.stderr
    log = wandb_log(good)
    assert_once(log, "a", [2.0])
    assert log.exit_code == 0
    assert not (stray / "sinks").exists()  # nothing written into what is not a run
