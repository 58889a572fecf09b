"""Run training scripts in fresh interpreters and read back what W&B itself recorded.

Tests that check the W&B side never mock wandb: a script runs `steadyrun.init()` in a
subprocess, its sidecar ships to real W&B offline files, and the test reads W&B's own
transaction logs (`run-<id>.wandb`) with `steadyrun.ship.wandb.txlog`. wandb's `finish()`
can return before wandb-core has written the whole log, so the logs are read only once
the script (and with it the sidecar) has exited and `wait_complete` says each file is
final.

Imported by plain name (`from wandb_helpers import ...`): pytest's default import mode
puts tests/ on sys.path, with or without xdist.

W&B's address is pinned to loopback (`NO_WANDB_URL`) for the whole suite: tests/conftest.py
puts it in this process's environment, the package's `wandb_env` puts it into every
script's, and `wandb_env` here refuses to build an environment whose W&B is elsewhere.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import orjson

from steadyrun.ship.wandb import txlog as wandb_txlog
from steadyrun.testing import NO_WANDB_URL  # the tests import it from here too
from steadyrun.testing import wandb_env as package_wandb_env


def is_loopback_url(url: str | None) -> bool:
    """Whether `url` names this machine (127.0.0.0/8, ::1, localhost). None or empty is
    not: W&B then uses its public server."""
    host = urlparse(url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def assert_loopback_wandb(env: Mapping[str, str]) -> None:
    """Fail before a process starts whose W&B would be reachable beyond this machine."""
    url = env.get("WANDB_BASE_URL")
    assert is_loopback_url(url), (f"WANDB_BASE_URL={url!r}: a test process must point W&B at "
                                  f"loopback (wandb_helpers.NO_WANDB_URL or its own server)")


# The caller's variables that decide what a steadyrun process is: its mode, context and
# root, W&B's, and a launcher's rank. `bare_env` drops them.
FOREIGN = ("STEADYRUN_", "WANDB_", "SLURM_", "OMPI_", "PMI_", "RANK", "LOCAL_RANK",
           "WORLD_SIZE")


def bare_env(**extra: str) -> dict[str, str]:
    """This process's environment without steadyrun, W&B or launcher variables, W&B
    pinned back to loopback (NO_WANDB_URL), plus `extra`: for a child that must find its
    own root, mode and rank, as a user's shell would give them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN)}
    env["WANDB_BASE_URL"] = NO_WANDB_URL
    env.update(extra)
    assert_loopback_wandb(env)
    return env


def free_port() -> int:
    """A loopback port free at this instant, for a launcher's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wandb_env(base: Path, **extra: str | None) -> dict[str, str]:
    """`steadyrun.testing.wandb_env` (W&B at NO_WANDB_URL unless `extra` names a server
    of the test's own), refused when W&B is anywhere but loopback, or unset."""
    env = package_wandb_env(base, **extra)
    assert_loopback_wandb(env)
    return env


@dataclass
class Finished:
    base: Path
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def root(self) -> Path:
        return self.base / "sr"

    @property
    def run_ids(self) -> list[str]:
        runs = self.root / "runs"
        return sorted(p.name for p in runs.iterdir()) if runs.is_dir() else []

    @property
    def run_id(self) -> str:
        ids = self.run_ids
        assert len(ids) == 1, f"expected one run under {self.root}, found {ids}\n{self.output}"
        return ids[0]

    @property
    def rdir(self) -> Path:
        return self.root / "runs" / self.run_id

    @property
    def output(self) -> str:
        return f"exit {self.returncode}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"

    def value(self, name: str) -> str:
        """A `NAME=value` line the script printed on stdout."""
        for line in self.stdout.splitlines():
            if line.startswith(f"{name}="):
                return line.split("=", 1)[1]
        raise AssertionError(f"the script printed no {name}=\n{self.output}")


class Script:
    """A Python script running in its own interpreter, with `base/sr` as its root."""

    def __init__(self, base: Path, code: str, *, env: Mapping[str, str | None] | None = None,
                 args: Iterable[str] = (), name: str = "script") -> None:
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.path = base / f"{name}.py"
        self.path.write_text(textwrap.dedent(code))
        self._out = open(base / f"{name}.stdout", "w+b")  # noqa: SIM115
        self._err = open(base / f"{name}.stderr", "w+b")  # noqa: SIM115
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, str(self.path), *args], cwd=base, env=wandb_env(base, **(env or {})),
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err)

    def wait(self, timeout: float = 90, check: bool = True) -> Finished:
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            code = None
        elapsed = time.monotonic() - self.started
        outs = []
        for fh in (self._out, self._err):
            fh.seek(0)
            outs.append(fh.read().decode(errors="replace"))
            fh.close()
        done = Finished(self.base, -999 if code is None else code, outs[0], outs[1], elapsed)
        if code is None:
            raise AssertionError(f"the script ran past {timeout}s\n{done.output}")
        if check and code != 0:
            raise AssertionError(f"the script failed\n{done.output}")
        return done


def start_script(base: Path, code: str, **kwargs: Any) -> Script:
    return Script(base, code, **kwargs)


def run_script(base: Path, code: str, *, timeout: float = 90, check: bool = True,
               **kwargs: Any) -> Finished:
    """Run a script to its end (its `finish()` waits for the sidecar)."""
    return Script(base, code, **kwargs).wait(timeout=timeout, check=check)


def steadyrun_cli(base: Path, *args: str, timeout: float = 60,
                  env: Mapping[str, str | None] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m steadyrun ARGS` with the same environment and root as the scripts."""
    proc = subprocess.run([sys.executable, "-m", "steadyrun", *args], cwd=base,
                          env=wandb_env(base, **(env or {})), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (f"steadyrun {' '.join(args)} exited {proc.returncode}\n"
                                  f"{proc.stdout}\n{proc.stderr}")
    return proc


# ---------------------------------------------------------------------- W&B's side
def sink_status(rdir: Path) -> dict[str, Any]:
    return orjson.loads((rdir / "sinks" / "wandb.json").read_bytes())


def sidecar_log(rdir: Path) -> str:
    path = rdir / "sinks" / "sidecar.log"
    return path.read_text(errors="replace") if path.exists() else ""


def wandb_files(rdir: Path, wandb_dir: Path | None = None) -> list[Path]:
    """Every `run-<id>.wandb` of the run, oldest first (WANDB_DIR unset: inside the run)."""
    return wandb_txlog.find_run_files(wandb_dir or rdir / "wandb", rdir.name)


def wandb_log(rdir: Path, *, wandb_dir: Path | None = None, timeout: float = 30,
              expect_exit: bool = True, files: list[Path] | None = None) -> wandb_txlog.TxLog:
    """Wait until each of the run's W&B logs is final, then load them as one run.

    Pieces of a resumed run (a restarted sidecar, a later sync) that were cut off have no
    exit record: for those only the writer must be gone and the size settled. The last
    piece must hold the exit record unless `expect_exit` is False.
    """
    files = wandb_files(rdir, wandb_dir) if files is None else files
    assert files, f"W&B wrote no transaction log for {rdir.name}\n{sidecar_log(rdir)}"
    for i, path in enumerate(files):
        last = i == len(files) - 1
        ok = wandb_txlog.wait_complete(path, timeout=timeout, require_exit=last and expect_exit)
        assert ok, f"{path} is not final after {timeout}s\n{sidecar_log(rdir)}"
    return wandb_txlog.load(files)


def listed_files(rdir: Path) -> list[Path]:
    """The logs of the W&B runs the sink opened (sinks/wandb.json run_dirs), in order."""
    out: list[Path] = []
    for d in sink_status(rdir).get("run_dirs") or []:
        found = wandb_txlog.find_run_files(d, rdir.name)
        assert len(found) == 1, f"{d} holds {found}"
        out += found
    return out


def column(log: wandb_txlog.TxLog, key: str) -> list[Any]:
    """The values of one key, in W&B's row order."""
    return [row[key] for row in log.history if key in row]


def assert_once(log: wandb_txlog.TxLog, key: str, expected: Iterable[Any]) -> None:
    """W&B holds the values of `key` exactly once each, in order, and nothing else."""
    expected = list(expected)
    got = column(log, key)
    dupes = {v: n for v, n in Counter(got).items() if n > 1}
    assert not dupes, f"{key}: values W&B holds more than once: {dupes}"
    missing = sorted(set(expected) - set(got))
    extra = sorted(set(got) - set(expected))
    assert not missing and not extra, f"{key}: missing {missing[:20]}, extra {extra[:20]}"
    assert got == expected, f"{key}: W&B holds the right values in another order"


def assert_steps_strictly_increase(log: wandb_txlog.TxLog) -> None:
    """`_step` increases from row to row across every piece of the log, in order.

    Within one W&B process this cannot fail: wandb itself drops a row whose step does not
    increase, so the counts (`assert_once`) are what catch a row lost that way. Across
    pieces (a restarted sidecar, a resume, a later sync) it can: each piece is a new
    process that would accept steps starting over (seed 000's bug)."""
    steps = [row["_step"] for row in log.history]
    bad = [(a, b) for a, b in zip(steps, steps[1:], strict=False) if b <= a]
    assert not bad, f"_step does not increase at {bad[:10]}"
