"""Smoke test of the benchmark suite: `run_all.py --smoke` writes the whole table.

Benchmarks are never timed unit tests: this checks that every script runs on this
machine and reports each of its rows, in order, in results.md and results.json. It
asserts nothing about the figures themselves (`make bench` measures them).
"""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.timeout(900)
def test_run_all_quick_writes_every_row(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("STEADYRUN_", "WANDB_"))}
    proc = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--smoke", "--out",
                           str(tmp_path)], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=850)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"

    expected = runpy.run_path(str(BENCH / "run_all.py"))["ROW_ORDER"]
    data = json.loads((tmp_path / "results.json").read_text())
    rows = data["rows"]
    assert [r["id"] for r in rows] == expected
    failed = [r["id"] for r in rows if r.get("failed")]
    assert not failed, f"rows without a result: {failed}\n{data['meta']['scripts']}"
    for r in rows:
        for field in ("benchmark", "steadyrun", "baseline", "ratio", "target"):
            assert isinstance(r[field], str) and r[field], (r["id"], field)
        assert r["met"] in (True, False, None)

    md = (tmp_path / "results.md").read_text()
    assert "| benchmark | steadyrun | baseline | ratio | target | met? |" in md
    table = [line for line in md.splitlines() if line.startswith("| ") and ". " in line]
    assert [line.split(".", 1)[0].removeprefix("| ") for line in table] == expected
    assert (tmp_path / "rss_curve.csv").read_text().startswith("rows,seconds,rss_mb")
