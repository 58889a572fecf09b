"""Tests for steadyrun.ship.wandb.txlog against logs written by the real wandb package.

Every log here comes from an actual offline ``wandb.init``/``finish`` in a child
process (never a mock), because the point of the reader is to agree with what
W&B really writes.  The children run concurrently to keep the module fast.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from steadyrun.ship.wandb import txlog as tx

SRC = Path(__file__).resolve().parents[1] / "src"
BIG = 100_000  # > 2 blocks, so the record is split into FIRST/MIDDLE/LAST chunks

WRITER = textwrap.dedent(
    """
    import os, signal, sys
    import wandb

    mode = sys.argv[1]
    settings = wandb.Settings(
        x_disable_stats=True,
        x_disable_meta=True,
        x_save_requirements=False,
        disable_git=True,
        save_code=False,
        console="off",
        init_timeout=120,
    )

    if mode == "full":
        import numpy as np

        run = wandb.init(
            project="txlog",
            name="full-run",
            config={"lr": 0.1, "model": {"depth": 3, "act": "relu"}, "layers": [1, 2]},
            tags=["t1", "t2"],
            group="grp",
            job_type="train",
            notes="a note",
            settings=settings,
        )
        run.define_metric("epoch")
        run.define_metric("val/loss", step_metric="epoch", summary="min")
        run.define_metric("acc", summary="max")
        run.define_metric("train/*", step_metric="epoch")
        for i in range(5):
            row = {
                "loss": 1.0 / (i + 1),
                "epoch": i,
                "val/loss": 5.0 - i,
                "acc": i / 10,
                "train/x": i,
                "nested": {"a": i, "b": {"c": "s"}},
                "flag": i % 2 == 0,
                "odd": float("nan") if i == 2 else float("inf"),
            }
            run.log(row, step=i * 10)
        run.log({"big": "x" * __BIG__}, step=50)
        run.log({"tbl": wandb.Table(columns=["x", "y"], data=[[1, 2], [3, 4]])}, step=60)
        img = np.zeros((4, 4, 3), dtype=np.uint8)
        run.log({"img": wandb.Image(img, caption="zeros")}, step=70)
        run.summary["best"] = 42
        run.summary["nest"] = {"k": 1}
        run.summary["nest"]["j"] = 2
        run.summary["gone"] = 1
        del run.summary["gone"]
        run.config.update({"extra": {"deep": {"x": 1}}})
        run.alert(title="Heads up", text="something", level=wandb.AlertLevel.WARN)
        saved = os.path.join(os.environ["WANDB_DIR"], "saved.txt")
        with open(saved, "w") as fh:
            fh.write("hello")
        run.save(saved, base_path=os.environ["WANDB_DIR"], policy="now")
        run.finish(exit_code=1)
    elif mode in ("resume1", "resume2"):
        run = wandb.init(project="txlog", id="resumeme", resume="allow", settings=settings)
        base = 0 if mode == "resume1" else 10
        for i in range(3):
            run.log({"v": base + i}, step=base + i)
        run.finish()
    elif mode == "kill":
        run = wandb.init(project="txlog", id="killed", settings=settings)
        for i in range(4):
            run.log({"v": i, "pad": "p" * 40000}, step=i)
        os.kill(os.getpid(), signal.SIGKILL)
    """
).replace("__BIG__", str(BIG))


def _env(wandb_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        WANDB_MODE="offline",
        WANDB_DIR=str(wandb_dir),
        WANDB_SILENT="true",
        WANDB_CONSOLE="off",
        PYTHONPATH=os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]),
    )
    # Keep wandb's caches, staging area and settings inside the test dir.
    for var, sub in (
        ("WANDB_CONFIG_DIR", "config"),
        ("WANDB_DATA_DIR", "data"),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_ARTIFACT_DIR", "artifacts"),
    ):
        env[var] = str(wandb_dir / ".wandb-home" / sub)
    for key in ("WANDB_RUN_ID", "WANDB_RESUME", "WANDB_PROJECT", "WANDB_ENTITY"):
        env.pop(key, None)
    return env


def _spawn(script: Path, mode: str, wandb_dir: Path) -> subprocess.Popen[bytes]:
    wandb_dir.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, str(script), mode],
        env=_env(wandb_dir),
        cwd=wandb_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _finish(proc: subprocess.Popen[bytes], expect_rc: int = 0) -> None:
    out, _ = proc.communicate(timeout=180)
    assert proc.returncode == expect_rc, out.decode(errors="replace")[-4000:]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("wandb_txlog")
    script = root / "writer.py"
    script.write_text(WRITER)
    dirs = {name: root / name for name in ("full", "resume", "kill")}
    full = _spawn(script, "full", dirs["full"])
    resume1 = _spawn(script, "resume1", dirs["resume"])
    kill = _spawn(script, "kill", dirs["kill"])
    _finish(resume1)
    assert tx.wait_complete(dirs["resume"], timeout=60)
    resume2 = _spawn(script, "resume2", dirs["resume"])
    _finish(full)
    _finish(kill, expect_rc=-9)
    _finish(resume2)
    assert tx.wait_complete(dirs["full"], timeout=60)
    assert tx.wait_complete(dirs["resume"], timeout=60)
    return dirs


def test_import_does_not_import_wandb() -> None:
    code = "import sys, steadyrun.ship.wandb.txlog; print('wandb' in sys.modules)"
    env = dict(os.environ, PYTHONPATH=str(SRC))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_full_run_decodes(runs: dict[str, Path]) -> None:
    log = tx.load(runs["full"])
    assert log.torn == 0 and not log.problems
    assert log.complete and log.exit_code == 1
    assert log.producers and log.producers[0]

    run = log.run
    assert run["project"] == "txlog"
    assert run["display_name"] == "full-run"
    assert run["group"] == "grp" and run["job_type"] == "train"
    assert run["notes"] == "a note" and run["tags"] == ["t1", "t2"]
    assert run["run_id"] and log.paths[0].name == f"run-{run['run_id']}.wandb"

    steps = [row["_step"] for row in log.history]
    assert steps == [0, 10, 20, 30, 40, 50, 60, 70]
    first = log.history[0]
    assert first["loss"] == 1.0 and first["epoch"] == 0 and first["flag"] is True
    assert first["nested"] == {"a": 0, "b": {"c": "s"}}
    assert math.isinf(first["odd"]) and math.isnan(log.history[2]["odd"])
    assert log.column("val/loss") == [(0, 5.0), (10, 4.0), (20, 3.0), (30, 2.0), (40, 1.0)]
    assert log.history[5]["big"] == "x" * BIG
    table = log.history[6]["tbl"]
    assert table["_type"] == "table-file" and table["nrows"] == 2 and table["ncols"] == 2
    image = log.history[7]["img"]
    assert image["_type"] == "image-file" and image["width"] == 4

    summary = log.summary
    assert summary["best"] == 42
    assert summary["nest"] == {"k": 1, "j": 2}
    assert "gone" not in summary
    assert summary["val/loss"] == {"min": 1.0}
    assert summary["acc"] == {"max": 0.4}
    assert summary["_step"] == 70 and summary["loss"] == 0.2
    assert summary["tbl"]["_type"] == "table-file"

    assert log.config == {
        "lr": 0.1,
        "model": {"depth": 3, "act": "relu"},
        "layers": [1, 2],
        "extra": {"deep": {"x": 1}},
    }

    val = log.metrics["val/loss"]
    assert val["step_metric"] == "epoch" and val["summary"] == ["min"] and val["step_sync"]
    assert log.metrics["acc"]["summary"] == ["max"] and log.metrics["acc"]["goal"] is None
    assert log.metrics["train/*"]["glob"] and log.metrics["train/*"]["step_metric"] == "epoch"
    assert log.metrics["epoch"]["step_metric"] is None

    assert "saved.txt" in log.files
    assert table["path"] in log.files and image["path"] in log.files
    assert log.alerts == [
        {"title": "Heads up", "text": "something", "level": "WARN", "wait_duration": 60000}
    ]
    counts = log.counts()
    assert counts["history"] == 8 and counts["exit"] == 1 and counts["header"] == 1


def test_multi_chunk_record_is_really_split(runs: dict[str, Path]) -> None:
    """Guard that the BIG row exercises FIRST/MIDDLE/LAST, not just FULL chunks."""
    (path,) = tx.find_run_files(runs["full"])
    assert path.stat().st_size > 2 * tx.BLOCK_SIZE
    stats = tx.ScanStats()
    sizes = [len(p) for p in tx.iter_payloads(path, stats)]
    assert max(sizes) > 2 * tx.BLOCK_SIZE and stats.torn == 0


def test_a_log_read_in_block_ranges_is_the_whole_log(runs: dict[str, Path]) -> None:
    """importer/parallel.py reads one log in pieces at once: every split into block
    ranges gives each record once, in order (a multi-chunk record across a boundary
    goes to the range it starts in), and `Skip` passes over exactly the records it
    names."""
    from steadyrun.ship.wandb.txlog.chunks import Skip

    (path,) = tx.find_run_files(runs["full"])
    whole = list(tx.iter_payloads(path))
    blocks = -(-path.stat().st_size // tx.BLOCK_SIZE)
    assert blocks >= 4
    for cuts in ([1], [2], [3], [1, 2], [1, 3], [2, 3], [1, 2, 3], [blocks - 1]):
        edges = [0, *cuts, None]
        got = []
        for a, b in zip(edges, edges[1:], strict=False):
            stats = tx.ScanStats()
            got += list(tx.iter_payloads(path, stats, first_block=a, stop_block=b))
            assert stats.torn == 0, (cuts, stats.problems)
        assert got == whole, cuts

    def kind(p: bytes) -> int:
        i = 0
        if p[0] == 0x08:
            i = 1
            while p[i] & 0x80:
                i += 1
            i += 1
        return p[i]

    tags = frozenset((0x3A, 0x5A))  # stats, telemetry
    skip = Skip(tags=tags, derived=True)
    kept = list(tx.iter_payloads(path, skip=skip))
    data = path.read_bytes()
    single = {data[a:b] for a, b in _record_spans(path)[1]}  # records in one chunk
    gone = [p for p in whole if b"\xc2\x0c" not in p[-64:] and p in single
            and (kind(p) in tags or kind(p) == 0x1A)]
    assert skip.count == len(gone) > 0
    assert kept == [p for p in whole if not any(p is g for g in gone)]
    # The records a reader is after are all still there: every history row, read by
    # wandb's own protobuf rather than by `kind` above (so a Skip that matched history
    # fails here even if `kind` agreed with it), and the log holds them at all (an empty
    # history would pass the two lines above).
    from wandb.proto import wandb_internal_pb2 as pb

    def rows(payloads: list[bytes]) -> list[bytes]:
        return [p for p in payloads if pb.Record.FromString(p).WhichOneof("record_type")
                == "history"]

    assert len(rows(whole)) == len(tx.load(path).history) == 8  # the 8 rows WRITER logs
    assert rows(kept) == rows(whole)


def test_find_run_files(runs: dict[str, Path]) -> None:
    full = runs["full"]
    (path,) = tx.find_run_files(full)
    assert (full / "wandb" / "latest-run").is_symlink()  # and yet not listed twice
    assert tx.find_run_files(full / "wandb") == [path]
    assert tx.find_run_files(path.parent) == [path]
    assert tx.find_run_files(path) == [path]
    assert tx.find_run_files(full, run_id="nope") == []

    pieces = tx.find_run_files(runs["resume"], run_id="resumeme")
    assert len(pieces) == 2 and pieces[0].parent != pieces[1].parent
    assert [tx.load(p).history[0]["v"] for p in pieces] == [0, 10]  # oldest first


def test_resumed_run_concatenates(runs: dict[str, Path]) -> None:
    log = tx.load(runs["resume"])
    assert len(log.paths) == 2 and log.run["run_id"] == "resumeme"
    assert [row["_step"] for row in log.history] == [0, 1, 2, 10, 11, 12]
    assert [row["v"] for row in log.history] == [0, 1, 2, 10, 11, 12]
    assert log.summary["v"] == 12 and log.exit_code == 0 and log.torn == 0


def test_different_runs_are_not_merged(runs: dict[str, Path]) -> None:
    a = tx.find_run_files(runs["full"])[0]
    b = tx.find_run_files(runs["resume"])[0]
    with pytest.raises(ValueError, match="several runs"):
        tx.load([a, b])
    assert tx.load([a, b], run_id="resumeme").history[0]["v"] == 0


def test_killed_run_is_readable(runs: dict[str, Path]) -> None:
    (path,) = tx.find_run_files(runs["kill"], run_id="killed")
    # wandb-core outlives its killed parent briefly; let it go before reading.
    assert tx.wait_complete(path, timeout=60, require_exit=False)
    log = tx.load(path)  # must not raise, whatever the tail looks like
    assert log.exit_code is None and not log.complete
    assert [row["v"] for row in log.history] == list(range(len(log.history)))
    assert log.torn in (0, 1)
    assert tx.wait_complete(path, timeout=0.3) is False


def _record_spans(path: Path) -> tuple[list[int], list[tuple[int, int]]]:
    """Offsets where records end, and (start, end) of FULL chunk payloads."""
    data = path.read_bytes()
    ends: list[int] = []
    fulls: list[tuple[int, int]] = []
    pos = tx.HEADER_LEN
    while pos < len(data):
        left = tx.BLOCK_SIZE - pos % tx.BLOCK_SIZE
        if left < 7:
            pos += left
            continue
        _crc, length, ctype = tx.CHUNK_HEADER.unpack_from(data, pos)
        start, pos = pos + 7, pos + 7 + length
        if ctype in (tx.FULL, tx.LAST):
            ends.append(pos)
        if ctype == tx.FULL and length > 2:
            fulls.append((start, pos))
    return ends, fulls


def test_truncation_anywhere_is_tolerated(runs: dict[str, Path], tmp_path: Path) -> None:
    (path,) = tx.find_run_files(runs["full"])
    data = path.read_bytes()
    full = list(tx.iter_payloads(path))
    ends, fulls = _record_spans(path)
    cut_file = tmp_path / path.name

    def scan(cut: int) -> tuple[list[bytes], tx.ScanStats]:
        cut_file.write_bytes(data[:cut])
        stats = tx.ScanStats()
        return list(tx.iter_payloads(cut_file, stats)), stats

    cuts = set(range(0, len(data), 61)) | set(ends) | {e - 1 for e in ends}
    cuts |= {
        k * tx.BLOCK_SIZE + d for k in range(1, len(data) // tx.BLOCK_SIZE + 1) for d in (-1, 0, 1)
    }
    for cut in sorted(c for c in cuts if 0 <= c <= len(data)):
        got, stats = scan(cut)
        assert got == full[: len(got)], cut
        assert stats.torn <= 1, (cut, stats.problems)
        if cut in ends or cut == len(data) or cut <= 7:
            assert stats.torn == 0, (cut, stats.problems)
    for start, end in fulls[:: max(1, len(fulls) // 15)]:
        got, stats = scan((start + end) // 2)
        assert stats.torn == 1, stats.problems
        # load() on the same truncation keeps every record before the cut
        log = tx.load(cut_file)
        assert log.torn == 1 and log.exit_code is None
        assert len(log.records) == len(got)


def test_corrupt_chunk_is_skipped_and_counted(runs: dict[str, Path], tmp_path: Path) -> None:
    (path,) = tx.find_run_files(runs["full"])
    data = bytearray(path.read_bytes())
    _ends, fulls = _record_spans(path)
    start, end = fulls[len(fulls) // 3]
    assert end < tx.BLOCK_SIZE  # damage the first block only
    data[(start + end) // 2] ^= 0xFF
    bad = tmp_path / path.name
    bad.write_bytes(bytes(data))
    log = tx.load(bad)
    good = tx.load(path)
    assert log.torn >= 1 and any("checksum" in p for p in log.problems)
    assert log.exit_code == 1  # later blocks are still read
    assert 0 < len(log.records) < len(good.records)


def test_header_handling(tmp_path: Path) -> None:
    empty = tmp_path / "run-x.wandb"
    empty.write_bytes(b"")
    assert list(tx.iter_payloads(empty)) == []
    empty.write_bytes(b":W&")  # writer has only just started
    assert list(tx.iter_payloads(empty)) == []
    junk = tmp_path / "run-y.wandb"
    junk.write_bytes(b"PK\x03\x04 not a wandb log")
    with pytest.raises(ValueError, match="not a W&B"):
        list(tx.iter_payloads(junk))


def test_what_a_full_disk_leaves_is_read_and_counted(runs: dict[str, Path],
                                                    tmp_path: Path) -> None:
    """A log written while the disk was full: space allocated but never written (zeros,
    even where the header should be), or a tail of zeros and junk after the last good
    record. Every good record is read; the damage is counted, never raised."""
    (path,) = tx.find_run_files(runs["full"])
    data = path.read_bytes()
    good = tx.load(path)
    zeros = tmp_path / "run-zeros.wandb"
    zeros.write_bytes(b"\x00" * 4096)
    stats = tx.ScanStats()
    assert list(tx.iter_payloads(zeros, stats)) == [] and stats.torn == 1
    ends, _ = _record_spans(path)
    cut = ends[len(ends) // 2]
    for tail in (b"\x00" * 40000, bytes(range(256)) * 20, b"\x00" * 10 + b"\xff" * 700):
        damaged = tmp_path / path.name
        damaged.write_bytes(data[:cut] + tail)
        log = tx.load(damaged)
        assert log.records == good.records[:len(log.records)] and len(log.records) > 0
        assert log.exit_code is None


def test_wait_complete_gives_up(tmp_path: Path) -> None:
    assert tx.wait_complete(tmp_path / "missing" / "run-z.wandb", timeout=0.2) is False
    assert tx.wait_complete(tmp_path, timeout=0.2) is False


def test_cli(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    assert tx.main([str(runs["full"])]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["exit_code"] == 1 and out["counts"]["history_rows"] == 8
    assert out["config"]["model"]["depth"] == 3
    assert out["metrics"]["val/loss"]["step_metric"] == "epoch"
    assert out["summary"]["best"] == 42
    assert tx.main([str(runs["full"] / "nothing-here")]) == 1


def test_copied_run_dir_still_loads(runs: dict[str, Path], tmp_path: Path) -> None:
    """A run folder moved elsewhere (e.g. archived) is found by its own name."""
    (path,) = tx.find_run_files(runs["full"])
    dest = tmp_path / path.parent.name
    shutil.copytree(path.parent, dest, symlinks=True)
    assert tx.load(dest).exit_code == 1


def test_exit_of_last_piece_decides(runs: dict[str, Path], tmp_path: Path) -> None:
    """A finished first piece must not make a later, crashed piece look complete."""
    first, second = tx.find_run_files(runs["resume"], run_id="resumeme")
    ends, _ = _record_spans(second)
    crashed = tmp_path / "later" / second.name
    crashed.parent.mkdir()
    crashed.write_bytes(second.read_bytes()[: ends[-2]])  # drop the exit record
    log = tx.load([first, crashed])
    assert log.exit_code is None and not log.complete and log.torn == 0
    assert [row["v"] for row in log.history] == [0, 1, 2, 10, 11, 12]
