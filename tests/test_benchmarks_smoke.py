"""Smoke test of the benchmark suite: `run_all.py --smoke` writes every row of the table.

Benchmarks are never timed unit tests: this checks that every script runs on this
machine and reports each of its rows, in order, in results.md and results.json. It
asserts nothing about the figures themselves (`make bench` measures them).

The sections run in a few groups, one test each, so that `pytest -n` spreads them over
its workers: run as one test they were the suite's last and longest test (160 s of
`make test`'s 6 minutes on 2 cores, 290 s with the peers installed). They are marked
`alone`: `make test` runs them after the rest, two at a time, never beside the tests
that time a call.
"""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from wandb_helpers import bare_env

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
RUN_ALL = runpy.run_path(str(BENCH / "run_all.py"))
# Groups of sections of about the same cost (a third of a minute to a minute each).
# (`--only e` runs bench_throughput.py too, whose row e2 is in section e: c goes with e.)
GROUPS = ["d,a", "c,e", "b", "f,g", "p", "u", "l", "w,k"]


def test_the_groups_cover_every_section_once() -> None:
    sections = [section for _, section, _, _ in RUN_ALL["SCRIPTS"]]
    grouped = [s for group in GROUPS for s in group.split(",")]
    assert sorted(grouped) == sorted(sections)


# `alone`: each group keeps both cores busy for up to a minute; `make test` runs them in a
# pass of their own so they never starve a test that times a call or waits on a deadline.
@pytest.mark.alone
@pytest.mark.timeout(600)
@pytest.mark.parametrize("group", GROUPS, ids=[g.replace(",", "-") for g in GROUPS])
def test_run_all_smoke_writes_every_row(tmp_path: Path, group: str) -> None:
    env = bare_env()
    proc = subprocess.run([sys.executable, str(BENCH / "run_all.py"), "--smoke", "--only",
                           group, "--out", str(tmp_path)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=550)
    assert proc.returncode == 0, f"stdout:\n{proc.stdout[-4000:]}\nstderr:\n{proc.stderr[-4000:]}"

    sections = set(group.split(","))
    ran = [ids for _, s, ids, _ in RUN_ALL["SCRIPTS"]  # run_all's own --only rule
           if s in sections or any(i[0] in sections for i in ids)]
    expected = [rid for rid in RUN_ALL["ROW_ORDER"] if any(rid in ids for ids in ran)]
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
    if "e" in sections:
        assert (tmp_path / "rss_curve.csv").read_text().startswith("rows,seconds,rss_mb")
