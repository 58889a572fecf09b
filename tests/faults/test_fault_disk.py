"""Disk faults: a segment writer whose disk fills up, a read-only run folder, a corrupt
run.json. Training goes on in each, and what was logged is counted in the run folder
and in W&B's transaction log.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import orjson
import pytest
from fault_helpers import MEASURE, exactly_once, figures_of, local_column
from wandb_helpers import (
    Finished,
    assert_once,
    column,
    steadyrun_cli,
    wandb_env,
    wandb_log,
)

import steadyrun

LIMIT = 64 * 1024  # bytes a segment may grow to before "the disk is full"
BOUND = 1000  # STEADYRUN_BUFFER_RECORDS of the disk-full script

DISK_FULL = """
import resource, sys, time
t0 = time.monotonic()
import steadyrun

run = steadyrun.init(project="disk", mode="local")
print(f"RUN={run.id}", flush=True)
w = run._writer
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
i, worst, max_pending = 0, 0.0, 0

def log(n):
    global i, worst, max_pending
    for _ in range(n):
        a = time.perf_counter()
        run.log({"train/loss": float(i)})
        worst = max(worst, time.perf_counter() - a)
        max_pending = max(max_pending, w.pending)
        i += 1

def settle(what):
    deadline = time.monotonic() + 20
    while what() and time.monotonic() < deadline:
        time.sleep(0.05)

# 1. Fill the "disk": the segment hits the file-size limit.
while w.error is None:
    log(500)
    run.flush()
print(f"FULL_AT={i}", flush=True)
# 2. A short outage: fewer records than the buffer holds, then space comes back.
log(BOUND // 2)
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
settle(lambda: w.pending or w.error)
short_dropped = w.dropped_rows
# 3. A long outage: the disk is full again while 5x the buffer is logged.
size = w.path.stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 100, hard))
log(200)
run.flush()
settle(lambda: w.error is None)
log(5 * BOUND)
long_pending = w.pending
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
settle(lambda: w.pending or w.error)
run.finish()
print(f"LOGGED={i}")
print(f"SHORT_DROPPED={short_dropped}")
print(f"DROPPED={w.dropped_rows}")
print(f"MAX_PENDING={max_pending}")
print(f"LONG_PENDING={long_pending}")
print(f"WORST={worst:.4f}")
print(f"TOTAL={time.monotonic() - t0:.3f}")
""".replace("BOUND", str(BOUND)) + MEASURE


def _file_size_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of death, like ENOSPC
    resource.setrlimit(resource.RLIMIT_FSIZE, (LIMIT, resource.RLIM_INFINITY))


def _run(base: Path, code: str, *args: str, env: dict[str, str], preexec=None,
         timeout: float = 90) -> Finished:
    path = base / "script.py"
    path.write_text(textwrap.dedent(code))
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, str(path), *args], cwd=base, env=env,
                          capture_output=True, text=True, timeout=timeout,
                          preexec_fn=preexec, stdin=subprocess.DEVNULL)
    return Finished(base, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)


def test_disk_full_training_goes_on_bounded_buffer_counted_drops(tmp_path: Path,
                                                                scorecard) -> None:
    env = wandb_env(tmp_path, STEADYRUN_BUFFER_RECORDS=str(BOUND))
    done = _run(tmp_path, DISK_FULL, env=env, preexec=_file_size_limit)
    assert done.returncode == 0, done.output
    logged, dropped = int(done.value("LOGGED")), int(done.value("DROPPED"))

    # Reported once per outage, clearly; the short one lost nothing.
    assert done.stderr.count("cannot write") == 2, done.output
    assert "File too large" in done.stderr and "Training goes on" in done.stderr
    assert done.stderr.count("works again after") == 2
    assert "nothing was lost" in done.stderr
    assert done.stderr.count("the oldest rows are dropped from now on") == 1
    assert int(done.value("SHORT_DROPPED")) == 0
    # The buffer held its bound: never more than BOUND records waited in memory.
    assert int(done.value("MAX_PENDING")) <= BOUND + 1, done.output
    assert int(done.value("LONG_PENDING")) <= BOUND
    assert float(done.value("WORST")) < 0.5, done.output
    # Dropped rows are counted, recorded, and are the oldest of the long outage.
    data = steadyrun.open_run(done.rdir)
    (event,) = [e for e in data.events if e["type"] == "dropped"]
    assert event["rows"] == dropped > 0
    assert data.torn == 0  # a line the disk took in part was completed afterwards
    local = [v for _, v in data.column("train/loss")]
    lost = set(range(event["x_min"], event["x_max"] + 1))
    assert len(lost) == dropped
    exactly_once(local, [float(i) for i in range(logged) if i not in lost])
    assert len(local) == logged - dropped

    steadyrun_cli(tmp_path, "sync", data.id, "--mode", "offline", "--quiet", timeout=120)
    log = wandb_log(done.rdir)
    assert_once(log, "train/loss", local)
    scorecard("disk full (RLIMIT_FSIZE), short then long outage", rows_logged=logged,
              rows_local=len(local), rows_wandb=len(column(log, "train/loss")),
              rows_dropped_counted=dropped, buffer_bound=BOUND,
              max_pending=int(done.value("MAX_PENDING")), **figures_of(done))


# ---------------------------------------------------------------------- read-only folder
READ_ONLY = """
import os, subprocess, sys, time
t0 = time.monotonic()
import steadyrun

def make_read_only(path):
    if os.geteuid() != 0:
        os.chmod(path, 0o500)
    else:  # root ignores modes: a read-only bind mount, in this process's own namespace
        subprocess.run(["mount", "--bind", str(path), str(path)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)

strict = sys.argv[1] == "strict"
try:
    run = steadyrun.init(project="ro", strict=strict, mode=sys.argv[2])
except OSError as exc:
    print(f"ERROR={type(exc).__name__}: {exc}")
    raise SystemExit(3)
print(f"RUN={run.id}", flush=True)
print(f"DIR={run.dir}", flush=True)
worst = 0.0
for i in range(500):
    a = time.perf_counter()
    run.log({"train/loss": float(i)})
    worst = max(worst, time.perf_counter() - a)
    if i == 250 and sys.argv[3] == "midrun":
        run.flush()
        make_read_only(run.dir)  # the folder goes read-only under training
        open("report.txt", "w").write("report")
        print(f"SAVED={run.save('report.txt')}", flush=True)
run.finish()
print(f"WORST={worst:.4f}")
print(f"TOTAL={time.monotonic() - t0:.3f}")
""" + MEASURE


def _read_only_command(ro_dir: Path | None) -> list[str]:
    """The command prefix that makes `ro_dir` read-only for the script.

    A user gets a chmod; root, whom modes do not stop, gets a read-only tmpfs over the
    folder in a mount namespace of the script's own (nothing changes for the machine).
    """
    if os.geteuid() != 0:
        if ro_dir is not None:
            ro_dir.mkdir(parents=True, exist_ok=True)
            ro_dir.chmod(0o555)
        return []
    if shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("root, and no mount namespace to make a folder read-only in")
    mount = (f'mount -t tmpfs -o ro,size=64k none "{ro_dir}" && ' if ro_dir else "")
    if ro_dir is not None:
        ro_dir.mkdir(parents=True, exist_ok=True)
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", mount + 'exec "$@"', "sh"]


@pytest.mark.parametrize("case", ["default", "strict", "midrun"])
def test_read_only_run_folder(tmp_path: Path, scorecard, case: str) -> None:
    base = tmp_path
    env = wandb_env(base, XDG_CACHE_HOME=str(base / "cache"))
    prefix = _read_only_command(None if case == "midrun" else base / "sr")
    path = base / "script.py"
    path.write_text(READ_ONLY)
    mode = "local" if case == "midrun" else "offline"
    t0 = time.monotonic()
    proc = subprocess.run([*prefix, sys.executable, str(path),
                           "strict" if case == "strict" else "default", mode, case],
                          cwd=base, env=env, capture_output=True, text=True, timeout=90,
                          stdin=subprocess.DEVNULL)
    done = Finished(base, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)

    if case == "strict":
        assert done.returncode == 3, done.output
        err = done.value("ERROR")
        assert err.startswith(("PermissionError: ", "OSError: ")), err
        assert str(base / "sr" / "runs") in err and "STEADYRUN_DIR" in err, err
        assert "Traceback" not in done.stderr
        scorecard("read-only run folder (at init, strict)", rows_logged=0, rows_local=0,
                  rows_wandb=0, outcome="clear OSError at init", **figures_of(done))
        return
    assert done.returncode == 0, done.output
    rdir = Path(done.value("DIR"))
    if case == "default":
        # Training went on in a private fallback folder, and said where, once.
        assert rdir.is_relative_to(base / "cache" / "steadyrun"), rdir
        assert done.stderr.count(f"cannot write {base / 'sr'}") == 1, done.output
        assert f"recorded in {rdir}" in done.stderr
        manifest = orjson.loads((rdir / "run.json").read_bytes())
        assert manifest["fallback_from"] == str(base / "sr")
        assert (rdir.parent.parent.stat().st_mode & 0o077) == 0  # the fallback is private
        # The command it printed works as printed, and the plain one finds the run too.
        printed = [line.split("`")[-2] for line in done.stderr.splitlines()
                   if "upload with `steadyrun" in line]
        assert printed and printed[0].startswith(f"steadyrun --dir {rdir.parent.parent} sync")
        again = subprocess.run([sys.executable, "-m", *printed[0].split(), "--mode",
                                "offline", "--quiet"], cwd=base, env=env, capture_output=True,
                               text=True, timeout=90)
        assert again.returncode == 0, again.stderr
        shown = subprocess.run([sys.executable, "-m", "steadyrun", "show", rdir.name],
                               cwd=base, env=env, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert "fallback root" in shown.stderr and rdir.name in shown.stdout
    else:
        assert "SAVED=None" in done.stdout, done.output  # save() refused: warned, no crash
        assert "cannot update" in done.stderr and "run.json" in done.stderr, done.output
        if os.geteuid() != 0:
            rdir.chmod(0o700)
    local = local_column(rdir, "train/loss")
    exactly_once(local, [float(i) for i in range(500)])
    if case == "midrun":
        steadyrun_cli(base, "sync", str(rdir), "--mode", "offline", "--quiet", timeout=90)
    log = wandb_log(rdir)
    assert_once(log, "train/loss", local)
    assert log.exit_code == 0
    scorecard(f"read-only run folder ({'at init, default' if case == 'default' else 'mid-run'})",
              rows_logged=500, rows_local=len(local), rows_wandb=len(column(log, "train/loss")),
              **figures_of(done))


# ---------------------------------------------------------------------- a small full disk
TMPFS_FULL = """
import steadyrun
run = steadyrun.init(project="full", mode="offline", metadata=False)
for i in range(60_000):
    run.log({"train/loss": float(i), "train/acc": i / 60_000})
run.finish()
print(f"RUN={run.id}", flush=True)
"""


def test_a_full_disk_is_told_truly_and_the_run_still_ends_finished(tmp_path: Path) -> None:
    """A 2 MB tmpfs as STEADYRUN_DIR and 60,000 rows: it said "47570 rows are lost", then
    "Nothing is lost", claimed the end was "still recorded in its segment" when that
    could not be written, and the run read as crashed. Now every message is true and the
    run reads "finished, N rows dropped (disk full)"."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or subprocess.run(
            ["unshare", "-m", "true"], capture_output=True).returncode != 0:
        pytest.skip("needs root and a mount namespace for a small tmpfs")
    disk = tmp_path / "sr"
    disk.mkdir()
    out = tmp_path / "copy"
    (tmp_path / "script.py").write_text(TMPFS_FULL)
    env = wandb_env(tmp_path, WANDB_DIR=str(tmp_path / "wandb-files"),
                    STEADYRUN_BUFFER_RECORDS="2000")
    # Inside the namespace: the run, then `runs --json`, then a copy of the run folder.
    inner = (f'mount -t tmpfs -o size=2m none "{disk}" && '
             f'"{sys.executable}" script.py; code=$?; '
             f'"{sys.executable}" -m steadyrun runs --json > runs.json; '
             f'cp -r "{disk}/runs" "{out}"; exit $code')
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", inner],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert "No space left" in err or "cannot write" in err, err  # the disk did fill
    assert "Nothing is lost" not in err, err
    assert "still recorded in its segment" not in err, err
    (row,) = orjson.loads((tmp_path / "runs.json").read_bytes())
    assert row["state"] == "finished", row
    assert row["dropped_rows"] > 0
    data = steadyrun.open_run(out / row["id"])
    dropped = sum(e["rows"] for e in data.events if e["type"] == "dropped")
    assert dropped == row["dropped_rows"]
    assert len(data.rows) + dropped == 60_000  # every row: kept, or counted as dropped
    owner = [i for i in data.segments.values() if i["role"] == "owner"]
    assert owner[0]["closed"] and owner[0]["close"]["state"] == "finished"


# ---------------------------------------------------------------------- corrupt run.json
CORRUPT = {
    "truncated": b'{"id": "abc", "state": "fin',
    "not an object": b"[1, 2, 3]",
    "binary": b"\x00\xff\xfe garbage \x9c",
    "empty": b"",
    "wrong types": b'{"tags": 5, "owner": "x", "global_step": "a", "project": 7, '
                   b'"state": "finished"}',
}


def test_corrupt_run_json(tmp_path: Path, scorecard) -> None:
    env = wandb_env(tmp_path)
    root = tmp_path / "sr"
    first = _run(tmp_path, """
        import steadyrun
        run = steadyrun.init(project="corrupt", mode="local", tags=["a"])
        for i in range(300):
            run.log({"train/loss": float(i)})
        run.finish()
        print(f"RUN={run.id}")
    """, env=env)
    rid = first.value("RUN")
    rdir = root / "runs" / rid
    for label, garbage in CORRUPT.items():
        (rdir / "run.json").write_bytes(garbage)
        data = steadyrun.open_run(rid, root=root)
        assert len(data.column("train/loss")) == 300, label  # the segments are intact
        assert data.state == "finished", label  # from the owner segment's close record
        assert "run.json" in data.manifest.get("manifest_error", ""), label
        if label not in ("truncated", "wrong types"):
            continue  # the command line, for one unreadable and one mistyped run.json
        show = steadyrun_cli(tmp_path, "show", rid)
        assert "warning" in show.stdout and "run.json" in show.stdout, (label, show.stdout)
        listed = orjson.loads(steadyrun_cli(tmp_path, "runs", "--json").stdout)
        assert [(r["id"], r["state"], r["rows"]) for r in listed] == [(rid, "finished", 300)]

    # Resume says run.json was unreadable, rewrites it, and continues the steps.
    resumed = _run(tmp_path, f"""
        import steadyrun
        run = steadyrun.init(mode="local", resume="{rid}")
        for i in range(300, 400):
            run.log({{"train/loss": float(i)}})
        run.finish()
    """, env=env)
    assert resumed.returncode == 0, resumed.output
    assert f"resuming run {rid}" in resumed.stderr and "wrong type" in resumed.stderr
    manifest = orjson.loads((rdir / "run.json").read_bytes())
    assert manifest["state"] == "finished" and "manifest_error" not in manifest
    local = local_column(rdir, "train/loss")
    exactly_once(local, [float(i) for i in range(400)])
    assert [s for s, _ in steadyrun.open_run(rdir).column("train/loss")] == list(range(400))

    (rdir / "run.json").write_bytes(CORRUPT["truncated"])
    t0 = time.monotonic()
    sync = subprocess.run([sys.executable, "-m", "steadyrun", "sync", rid, "--mode", "offline",
                           "--quiet"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=90)
    assert sync.returncode == 0, sync.stderr
    assert "is corrupt" in sync.stderr, sync.stderr
    log = wandb_log(rdir)
    assert_once(log, "train/loss", local)
    scorecard("run.json corrupt (5 kinds of damage)", rows_logged=400, rows_local=len(local),
              rows_wandb=len(column(log, "train/loss")),
              time_to_end_s=round(time.monotonic() - t0, 2))


# ---------------------------------------------------------------------- the policy, in-process
class _FlakyDisk:
    """`os` for the segment file in write mode: writes fail with ENOSPC while `full`,
    after taking `partial` bytes of the first refused write (a line the disk took only
    in part). (mmap mode is refused whole, at allocation: the RLIMIT_FSIZE tests above.)"""

    def __init__(self) -> None:
        self.full = False
        self.partial = 0

    def __getattr__(self, name: str):
        return getattr(os, name)

    def pwrite(self, fd: int, data, offset: int) -> int:
        if self.full:
            if self.partial:
                n, self.partial = self.partial, 0
                return os.pwrite(fd, bytes(data[:n]), offset)
            raise OSError(28, "No space left on device")
        return os.pwrite(fd, data, offset)


def test_buffer_policy_drop_oldest_rows_keep_other_records(tmp_path: Path, monkeypatch,
                                                           capfd) -> None:
    import steadyrun.log.segment_file as sf
    import steadyrun.log.segment_writer as sw
    from steadyrun.store import records

    disk = _FlakyDisk()
    monkeypatch.setattr(sf, "os", disk)
    path = tmp_path / "seg.jsonl"
    writer = sw.SegmentWriter(path, interval=0.05, high_water=200, mode="write")
    writer.append(records.encode(records.opened("w", "owner", 1, "h")))
    writer.flush()
    disk.full, disk.partial = True, 7
    for i in range(1000):
        writer.append(records.encode(records.row(i, float(i), {"v": float(i)})))
        if i == 500:
            writer.append(records.encode(records.summary({"s": 1.0})))
        assert writer.pending <= 201
    time.sleep(0.2)
    disk.full = False  # space comes back only at close: the event must still be written
    writer.close()
    err = capfd.readouterr().err
    assert err.count("cannot write") == 1 and err.count("works again after") == 1, err
    lines = path.read_bytes().splitlines()
    recs = [orjson.loads(line) for line in lines]  # every line whole: the torn one completed
    rows = [r["v"]["v"] for r in recs if r["k"] == "row"]
    (event,) = [r for r in recs if r["k"] == "event" and r["type"] == "dropped"]
    assert len(rows) + event["rows"] == 1000 and event["rows"] == writer.dropped_rows > 0
    assert rows == sorted(rows) and rows[-1] == 999.0  # the newest rows survive
    dropped = set(range(event["x_min"], event["x_max"] + 1))
    assert set(range(1000)) - dropped == {int(v) for v in rows}
    assert [r["k"] for r in recs].count("summary") == 1  # a non-row record is never dropped
    assert recs[0]["k"] == "open"
