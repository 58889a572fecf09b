"""`steadyrun import`: real W&B runs (raw wandb, offline, in a subprocess) read back with
`open_run` hold exactly what W&B's own transaction log holds, a second import changes
nothing, the W&B folders are never written, and bad input is one line and exit 2.

The W&B runs are made once for the module (one script, about 10 s): a rich run
(define_metric with a custom step metric, a glob, a summary op; rows with and without
step=; NaN; nested values; a string; an image, a table, a histogram, a saved file;
nested config; user summary), and a plain run resumed once (two folders of one id),
which goes through the scan's fast summary path (no summary ops).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from wandb_helpers import run_script

from steadyrun.cli.main import main
from steadyrun.read.reader import open_run
from steadyrun.ship.wandb import txlog

MAKE = """
import os, numpy as np, wandb
S = dict(mode="offline", settings=wandb.Settings(silent=True, console="off",
         x_disable_stats=True, disable_git=True, x_save_requirements=False))
run = wandb.init(project="imp", name="rich", group="g1", tags=["a", "b"], notes="n",
                 config={"lr": 0.1, "model": {"depth": 3, "act": "relu"}}, **S)
run.define_metric("epoch")
run.define_metric("val/*", step_metric="epoch")
run.define_metric("eval/acc", step_metric="eval/step", summary="max")
for i in range(40):
    run.log({"train/loss": 1.0 / (i + 1), "lr": 0.1})
    if i % 10 == 9:
        run.log({"epoch": i // 10, "val/loss": 0.5 / (i + 1), "val/acc": i / 40})
    if i % 20 == 19:
        run.log({"eval/step": i, "eval/acc": i / 20, "odd": float("nan")})
run.log({"late": 3.0}, step=45)
run.log({"nested": {"a": 1, "b": 2.5}, "label": "text"})
run.log({"img": wandb.Image(np.full((8, 8, 3), 7, dtype=np.uint8), caption="seven")})
run.log({"tab": wandb.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])})
run.log({"hist": wandb.Histogram([1, 2, 3, 3, 4])})
with open("notes.txt", "w") as fh:
    fh.write("hello")
run.save("notes.txt", policy="now")
run.summary["final"] = 0.9
print("RICH=" + run.id)
run.finish()

plain = wandb.init(project="imp", name="plain", id="plainrun1", **S)
for i in range(30):
    plain.log({"train/loss": 2.0 - i / 30, "train/acc": i / 30})
plain.summary["score"] = 0.5
plain.finish()
import time; time.sleep(1.2)  # W&B names a run folder by the second it starts
again = wandb.init(project="imp", name="plain", id="plainrun1", resume="allow", **S)
for i in range(30, 50):
    again.log({"train/loss": 2.0 - i / 30, "train/acc": i / 30})
again.summary["score"] = 0.75
again.finish()

shapes = wandb.init(project="imp", name="shapes", id="shapesrun", **S)
for i in range(300):  # batches of one shape, broken by other shapes and odd values
    row = {"a/loss": 1.0 / (i + 1), "a/n": i, "weird%key é": i * 0.5}
    if i % 50 == 7:
        row["a/loss"] = float("nan")  # fails its batch's parse: that batch goes row-wise
    if i % 70 == 3:
        row["flag"] = True  # a bool: a shape of its own, row-wise
    if i % 40 == 5:
        row = {"a/step": i * 10, "a/loss": 0.5}  # the user's own namespace step
    if i == 150:
        shapes.summary["mid"] = 1.5
    if i == 220:  # a definition after rows: a reader of a later range guessed without it
        shapes.define_metric("a/n", summary="max")
    shapes.log(row)
shapes.finish()
"""


def _tree_hash(folder: Path) -> dict[str, str]:
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("wandb-import")
    done = run_script(base, MAKE, env={"WANDB_DIR": str(base)}, timeout=180)
    wandb_dir = base / "wandb"
    for log in txlog.find_run_files(wandb_dir):
        assert txlog.wait_complete(log, timeout=30)
    rich = next(wandb_dir.glob(f"offline-run-*-{done.value('RICH')}"))
    plain = sorted(wandb_dir.glob("offline-run-*-plainrun1"))
    assert len(plain) == 2, plain
    shapes = next(wandb_dir.glob("offline-run-*-shapesrun"))
    return {"base": base, "wandb": wandb_dir, "rich": rich, "plain": plain,
            "shapes": shapes, "root": base / "imported"}


def _import(capsys: pytest.CaptureFixture[str], root: Path, *folders: Path | str,
            extra: tuple[str, ...] = ()) -> tuple[int, str, str]:
    code = main(["--dir", str(root), "import", *map(str, folders), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def _numbers(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A W&B row's values that steadyrun keeps as row values (nested dicts flattened
    with "." as W&B's charts name them; media dicts and strings go elsewhere)."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        key = prefix + k
        if k.startswith("_") and not prefix:
            continue
        if isinstance(v, dict) and "_type" not in v:
            out.update(_numbers(v, key + "."))
        elif isinstance(v, (int, float)):
            out[key] = v
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _rows_by_wandb_step(rdir: Path) -> dict[int, list[dict[str, Any]]]:
    by: dict[int, list[dict[str, Any]]] = {}
    for seg in (rdir / "segments").glob("*.jsonl"):
        for line in seg.read_bytes().splitlines():
            rec = orjson.loads(line)
            if rec["k"] == "row":
                by.setdefault(rec["ws"], []).append(rec)
    return by


def test_imported_run_holds_what_the_wandb_log_holds(made: dict[str, Any],
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    before = _tree_hash(made["wandb"])
    code, out, err = _import(capsys, made["root"], made["rich"])
    assert code == 0, err
    wid = made["rich"].name.rsplit("-", 1)[1]
    assert f"W&B run {wid}: imported as run {wid}" in out
    tl = txlog.load(made["rich"])
    run = open_run(wid, made["root"])

    # every W&B row: its numbers are in the steadyrun rows made from it, each at the x
    # the rule gives, with `_timestamp` as the time; nothing else but the stamped steps
    by = _rows_by_wandb_step(run.dir)
    step_of = {"val/loss": "epoch", "val/acc": "epoch", "eval/acc": "eval/step"}
    own_axis = {"epoch", "eval/step"}
    assert sorted(by) == sorted(r["_step"] for r in tl.history if _numbers(r))
    for w in tl.history:
        nums = _numbers(w)
        if not nums:
            continue
        pieces = by[w["_step"]]
        got: dict[str, Any] = {}
        for rec in pieces:
            assert rec["t"] == w["_timestamp"]
            values = dict(rec["v"])
            for k, tag in (rec.get("nf") or {}).items():
                values[k] = float(tag)
            for k, v in values.items():
                if k in nums:
                    axis = (v if k in own_axis else
                            w[step_of[k]] if k in step_of else w["_step"])
                    assert rec["x"] == axis, (k, rec, w)
                    got[k] = v
                else:  # a namespace step stamped with the piece's x
                    assert k == "step" or k.endswith("/step"), (k, rec)
                    assert v == rec["x"]
        assert set(got) == set(nums) and all(_same(got[k], nums[k]) for k in nums), (got, w)
    rows = run.rows
    assert sum(len(p) for p in by.values()) == len(rows)
    assert run.column("val/acc") == [(r["epoch"], r["val/acc"]) for r in tl.history
                                     if "val/acc" in r]
    assert run.column("train/loss") == [(r["_step"], r["train/loss"]) for r in tl.history
                                        if "train/loss" in r]

    # summary, config, metadata, media
    want = {k: v for k, v in tl.summary.items() if not k.startswith("_")}
    assert set(run.summary) == set(want)
    assert all(_same(run.summary[k], want[k]) for k in want)
    assert run.summary["eval/acc"] == {"max": 1.95}
    assert run.config == tl.config
    src = run.manifest["imported_from"]
    assert src["wandb_run_id"] == wid and src["path"] == str(made["rich"])
    assert run.manifest["mode"] == "local" and run.state == "finished"
    assert run.manifest["created_at"] == tl.run["start_time"]
    (image,) = run.images
    assert image["key"] == "img" and image["caption"] == "seven"
    assert (run.dir / image["path"]).read_bytes() == (made["rich"] / "files" /
                                                       image["path"]).read_bytes()
    (table,) = run.tables
    assert table["columns"] == ["a", "b"] and table["rows"] == [[1, "x"], [2, "y"]]
    assert list(run.histograms[0]["v"]) == ["hist"]
    assert (run.dir / "files" / "notes.txt").read_text() == "hello"
    assert any(e.get("type") == "imported_value" and e["value"] == "text" for e in run.events)
    assert run.metrics["eval/acc"]["goal"] == "maximize"
    assert _tree_hash(made["wandb"]) == before  # the W&B folder was only read


def _records(rdir: Path) -> list[dict[str, Any]]:
    out = []
    for seg in sorted((rdir / "segments").glob("*.jsonl")):
        out.extend(orjson.loads(line) for line in seg.read_bytes().splitlines())
    return out


def test_batches_write_what_the_row_wise_path_writes(made: dict[str, Any],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """importer/batch.py writes runs of same-shape rows a batch at a time, from the
    values' W&B texts; every record, the digest and the summary must equal what the
    row-wise path writes, on every W&B run of the fixture."""
    from steadyrun.importer import batch, import_runs
    from steadyrun.importer.write import SegmentOut
    from steadyrun.store.layout import digest_path

    batched: list[int] = []
    put_rows = SegmentOut.put_rows
    monkeypatch.setattr(SegmentOut, "put_rows",
                        lambda self, blob, n, fold: (batched.append(n),
                                                     put_rows(self, blob, n, fold)))
    folders = [made["rich"], made["shapes"], *made["plain"]]
    fast = import_runs(folders, made["base"] / "fast")
    monkeypatch.setattr(batch.Batches, "take", lambda self, payload, seq: False)
    slow = import_runs(folders, made["base"] / "slow")
    assert sum(batched) > 150, batched  # the fast path wrote most rows of `shapes`
    for f, s in zip(fast, slow, strict=True):
        assert f.counts.rows == s.counts.rows and f.counts.wandb_rows == s.counts.wandb_rows
        fr, sr = _records(f.rdir), _records(s.rdir)
        assert len(fr) == len(sr)
        for a, b in zip(fr, sr, strict=True):
            assert orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == \
                orjson.dumps(b, option=orjson.OPT_SORT_KEYS), (a, b)
        for seg in (f.rdir / "segments").glob("*.jsonl"):
            other = s.rdir / "segments" / seg.name
            fd = orjson.loads(digest_path(seg).read_bytes())
            sd = orjson.loads(digest_path(other).read_bytes())
            fd.pop("offset"), sd.pop("offset")  # W&B's number texts vs orjson's
            assert fd == sd
        assert open_run(f.run_id, made["base"] / "fast").summary == \
            open_run(s.run_id, made["base"] / "slow").summary
    shapes = open_run("shapesrun", made["base"] / "fast")
    assert shapes.summary["mid"] == 1.5 and shapes.summary["a/n"] == {"max": 299}
    assert len(shapes.column("a/loss")) == 300


@pytest.mark.parametrize("procs", [2, 3, 6])
def test_a_log_read_by_several_processes_is_imported_as_by_one(
        made: dict[str, Any], procs: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """importer/parallel.py: each process converts a range of the log's blocks; the
    run must be byte for byte the one a single pass writes, including when a later
    range's process started from the wrong metric definitions (`shapes` defines one
    after rows) and the rest is read again by one process."""
    from steadyrun.importer import import_runs, parallel
    from steadyrun.store.layout import digest_path

    folders = [made["rich"], made["shapes"], *made["plain"]]
    one = import_runs(folders, made["base"] / f"one-{procs}", procs=1)
    dropped: list[int] = []
    drop = parallel._drop_parts
    monkeypatch.setattr(parallel, "_drop_parts",
                        lambda jobs: (dropped.append(len(jobs)), drop(jobs)))
    many = import_runs(folders, made["base"] / f"many-{procs}", procs=procs)
    if procs == 6:  # `shapes` (4 blocks) defines a metric in its second range
        assert dropped, "the parts after a wrong guess were not read again"
    assert [o.rdir.name for o in one] == [m.rdir.name for m in many]
    for a, b in zip(one, many, strict=True):
        segs = sorted((a.rdir / "segments").glob("*.jsonl"))
        assert segs
        for seg in segs:
            other = b.rdir / "segments" / seg.name
            assert seg.read_bytes() == other.read_bytes(), seg
            assert digest_path(seg).read_bytes() == digest_path(other).read_bytes()
        assert not list(b.rdir.glob(".part-*"))
        assert a.counts.rows == b.counts.rows and a.counts.torn == b.counts.torn == 0
        assert open_run(a.run_id, made["base"] / f"one-{procs}").summary == \
            open_run(b.run_id, made["base"] / f"many-{procs}").summary


def test_second_import_changes_nothing(made: dict[str, Any],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    root = made["base"] / "twice"
    before = _tree_hash(made["wandb"])
    assert _import(capsys, root, made["rich"])[0] == 0
    first = _tree_hash(root)
    code, out, _ = _import(capsys, root, made["rich"])
    assert code == 0 and "unchanged" in out
    assert _tree_hash(root) == first
    assert _tree_hash(made["wandb"]) == before


def test_a_resumed_run_in_two_folders_is_one_run(made: dict[str, Any],
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = made["base"] / "resumed"
    first, second = made["plain"]
    assert _import(capsys, root, first)[0] == 0
    assert open_run("plainrun1", root).summary["score"] == 0.5
    code, out, err = _import(capsys, root, second)  # takes the first piece along
    assert code == 0 and "imported again" in out, (out, err)
    tl = txlog.load([f for d in made["plain"] for f in txlog.find_run_files(d)])
    run = open_run("plainrun1", root)
    assert run.manifest["resumes"] == 1
    assert [r["train/loss"] for r in run.rows] == [r["train/loss"] for r in tl.history]
    assert run.summary == {k: v for k, v in tl.summary.items() if not k.startswith("_")}
    assert run.summary["score"] == 0.75
    assert _import(capsys, root, first, second)[1].count("unchanged") == 1


def test_commands_work_on_imported_runs(made: dict[str, Any],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    root = made["base"] / "commands"
    assert _import(capsys, root, made["rich"], *made["plain"])[0] == 0
    wid = made["rich"].name.rsplit("-", 1)[1]
    for argv in (["show", wid], ["compare", wid, "plainrun1"], ["runs"],
                 ["leaderboard", "--metric", "train/loss", "--goal", "min"],
                 ["check", wid, "--baseline", "plainrun1", "--rule", "train/loss<=+100%"]):
        code = main(["--dir", str(root), *argv])
        out, err = capsys.readouterr()
        assert code in (0, 1), (argv, out, err)
        assert "Traceback" not in err and out, (argv, err)
    assert "plainrun1" in main_out(root, ["leaderboard", "--metric", "train/loss", "--goal",
                                          "min", "--json"], capsys)
    code = main(["--dir", str(root), "sync", wid])  # never shipped back to W&B
    _, err = capsys.readouterr()
    assert code == 0 and "not shipped back" in err
    assert not (root / "runs" / wid / "sinks" / "wandb.cursor").exists()

    from steadyrun.ui.model import RunView

    view = RunView(root / "runs" / wid)
    payload = view.payload()
    assert payload["id"] == wid if "id" in payload else True
    series = view.series(["val/acc", "train/loss"])
    assert list(series["val/acc"]["x"]) == [0, 1, 2, 3]
    assert series["train/loss"]["n"] == 40


def main_out(root: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["--dir", str(root), *argv]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("case", ["truncated", "empty-folder", "not-wandb", "empty-log"])
def test_bad_input_is_one_line_and_exit_2(made: dict[str, Any], tmp_path: Path, case: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "offline-run-20250101_000000-badrun01"
    folder.mkdir()
    log = folder / "run-badrun01.wandb"
    if case == "truncated":
        src = txlog.find_run_files(made["rich"])[0].read_bytes()
        log.write_bytes(src[: len(src) * 2 // 3 + 5])
    elif case == "not-wandb":
        log.write_bytes(b"this is not a W&B log\n" * 10)
    elif case == "empty-log":
        log.write_bytes(b"")
    target = folder if case != "empty-folder" else tmp_path / "nothing"
    target.mkdir(exist_ok=True)
    code, out, err = _import(capsys, tmp_path / "root", target)
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("steadyrun import: cannot import:"), err
    assert "Traceback" not in err
    assert not (tmp_path / "root" / "runs" / "badrun01").exists()
    if case == "truncated":
        assert "--partial" in err
        code, out, err = _import(capsys, tmp_path / "root", target, extra=("--partial",))
        assert code == 0, err
        run = open_run("badrun01", tmp_path / "root")
        assert run.state == "crashed" and len(run.rows) > 10
        assert any(e.get("type") == "imported_torn" for e in run.events)


def test_id_of_a_run_that_was_not_imported_is_refused(made: dict[str, Any], tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    root = tmp_path / "root"
    (root / "runs" / "plainrun1" / "segments").mkdir(parents=True)
    (root / "runs" / "plainrun1" / "run.json").write_text('{"id": "plainrun1"}')
    code, _, err = _import(capsys, root, made["plain"][0])
    assert code == 2 and "was not imported" in err and "--dir" in err
    assert os.listdir(root / "runs") == ["plainrun1"]  # no temp folder left behind
    shutil.rmtree(root)
