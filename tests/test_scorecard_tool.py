"""tests/faults/make_scorecard.py publishes only what one passing run measured.

The tool used to merge rows by test id into the saved scorecard and only print pytest's
exit code, so a case that began to fail kept its old passing row, and a case that no
longer ran kept a row forever. Here the tool runs a tiny real suite (a fresh pytest, as
it runs the fault suite) that records scorecard rows the way tests/faults/ does.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location(
    "make_scorecard", REPO / "tests" / "faults" / "make_scorecard.py")
assert _spec is not None and _spec.loader is not None
make_scorecard = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_scorecard)

RECORDS = """
import json, os

def test_records_a_row():
    with open(os.environ["STEADYRUN_SCORECARD"], "a") as fh:
        fh.write(json.dumps({"case": "fresh case", "test": "t::fresh", "rows_logged": 5,
                             "rows_local": 5, "rows_wandb": 5}) + "\\n")
"""
FAILS = RECORDS + """
def test_fails():
    assert 1 == 2
"""
DOC = "# Scorecard\n\n<!-- scorecard:start -->\nold table\n<!-- scorecard:end -->\n\nprose\n"
STALE = [{"case": "stale case", "test": "t::gone", "rows_logged": 1, "rows_local": 1,
          "rows_wandb": 1, "commit": "0000000", "date": "2020-01-01"}]


def _setup(tmp_path: Path, suite: str) -> tuple[list[str], Path, Path]:
    (tmp_path / "suite").mkdir()
    (tmp_path / "suite" / "test_tiny.py").write_text(suite)
    results, doc = tmp_path / "scorecard.json", tmp_path / "reliability.md"
    results.write_text(json.dumps(STALE))
    doc.write_text(DOC)
    args = ["--no-audit", "--jobs", "0", "--tests", str(tmp_path / "suite"), "--results", str(results),
            "--doc", str(doc)]
    return args, results, doc


def test_a_passing_run_replaces_every_row_and_stamps_each_with_its_commit(
        tmp_path: Path) -> None:
    args, results, doc = _setup(tmp_path, RECORDS)
    assert make_scorecard.main(args) == 0
    rows = json.loads(results.read_text())
    head = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=REPO,
                          capture_output=True, text=True, check=True).stdout.strip()
    # The stale row (its test did not run) is gone; the fresh row carries its stamp.
    assert [r["case"] for r in rows] == ["fresh case"]
    assert rows[0]["commit"].startswith(head) and len(rows[0]["date"]) == 10
    text = doc.read_text()
    assert "old table" not in text and "| fresh case | 5 / 5 / 5 |" in text
    assert f"1 row at commit `{rows[0]['commit']}` on {rows[0]['date']}" in text
    assert text.endswith("<!-- scorecard:end -->\n\nprose\n")


def test_a_failing_case_fails_the_tool_and_publishes_nothing(tmp_path: Path) -> None:
    args, results, doc = _setup(tmp_path, FAILS)
    with pytest.raises(SystemExit) as exc:
        make_scorecard.main(args)
    assert "pytest failed" in str(exc.value.code)
    # The row the passing test recorded is not published beside a failure.
    assert json.loads(results.read_text()) == STALE
    assert doc.read_text() == DOC


def test_a_suite_that_records_nothing_fails_the_tool(tmp_path: Path) -> None:
    args, results, doc = _setup(tmp_path, "def test_quiet():\n    assert True is not False\n")
    with pytest.raises(SystemExit) as exc:
        make_scorecard.main(args)
    assert "recorded no figures" in str(exc.value.code)
    assert doc.read_text() == DOC
