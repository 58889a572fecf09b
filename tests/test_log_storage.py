"""The on-disk log: layout, torn segments, flush durability, round-trips, concurrency."""

from __future__ import annotations

import json
import math
import re
import signal
import threading

import numpy as np
import pytest

import steadyrun


def _segments(sr_root, run_id):
    return sorted((sr_root / "runs" / run_id / "segments").glob("*.jsonl"))


# ---------------------------------------------------------------------- layout

def test_layout_run_id_manifest_and_segments(sr_root, new_run):
    run = new_run(project="proj", name="first")
    run.log({"a": 1})
    run.finish()

    assert re.fullmatch(r"[a-z0-9]{8}", run.id)
    rdir = sr_root / "runs" / run.id
    manifest = json.loads((rdir / "run.json").read_text())
    assert manifest["id"] == run.id
    assert manifest["project"] == "proj" and manifest["name"] == "first"
    assert manifest["state"] == "finished" and manifest["exit_code"] == 0
    segments = _segments(sr_root, run.id)
    assert len(segments) == 1
    lines = segments[0].read_bytes().split(b"\n")
    assert lines[-1] == b""  # every record ends in a newline
    kinds = [json.loads(line)["k"] for line in lines[:-1]]
    assert kinds[0] == "open" and kinds[-1] == "close" and "row" in kinds

    data = steadyrun.open_run(run.id)
    assert data.id == run.id and data.state == "finished" and data.torn == 0
    assert list(data.segments) == [segments[0].stem]
    assert data.segments[segments[0].stem]["closed"] is True


def test_run_ids_are_distinct(new_run):
    ids = {new_run().id for _ in range(20)}
    assert len(ids) == 20
    assert all(re.fullmatch(r"[a-z0-9]{8}", i) for i in ids)


def test_dir_argument_beats_the_environment(sr_root, tmp_path_factory):
    other = tmp_path_factory.mktemp("other-root")
    run = steadyrun.init(mode="local", dir=other)
    run.log({"a": 1})
    run.finish()

    assert (other / "runs" / run.id / "run.json").is_file()
    assert not (sr_root / "runs" / run.id).exists()
    assert steadyrun.open_run(run.id, root=other).rows[0]["a"] == 1
    assert steadyrun.open_run(other / "runs" / run.id).id == run.id
    assert steadyrun.list_runs(other) == [other / "runs" / run.id]


def test_open_run_by_prefix_and_path(sr_root, new_run):
    run = new_run()
    run.log({"a": 1})
    run.finish()
    assert steadyrun.open_run(run.id[:5]).id == run.id
    assert steadyrun.open_run(sr_root / "runs" / run.id).id == run.id
    with pytest.raises(RuntimeError, match="no run"):
        steadyrun.open_run("zzzzzzzz-missing")


# ---------------------------------------------------------------------- torn segments

def test_torn_last_line_is_counted_not_fatal(sr_root, new_run):
    run = new_run()
    for i in range(10):
        run.log({"a": i})
    run.finish()
    (segment,) = _segments(sr_root, run.id)
    with open(segment, "ab") as fh:
        fh.write(b'{"k":"row","t":1e10,"x":10,"v":{"a":1')  # killed mid-write

    data = steadyrun.open_run(run.id)
    assert data.torn == 1
    assert [r["a"] for r in data.rows] == list(range(10))
    assert data.segments[segment.stem]["torn"] == 1
    assert {"type": "torn", "count": 1} in data.anomalies


def test_torn_line_glued_to_a_later_record_keeps_the_later_record(sr_root, new_run):
    run = new_run()
    run.log({"a": 1})
    run.finish()
    (segment,) = _segments(sr_root, run.id)
    alert = {"k": "alert", "t": 1e10, "title": "after", "text": "", "level": "INFO"}
    with open(segment, "ab") as fh:
        fh.write(b'{"k":"row","t":1e10,"x":5,"v":{"a":')
        fh.write(json.dumps(alert).encode() + b"\n")

    data = steadyrun.open_run(run.id)
    assert data.torn == 1
    assert [a["title"] for a in data.alerts] == ["after"]
    assert len(data.rows) == 1


def test_garbage_line_in_the_middle_is_skipped(sr_root, new_run):
    run = new_run()
    run.log({"a": 1})
    run.finish()
    (segment,) = _segments(sr_root, run.id)
    body = segment.read_bytes().split(b"\n")
    body.insert(2, b"\x00\x00not json")
    segment.write_bytes(b"\n".join(body))

    data = steadyrun.open_run(run.id)
    assert data.torn == 1
    assert data.rows[0]["a"] == 1
    assert data.state == "finished"


def test_unreadable_manifest_still_opens(sr_root, new_run):
    run = new_run()
    run.log({"a": 1})
    run.finish()
    (sr_root / "runs" / run.id / "run.json").write_text("{not json")

    data = steadyrun.open_run(run.id)
    assert data.rows[0]["a"] == 1
    assert "is corrupt" in data.manifest["manifest_error"]
    assert data.state == "finished"  # from the owner segment's close record


# ---------------------------------------------------------------------- durability

def test_flush_puts_everything_on_disk_while_the_run_is_open(new_run):
    run = new_run()
    for i in range(300):
        run.log({"train/loss": 1.0 / (i + 1), "i": i})
    run.summary["best"] = 0.5
    run.flush()

    data = steadyrun.open_run(run.id)
    assert [r["i"] for r in data.rows] == list(range(300))
    assert data.summary == {"best": 0.5}
    assert data.state == "running"

    run.log({"i": 300}, step=1000)
    run.flush()
    assert steadyrun.open_run(run.id).rows[-1]["_x"] == 1000


def test_rows_flushed_before_sigkill_survive(sr_root, run_python):
    proc = run_python(
        """
        import os, signal, steadyrun
        run = steadyrun.init(mode="local")
        for j in range(2000):
            run.log({"train/loss": j / 7, "j": j})
            if j % 100 == 0:
                run.log({"val/acc": j}, step=j)
        run.summary["last"] = 1999
        run.flush()
        print(run.id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """,
        check=False,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_id = proc.stdout.strip()

    data = steadyrun.open_run(run_id)
    assert [r["j"] for r in data.rows if "j" in r] == list(range(2000))
    assert data.column("val/acc") == [(j, j) for j in range(0, 2000, 100)]
    assert data.summary == {"last": 1999}
    assert data.torn == 0
    assert data.state == "crashed"
    assert not next(iter(data.segments.values()))["closed"]


# ---------------------------------------------------------------------- round-trips

ROUND_TRIP = {
    "int": 3,
    "zero": 0,
    "negative": -17,
    "float": 0.1,
    "neg_float": -2.5e-7,
    "zero_float": 0.0,
    "neg_zero": -0.0,
    "big_float": 1.7976931348623157e308,
    "tiny_float": 5e-324,
    "int64_max": 2**63 - 1,
    "int64_min": -(2**63),
    "true": True,
    "false": False,
}


@pytest.mark.parametrize("calls", [1, 3], ids=["first-call", "fast-path"])
def test_round_trip_of_python_numbers(new_run, calls):
    run = new_run()
    for _ in range(calls):
        run.log(dict(ROUND_TRIP))
    run.finish()

    rows = steadyrun.open_run(run.id).rows
    assert len(rows) == calls
    for row in rows:
        for key, value in ROUND_TRIP.items():
            assert row[key] == value and type(row[key]) is type(value), key
        assert math.copysign(1.0, row["neg_zero"]) == -1.0


def test_round_trip_of_numpy_and_torch_scalars(new_run):
    torch = pytest.importorskip("torch")
    values = {
        "np_f32": (np.float32(1.25), 1.25),
        "np_f64": (np.float64(-3.5e100), -3.5e100),
        "np_i64_max": (np.int64(2**63 - 1), 2**63 - 1),
        "np_i64_min": (np.int64(-(2**63)), -(2**63)),
        "np_u16": (np.uint16(65535), 65535),
        "np_bool": (np.bool_(True), True),
        "t_f32": (torch.tensor(0.75), 0.75),
        "t_f64": (torch.tensor(1e-300, dtype=torch.float64), 1e-300),
        "t_i64": (torch.tensor(-(2**63), dtype=torch.int64), -(2**63)),
        "t_bool": (torch.tensor(False), False),
    }
    run = new_run()
    run.log({k: v for k, (v, _) in values.items()})
    run.finish()

    row = steadyrun.open_run(run.id).rows[0]
    for key, (_, expected) in values.items():
        assert row[key] == expected and type(row[key]) is type(expected), key


def test_round_trip_of_summary_values(new_run):
    run = new_run()
    run.summary.update({"i": 2**63 - 1, "f": -1e-9, "b": True, "s": "best",
                        "nan": math.nan, "inf": -math.inf})
    run.finish()

    summary = steadyrun.open_run(run.id).summary
    assert summary["i"] == 2**63 - 1 and summary["f"] == -1e-9
    assert summary["b"] is True and summary["s"] == "best"
    assert math.isnan(summary["nan"]) and summary["inf"] == -math.inf


# ---------------------------------------------------------------------- several writers

def test_segments_of_owner_and_attached_child_are_merged(sr_root, new_run):
    run = new_run()
    run.log({"owner/x": 1})
    run.flush()
    child = steadyrun.attach(run.id, name="eval-worker")
    child.log({"eval/y": 2})
    child.finish()
    run.log({"owner/x": 3})
    run.finish()

    data = steadyrun.open_run(run.id)
    assert len(_segments(sr_root, run.id)) == 2
    assert sorted(s["role"] for s in data.segments.values()) == ["child", "owner"]
    assert [v for _, v in data.column("owner/x")] == [1, 3]
    assert [v for _, v in data.column("eval/y")] == [2]
    assert data.state == "finished"


# ---------------------------------------------------------------------- concurrency

@pytest.mark.parametrize("alternate", [False, True], ids=["one-key-set", "two-key-sets"])
def test_threads_logging_concurrently_lose_and_mix_nothing(new_run, alternate):
    n_threads, n_rows = 8, 2000
    run = new_run()
    start = threading.Barrier(n_threads)

    def work(i: int) -> None:
        start.wait()
        for j in range(n_rows):
            if alternate and j % 2:
                run.log({f"t{i}/v": j, f"t{i}/w": float(j)})
            else:
                run.log({f"t{i}/v": j})

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.finish()

    data = steadyrun.open_run(run.id)
    assert len(data.rows) == n_threads * n_rows
    assert sorted(r["_x"] for r in data.rows) == list(range(n_threads * n_rows))
    seen: dict[int, list[int]] = {i: [] for i in range(n_threads)}
    for row in data.rows:
        (key,) = [k for k in row if k.endswith("/v")]
        i = int(key[1:-2])
        expected = {key, f"t{i}/step", "_x"} | ({f"t{i}/w"} if f"t{i}/w" in row else set())
        assert set(row) == expected, row  # no other thread's step metric in the row
        assert row[f"t{i}/step"] == row["_x"]
        seen[i].append(row[key])
    for i in range(n_threads):
        assert seen[i] == list(range(n_rows)), f"thread {i}"
