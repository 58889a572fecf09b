"""Issue 17, points 1 and 3: each writing process's stdout and stderr are teed into the
run at the file-descriptor level, and `steadyrun logs` prints them.

Real processes: a training script prints through `print`, `sys.stderr`, `os.write` on
the raw descriptor (what C extensions do), `warnings`, `logging`, a child process that
inherits the descriptors, tqdm-style carriage-return updates and a secret, then dies of
an uncaught exception. Its own terminal (the pipe the test reads) must see everything,
unchanged; the run must hold the lines, redacted, the progress bar's final state, the
traceback and why it failed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import orjson

import steadyrun

SCRIPT = textwrap.dedent("""
    import logging, os, subprocess, sys, warnings
    import steadyrun
    run = steadyrun.init(project="console")
    print("RUN=" + run.id, flush=True)
    print("hello from print")
    print("to stderr", file=sys.stderr)
    os.write(1, b"raw fd write, as a C extension does\\n")
    warnings.warn("a warning from the training loop")
    logging.basicConfig(level=logging.INFO)
    logging.getLogger("train").info("a logging record")
    subprocess.run([sys.executable, "-c", "print('from a child process')"], check=True)
    for i in range(0, 101, 25):
        sys.stdout.write(f"\\rprogress {i}%")
        sys.stdout.flush()
    sys.stdout.write("\\n")
    print("--token=hf_abcdefghijklmnopqrstuvwxyz0123 was passed")
    run.log({"train/loss": 0.5})
    raise RuntimeError("out of patience")
""")


def _lines(rdir: Path) -> list[dict]:
    (path,) = (rdir / "console").glob("*.jsonl")
    return [orjson.loads(x) for x in path.read_bytes().splitlines()]


def _run(sr_root: Path, console: str | None) -> tuple[subprocess.CompletedProcess[str], Path]:
    env = {**os.environ, "STEADYRUN_DIR": str(sr_root)}
    if console is None:
        env.pop("STEADYRUN_CONSOLE", None)  # the default
    else:
        env["STEADYRUN_CONSOLE"] = console
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          env=env, timeout=60)
    rid = next(ln.split("=", 1)[1] for ln in proc.stdout.splitlines() if ln.startswith("RUN="))
    return proc, steadyrun.open_run(rid).dir


def test_stdout_and_stderr_are_teed_into_the_run(sr_root: Path) -> None:
    proc, rdir = _run(sr_root, None)
    assert proc.returncode == 1
    # the terminal saw everything, as without steadyrun
    for text in ("hello from print", "raw fd write", "from a child process", "progress 100%"):
        assert text in proc.stdout, proc.stdout
    for text in ("to stderr", "a warning from the training loop", "a logging record",
                 "Traceback (most recent call last)", "RuntimeError: out of patience"):
        assert text in proc.stderr, proc.stderr
    lines = _lines(rdir)
    out = [r["l"] for r in lines if r["s"] == "out"]
    err = [r["l"] for r in lines if r["s"] == "err"]
    assert out[:3] == [f"RUN={rdir.name}", "hello from print",
                       "raw fd write, as a C extension does"]
    assert "from a child process" in out
    assert "progress 100%" in out and not any("progress 25%" in x for x in out)  # final state
    assert "to stderr" in err and any("a warning from the training loop" in x for x in err)
    assert any("a logging record" in x for x in err)
    assert "Traceback (most recent call last):" in err
    assert err[-1] == "RuntimeError: out of patience"  # the crash, captured whole
    assert not any("hf_abcdefghijklmnop" in r["l"] for r in lines)  # redacted
    assert any("--token=" in x for x in out)
    times = [r["t"] for r in lines]
    assert times == sorted(times)
    run = steadyrun.open_run(rdir.name)
    assert run.state == "failed" and run.manifest["error"]["type"] == "RuntimeError"

    # `steadyrun logs`
    env = {**os.environ, "STEADYRUN_DIR": str(sr_root)}

    def logs(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "steadyrun", "logs", rdir.name, *args],
                              capture_output=True, text=True, env=env, timeout=60)

    every = logs()
    assert every.returncode == 0
    assert every.stdout.splitlines() == out
    assert every.stderr.splitlines() == err
    assert logs("--grep", "progress").stdout.splitlines() == ["progress 100%"]
    tail = logs("--tail", "2")  # the last two lines in time: the traceback's end
    assert tail.stdout == "" and tail.stderr.splitlines() == err[-2:]
    bad = logs("--grep", "(")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def test_console_off_captures_nothing(sr_root: Path) -> None:
    proc, rdir = _run(sr_root, "off")
    assert "hello from print" in proc.stdout
    assert not (rdir / "console").exists()


SHIPPED = textwrap.dedent("""
    import subprocess, sys
    import steadyrun
    run = steadyrun.init(project="console-wandb")
    print("RUN=" + run.id, flush=True)
    for i in range(3):
        print(f"epoch {i} done")
        run.log({"train/loss": 1.0 / (i + 1)})
    print("a warning line", file=sys.stderr)
    child = "import steadyrun; r = steadyrun.init(); print('{}'); r.finish()"
    # its own stdout: the child captures it, as its own writer
    subprocess.run([sys.executable, "-c", child.format("child says hi")],
                   env=run.child_env(), check=True, stdout=subprocess.DEVNULL)
    # the parent's stdout (inherited): the parent's capture has it, once
    subprocess.run([sys.executable, "-c", child.format("inherited child")],
                   env=run.child_env(), check=True)
    run.finish()
""")


def _output_lines(rdir: Path) -> list[str]:
    from wandb_helpers import wandb_files, wandb_log

    from steadyrun.ship.wandb import txlog

    wandb_log(rdir)  # waits until W&B's log is final
    out = []
    for path in wandb_files(rdir):
        for rec in txlog.iter_records(path):
            if rec.WhichOneof("record_type") == "output_raw":
                out.append(rec.output_raw.line)
    return "".join(out).splitlines()


def test_console_lines_reach_wandbs_logs_tab_once(tmp_path: Path) -> None:
    """Shipped by the sidecar into W&B's transaction log as its own console records
    (what its Logs tab shows), each writer's lines marked when there are several; a
    second sync sends none again."""
    from wandb_helpers import run_script, steadyrun_cli

    done = run_script(tmp_path, SHIPPED, env={"STEADYRUN_CONSOLE": "on"})
    rdir = done.rdir
    lines = _output_lines(rdir)
    owner = [x for x in lines if x.startswith("[owner-")]
    assert [x.split("] ", 1)[1] for x in owner] == [
        f"RUN={rdir.name}", "epoch 0 done", "epoch 1 done", "epoch 2 done", "a warning line",
        "inherited child"]
    assert [x for x in lines if x.endswith("child says hi")] == [
        next(x for x in lines if x.startswith("[child-"))]  # once, as the child's
    assert sum("inherited child" in x for x in lines) == 1
    # `steadyrun logs`: both writers marked, or one writer's lines alone
    both = steadyrun_cli(tmp_path, "logs", rdir.name).stdout.splitlines()
    assert any(x.startswith("[child-") for x in both) and any(
        x.startswith("[owner-") for x in both)
    child = steadyrun_cli(tmp_path, "logs", rdir.name, "--writer", "child").stdout
    assert child.splitlines() == ["child says hi"]
    steadyrun_cli(tmp_path, "sync", rdir.name, "--mode", "offline")
    assert _output_lines(rdir) == lines  # nothing sent twice

    # raw wandb doing the same (its own console capture): what its Logs tab holds, ours
    # holds too
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "raw.py").write_text(textwrap.dedent("""
        import sys, wandb
        run = wandb.init(project="console-wandb", mode="offline",
                         settings=wandb.Settings(console="wrap", x_disable_stats=True))
        for i in range(3):
            print(f"epoch {i} done")
            run.log({"train/loss": 1.0 / (i + 1)})
        print("a warning line", file=sys.stderr)
        run.finish()
    """))
    from steadyrun.testing import wandb_env

    subprocess.run([sys.executable, "raw.py"], cwd=raw, check=True, capture_output=True,
                   env=wandb_env(raw, WANDB_DIR=str(raw), WANDB_CONSOLE=None,
                                 WANDB_SILENT="true"), timeout=120)
    from steadyrun.ship.wandb import txlog

    (raw_log,) = txlog.find_run_files(raw / "wandb")
    assert txlog.wait_complete(raw_log, timeout=30)
    raw_lines = "".join(r.output_raw.line for r in txlog.iter_records(raw_log)
                        if r.WhichOneof("record_type") == "output_raw").splitlines()
    theirs = {x.strip() for x in raw_lines if "epoch" in x or "warning line" in x}
    assert len(theirs) == 4, raw_lines
    assert theirs <= {x.split("] ", 1)[1] for x in owner}


def test_a_burst_of_prints_is_kept_whole(sr_root: Path) -> None:
    """20,000 lines printed as fast as the loop goes (no pacing): every one reaches the
    terminal and the run, in order (the reader gathers them; the pipe holds them)."""
    code = textwrap.dedent("""
        import sys, steadyrun
        run = steadyrun.init(project="burst", mode="local")
        print("RUN=" + run.id, flush=True)
        for i in range(20_000):
            print(f"line {i} " + "x" * (i % 50))
        run.finish()
    """)
    env = {**os.environ, "STEADYRUN_DIR": str(sr_root), "STEADYRUN_CONSOLE": "on"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    shown = proc.stdout.splitlines()
    assert len(shown) == 20_001
    rid = shown[0].split("=", 1)[1]
    kept = [r["l"] for r in _lines(steadyrun.open_run(rid).dir)]
    assert kept == shown


def test_logs_follow_prints_lines_as_they_come_and_ends_with_the_run(sr_root: Path) -> None:
    code = textwrap.dedent("""
        import sys, time, steadyrun
        run = steadyrun.init(project="follow", mode="local")
        print("RUN=" + run.id, flush=True)
        time.sleep(1.5)
        for i in range(3):
            print(f"later {i}", flush=True)
            time.sleep(0.3)
        run.finish()
    """)
    env = {**os.environ, "STEADYRUN_DIR": str(sr_root), "STEADYRUN_CONSOLE": "on"}
    writer = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                              env=env)
    assert writer.stdout is not None
    rid = writer.stdout.readline().strip().split("=", 1)[1]
    follow = subprocess.run([sys.executable, "-m", "steadyrun", "logs", rid, "-f"],
                            capture_output=True, text=True, env=env, timeout=60)
    writer.wait(30)
    assert follow.returncode == 0, follow.stderr
    assert follow.stdout.splitlines() == [f"RUN={rid}", "later 0", "later 1", "later 2"]
