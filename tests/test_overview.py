"""`steadyrun runs` lists runs from an overview (row lines counted, segment edges parsed),
not from a full parse: it must say exactly what `open_run` says, for every shape of run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson
import pytest
import torch

import steadyrun
from steadyrun.log import deferred
from steadyrun.read import overview


def _same(rdir: Path) -> tuple[int, object, str]:
    data = steadyrun.open_run(rdir)
    over, rows, last = overview.overview(rdir)
    assert (rows, last, over.state) == (len(data.rows), data.last_step, data.state)
    assert over.segments.keys() == data.segments.keys()
    for stem, seg in data.segments.items():
        for field in ("role", "pid", "host", "opened_at", "closed", "close"):
            assert over.segments[stem][field] == seg[field], (stem, field)
    return rows, last, over.state


def test_pieces_children_regressions_and_a_torn_tail(sr_root: Path, monkeypatch) -> None:
    monkeypatch.setattr(overview, "PIECE", 97)  # row starts split by every piece boundary
    run = steadyrun.init(mode="local")
    for i in range(500):
        run.log({"train/loss": 1.0 / (i + 1), "note/x": float("nan") if i % 50 == 0 else i})
    run.log({"val/acc": 0.5}, step=3)  # a lower step in another namespace: still a row
    child = subprocess.run(
        [sys.executable, "-c", "import steadyrun\nr = steadyrun.init(job_type='eval')\n"
         "[r.log({'eval/score': float(i)}) for i in range(40)]\nr.finish()"],
        env=run.child_env(), capture_output=True, text=True, timeout=120)
    assert child.returncode == 0, child.stderr
    run.log({"train/loss": 0.0})
    run.finish()
    rows, last, state = _same(run.dir)
    assert (rows, last, state) == (542, 500, "finished")
    seg = next((run.dir / "segments").glob("owner-*.jsonl"))
    with open(seg, "ab") as fh:  # a torn last line, as a killed writer leaves it
        fh.write(b'{"k":"row","t":9e9,"x":99')
    assert _same(run.dir) == (542, 500, "finished")


def test_rows_settled_late_keep_the_last_step_of_the_latest_row(sr_root: Path,
                                                                 monkeypatch) -> None:
    monkeypatch.setattr(deferred, "DEFER_CPU", True)
    run = steadyrun.init(mode="local", log_interval=100)
    run.log({"a": torch.tensor(1.0)})  # held: written when it settles, after the next rows
    run.log({"a": 2.0})
    run.log({"b": 3.0}, step=7)
    run.finish()
    assert _same(run.dir) == (3, 7, "finished")


def test_a_killed_writer_is_crashed_and_its_rows_counted(tmp_path: Path) -> None:
    env = {**os.environ, "STEADYRUN_DIR": str(tmp_path), "STEADYRUN_METADATA": "0",
           "STEADYRUN_MODE": "local"}
    code = textwrap.dedent("""
        import os, signal, steadyrun
        run = steadyrun.init()
        for i in range(1000):
            run.log({"train/loss": float(i)})
        run.flush()
        print(run.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL
    rdir = tmp_path / "runs" / proc.stdout.split()[0]
    assert _same(rdir) == (1000, 999, "crashed")
    listed = subprocess.run([sys.executable, "-m", "steadyrun", "--dir", str(tmp_path), "runs",
                             "--json"], capture_output=True, text=True, timeout=120)
    (row,) = orjson.loads(listed.stdout)
    assert (row["rows"], row["last_step"], row["state"]) == (1000, 999, "crashed")


@pytest.mark.parametrize("garbage", [b"", b"[1, 2]", b'{"id": "x", "state": "fin'])
def test_an_unreadable_run_json_still_lists_the_run(sr_root: Path, garbage: bytes) -> None:
    run = steadyrun.init(mode="local")
    for i in range(10):
        run.log({"x": float(i)})
    run.finish()
    (run.dir / "run.json").write_bytes(garbage)
    assert _same(run.dir) == (10, 9, "finished")


def test_the_last_row_is_found_behind_large_records(sr_root: Path, monkeypatch) -> None:
    monkeypatch.setattr(overview, "TAIL", 4096)  # the window must grow past the tables
    run = steadyrun.init(mode="local")
    for i in range(100):
        run.log({"train/loss": float(i)})
    run.log_table("preds", columns=["a"], rows=[["x" * 1000] for _ in range(40)])
    run.summary.update({"best": 1.0})
    run.finish()
    assert _same(run.dir) == (100, 99, "finished")


def test_a_torn_row_longer_than_the_window_is_not_counted(sr_root: Path, monkeypatch) -> None:
    monkeypatch.setattr(overview, "TAIL", 1024)
    run = steadyrun.init(mode="local")
    for i in range(50):
        run.log({"train/loss": float(i)})
    run.finish()
    seg = next((run.dir / "segments").glob("owner-*.jsonl"))
    with open(seg, "ab") as fh:
        fh.write(b'{"k":"row","t":9e9,"x":7,"v":{"big":"' + b"y" * 5000)
    assert _same(run.dir) == (50, 49, "finished")
