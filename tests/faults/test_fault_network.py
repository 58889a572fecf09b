"""Network faults: a W&B that refuses, hangs, fails, crawls, or goes away and comes back.

Each case points W&B at a loopback server of the test's own (WANDB_BASE_URL, a fake
key), runs a training loop in a fresh interpreter, and checks that training never
waited on the network and that every row is in the run folder and in W&B's transaction
log exactly once. tests/test_network_faults.py checks the same three first faults for
timing; here each case is also counted locally and measured for the scorecard.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fault_helpers import FAKE_KEY, TRAIN, FaultServer, exactly_once, figures_of, local_column
from wandb_helpers import (
    assert_steps_strictly_increase,
    listed_files,
    sink_status,
    start_script,
    wandb_log,
)

ROWS = 1000


def _check(done, rows: int, scorecard, case: str, **extra) -> None:
    rdir = done.rdir
    local = local_column(rdir, "train/loss")
    exactly_once(local, [float(i) for i in range(rows)])
    status = sink_status(rdir)
    assert status["state"] == "finished" and status["mode"] == "offline", status
    log = wandb_log(rdir, files=listed_files(rdir))
    wb = [r["train/loss"] for r in log.history if "train/loss" in r]
    exactly_once(wb, [float(i) for i in range(rows)])
    assert wb == local  # the same rows, in the same order
    assert_steps_strictly_increase(log)
    assert log.exit_code == 0
    # Training never waited on the network.
    assert float(done.value("INIT")) < 3, done.output
    assert float(done.value("WORST")) < 0.5, done.output
    scorecard(case, rows_logged=rows, rows_local=len(local), rows_wandb=len(wb),
              **figures_of(done, **extra))


CASE = {"refused": "W&B refused (auto)", "silent": "W&B silent (auto)",
        "http500": "W&B http500 (auto)",
        "slow": "W&B slow: every answer after 1 s (online; the probe passes, the online "
                "worker starts, fails, offline takes over)"}


@pytest.mark.parametrize(("kind", "mode"), [("refused", "auto"), ("silent", "auto"),
                                            ("http500", "auto"), ("slow", "online")])
def test_wandb_server_fault(tmp_path: Path, scorecard, kind: str, mode: str) -> None:
    # The slow server answers within the sidecar's 3 s probe (mode.PROBE_TIMEOUT), so the
    # online worker really starts and meets the slowness in wandb.init; one slower than
    # the probe would only test the probe, as "silent" does.
    server = FaultServer(kind, delay=1.0)
    try:
        script = start_script(tmp_path, TRAIN, args=[mode, str(ROWS), "0"], env={
            "WANDB_API_KEY": FAKE_KEY, "WANDB_BASE_URL": server.url,
            "STEADYRUN_ONLINE_INIT_TIMEOUT": "6"})
        done = script.wait(timeout=60)
    finally:
        server.close()
    # The whole script, sidecar included, ends far below wandb's 90 s init timeout.
    assert done.elapsed < 40, done.output
    status = sink_status(done.rdir)
    if kind == "slow":
        # The probe was answered, so the sidecar went online; the online worker then failed
        # or ran past its bound, and the supervisor recorded its fallback to offline.
        assert any(r.endswith("/healthz") for r in server.seen), server.seen
        assert status.get("fallback") == "offline", status
    else:
        assert "fallback" not in status, status  # offline from the start: the probe failed
    _check(done, ROWS, scorecard, CASE[kind], server_requests=server.requests)


def test_wandb_stand_in_goes_down_mid_run_and_comes_back(tmp_path: Path, scorecard) -> None:
    """Up (health check fine, API failing), down for 2 s mid-run, back up: training never
    waits and every row reaches W&B's offline files once, in order.

    This is not recovery. A stand-in cannot play W&B's API, so the online worker never
    starts here (it is killed at STEADYRUN_ONLINE_INIT_TIMEOUT and an offline one ships);
    rows shipped online after a real server returns are not measured by any test
    (docs/reliability.md, "What no test here exercises").
    """
    rows, pace = 1500, 0.003  # about 5 s of training
    server = FaultServer("flaky")
    try:
        script = start_script(tmp_path, TRAIN, args=["online", str(rows), str(pace)], env={
            "WANDB_API_KEY": FAKE_KEY, "WANDB_BASE_URL": server.url,
            "STEADYRUN_ONLINE_INIT_TIMEOUT": "4"})
        time.sleep(1.5)
        server.down()
        assert script.proc.poll() is None
        time.sleep(2.0)
        server.up()
        done = script.wait(timeout=60)
    finally:
        server.close()
    assert done.elapsed < 40, done.output
    # Whether the sidecar's probe met the server up (then its online worker was killed at
    # the bound and replaced) or down (offline at once), the rows went to offline files.
    _check(done, rows, scorecard, "W&B stand-in down for 2 s mid-run, then back (no "
           "online recovery: offline files)", server_requests=server.requests)
