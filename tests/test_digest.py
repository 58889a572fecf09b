"""Digests: a run in brief without parsing its rows (store/digest, log/digest_keeper,
read/digest). What a digest says must equal what the segments say, whether the digest is
current, stale (a killed writer), missing or damaged; only the cost differs
(`folded_bytes`)."""

from __future__ import annotations

import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest

import steadyrun
from steadyrun.read.digest import run_digest


def _strip(d: dict) -> dict:
    return {k: v for k, v in d.items() if k != "folded_bytes"}


def _expected_keys(rdir: Path) -> dict:
    """Per key count, last, min and max with steps, from the segments parsed whole."""
    data = steadyrun.open_run(rdir)
    out: dict = {}
    for key in {k for r in data.rows for k in r if k != "_x" and not k.endswith("step")}:
        pairs = list(data.column(key))
        finite = [(s, v) for s, v in pairs if isinstance(v, (int, float)) and math.isfinite(v)]
        lo = min(finite, key=lambda p: p[1])
        hi = max(finite, key=lambda p: p[1])
        out[key] = {"n": len(pairs), "last": pairs[-1][1], "min": lo[1], "min_step": lo[0],
                    "max": hi[1], "max_step": hi[0]}
    return out


def _keys(d: dict) -> dict:
    return {k: {f: e[f] for f in ("n", "last", "min", "min_step", "max", "max_step")}
            for k, e in d["keys"].items()}


def test_a_finished_run_is_read_from_its_digest_alone(new_run):
    run = new_run(project="p", name="d", config={"lr": 0.1, "opt": {"name": "adam"}})
    run.define_metric("val/acc", goal="maximize")
    for i in range(300):
        run.log({"train/loss": 1 / (i + 1), "val/acc": (i % 50) / 50})
    run.summary["final"] = 3.5
    run.finish()
    d = run_digest(run.dir)
    assert d["folded_bytes"] == 0  # nothing parsed but the digest
    assert d["state"] == "finished" and d["rows"] == 300
    assert d["summary"] == {"final": 3.5}
    assert d["config"] == {"lr": 0.1, "opt": {"name": "adam"}}
    assert d["metrics"] == {"val/acc": {"goal": "maximize"}}
    assert d["steps"] == {"train/step": 299, "val/step": 299}
    assert _keys(d) == _expected_keys(run.dir)
    assert d["keys"]["val/acc"]["max"] == 49 / 50 and d["keys"]["val/acc"]["max_step"] == 49


@pytest.mark.parametrize("damage", ["missing", "garbage", "other_writer", "mid_line",
                                    "past_end", "old_version"])
def test_a_missing_or_damaged_digest_changes_nothing_but_the_cost(new_run, damage):
    run = new_run(project="p")
    for i in range(50):
        run.log({"a": float(i), "b/c": -i})
    run.finish()
    good = run_digest(run.dir)
    (path,) = (run.dir / "digests").iterdir()
    stored = orjson.loads(path.read_bytes())
    if damage == "missing":
        shutil.rmtree(run.dir / "digests")
    elif damage == "garbage":
        path.write_bytes(b"\x00{not json")
    else:
        stored.update({"other_writer": {"writer": "owner-1-abcd"},
                       "mid_line": {"offset": stored["offset"] - 3},
                       "past_end": {"offset": stored["offset"] + 10_000},
                       "old_version": {"v": 0}}[damage])
        path.write_bytes(orjson.dumps(stored))
    again = run_digest(run.dir)
    assert again["folded_bytes"] > 0  # the segment was parsed instead
    assert _strip(again) == _strip(good)


def test_a_killed_writer_leaves_a_stale_digest_and_the_reader_folds_the_rest(sr_root):
    """SIGKILL after rows the digest has not seen: the reader still counts every row."""
    code = textwrap.dedent("""
        import os, sys, time, steadyrun
        run = steadyrun.init(project="p", mode="local")
        for i in range(100):
            run.log({"x": float(i)})
        run.flush()                      # the digest covers 100 rows
        for i in range(100, 160):
            run.log({"x": float(i)})     # these only the segment has
        print(run.dir, flush=True)
        os.kill(os.getpid(), 9)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ), cwd=sr_root)
    assert proc.returncode == -signal.SIGKILL
    rdir = Path(proc.stdout.strip())
    (path,) = (rdir / "digests").iterdir()
    assert orjson.loads(path.read_bytes())["rows"] == 100
    d = run_digest(rdir)
    assert d["rows"] == 160 and d["folded_bytes"] > 0
    assert d["keys"]["x"]["last"] == 159.0 and d["keys"]["x"]["max_step"] == 159
    assert d["state"] == "crashed"


def test_the_writer_thread_keeps_the_digest_current_without_flush(new_run):
    run = new_run(project="p")
    for i in range(20):
        run.log({"x": float(i)})
    deadline = time.monotonic() + 15
    rows = None
    while time.monotonic() < deadline:  # the heartbeat's tick, every ~2 s
        path = next(iter((run.dir / "digests").glob("*.json")), None)
        if path is not None:
            rows = orjson.loads(path.read_bytes())["rows"]
            if rows == 20:
                break
        time.sleep(0.1)
    assert rows == 20


def test_writers_of_one_run_are_merged(new_run, run_python):
    run = new_run(project="p")
    run.define_metric("eval/acc", goal="maximize")
    for i in range(10):
        run.log({"train/loss": 10.0 - i})
    run_python("""
        import steadyrun
        with steadyrun.init(project="p") as run:   # joins through the context variable
            for i in range(5):
                run.log({"eval/acc": 0.1 * i, "train/loss": 0.5})
    """, env={**os.environ, **run.child_env()})
    run.summary["final"] = 1
    run.finish()
    d = run_digest(run.dir)
    assert d["rows"] == 15 and d["folded_bytes"] == 0
    assert d["keys"]["train/loss"]["n"] == 15 and d["keys"]["train/loss"]["min"] == 0.5
    assert d["keys"]["eval/acc"]["max"] == pytest.approx(0.4)
    assert d["metrics"]["eval/acc"]["goal"] == "maximize"
    assert _keys(d) == _expected_keys(run.dir)


def test_nonfinite_values_are_counted_not_ranked(new_run):
    run = new_run(project="p")
    for v in (1.0, float("nan"), 3.0, float("inf"), 2.0):
        run.log({"v": v})
    run.log({"w": float("-inf")})
    run.finish()
    e = run_digest(run.dir)["keys"]
    assert (e["v"]["n"], e["v"]["nonfinite"], e["v"]["min"], e["v"]["max"], e["v"]["last"]) == \
        (5, 2, 1.0, 3.0, 2.0)
    assert e["w"]["last"] == "-inf" and e["w"]["min"] is None


def test_fold_columns_equals_folding_the_rows_one_by_one() -> None:
    """`steadyrun import` folds batches of same-shape rows as columns (min, max and
    index at C speed); the digest must be the one the row-wise fold gives: ties keep
    the first row, ints and floats mix, a user's own namespace step is the x of its
    namespace, a step metric's last value is kept, and batches continue a digest."""
    import random

    from steadyrun.store import digest

    rng = random.Random(7)
    for trial in range(200):
        n = rng.randint(1, 40)
        keys = rng.sample(["loss", "acc", "train/loss", "train/step", "val/acc", "step"],
                          rng.randint(1, 5))
        pool = [0, 1, 1.0, -0.0, 0.0, 2.5, -3, 7, 7.0, 1e-9]
        cols = {k: [rng.choice(pool) for _ in range(n)] for k in keys}
        xs = sorted(rng.randint(0, 50) for _ in range(n))
        ts = [1000.0 + i for i in range(n)]
        start = rng.randint(0, n)  # rows folded before the batch, row-wise
        by_rows = digest.new()
        by_cols = digest.new()
        for i in range(n):
            rec = {"k": "row", "t": ts[i], "x": xs[i],
                   "v": {k: cols[k][i] for k in keys}}
            digest.fold(by_rows, [rec])
            if i < start:
                digest.fold(by_cols, [rec])
        digest.fold_columns(by_cols, {k: tuple(c[start:]) for k, c in cols.items()},
                            tuple(xs[start:]), tuple(ts[start:]))
        assert by_cols == by_rows, (trial, keys, start)
        # the same rows folded in two pieces (importer/parallel.py), then extended
        first, second = digest.new(), digest.new()
        for i in range(n):
            rec = {"k": "row", "t": ts[i], "x": xs[i], "v": {k: cols[k][i] for k in keys}}
            digest.fold(first if i < start else second, [rec])
        assert digest.extend(first, second) == by_rows, (trial, keys, start)
        # types too (1 and 1.0 are equal, but the digest keeps the one logged)
        for k, e in by_rows["keys"].items():
            for f in ("last", "min", "max"):
                assert type(e[f]) is type(by_cols["keys"][k][f]), (trial, k, f)
