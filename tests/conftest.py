"""Shared fixtures for the steadyrun test suite.

Every test that writes a run uses `sr_root` (directly or through `new_run`): a private
root under tmp_path and none of the caller's mode, strict or context variables, so the
suite is safe under `pytest -n 2` and on a machine that has W&B configured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

# Variables that would change what `steadyrun.init()` does in a test.
_STEADYRUN_ENV = ("STEADYRUN_MODE", "WANDB_MODE", "STEADYRUN_STRICT", "STEADYRUN_CONTEXT")
# Launcher variables: a test run inside a SLURM or torchrun job must still own its runs.
_RANK_ENV = ("RANK", "SLURM_PROCID", "OMPI_COMM_WORLD_RANK", "PMI_RANK")

# Console capture (log/console.py) points fd 1 and 2 at a pipe: in this process it would
# fight pytest's own fd capture, and scripts' output would reach the tests a thread's
# hop later. Off for the suite, the processes it starts included (they inherit it);
# tests/test_console.py turns it on where it is the subject.
os.environ["STEADYRUN_CONSOLE"] = "off"

# W&B at a loopback address where nothing listens, for this process and every process it
# starts (issue 18; why that address: steadyrun.testing.NO_WANDB_URL), and no netrc: a
# developer's ~/.netrc entry for api.wandb.ai would make auto mode online. Set here,
# before any test, so that it holds for tests that never touch the helpers. The package's
# wandb_env puts the address into every script's environment, and wandb_helpers.bare_env
# (the environment without steadyrun, W&B or launcher variables) puts it back;
# wandb_helpers' builders and `run_python` refuse an environment whose W&B is not on
# loopback, and tests/faults/test_fault_security.py checks what they build.
from wandb_helpers import NO_WANDB_URL, assert_loopback_wandb  # noqa: E402

os.environ["WANDB_BASE_URL"] = NO_WANDB_URL
os.environ["NETRC"] = os.devnull
os.environ.pop("WANDB_API_KEY", None)


@pytest.fixture
def sr_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """STEADYRUN_DIR points at tmp_path; mode, strict and context variables are unset."""
    monkeypatch.setenv("STEADYRUN_DIR", str(tmp_path))
    for var in _STEADYRUN_ENV + _RANK_ENV:
        monkeypatch.delenv(var, raising=False)
    # No git/host metadata by default: tests compare configs and files exactly, and the
    # working tree may be a dirty checkout. Metadata tests pass metadata=True.
    monkeypatch.setenv("STEADYRUN_METADATA", "0")
    return tmp_path


@pytest.fixture
def new_run(sr_root: Path) -> Iterator[Callable[..., Any]]:
    """Factory for local runs under `sr_root`; every run it made is finished at teardown."""
    import steadyrun

    started: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("mode", "local")
        run = steadyrun.init(**kwargs)
        started.append(run)
        return run

    yield make
    for run in started:
        run.finish()


@pytest.fixture
def run_python(sr_root: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run Python code in a fresh interpreter with the test's environment (and root).

    `check=True` fails the test with the child's output when it exits non-zero.
    """

    def run(code: str, *args: str, check: bool = True, timeout: float = 60,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        env = dict(os.environ) if env is None else env
        assert_loopback_wandb(env)
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args],
                              capture_output=True, text=True, timeout=timeout,
                              env=env, cwd=sr_root)
        if check and proc.returncode != 0:
            raise AssertionError(f"child exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
                                 f"stderr:\n{proc.stderr}")
        return proc

    return run
