"""A W&B server that refuses, hangs or fails never slows training nor loses a row.

Each case points W&B at a loopback server of the test's own (WANDB_BASE_URL, a fake
key) and runs a training script in a fresh interpreter. The training loop never waits
on the network; the sidecar probes the server, falls back to W&B offline files, and the
whole script ends far below wandb's own 90 s init timeout. What W&B recorded is read
back from its offline transaction logs.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from wandb_helpers import (
    assert_once,
    assert_steps_strictly_increase,
    listed_files,
    run_script,
    sidecar_log,
    sink_status,
    wandb_files,
    wandb_log,
)

from steadyrun.ship.wandb import txlog as wandb_txlog
from steadyrun.testing import serve

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"  # 40 hex characters, like a real key
ROWS = 2000

SCRIPT = """
    import sys, time
    t0 = time.monotonic()
    import steadyrun

    run = steadyrun.init(project="net", mode=sys.argv[1])
    t_init = time.monotonic() - t0
    durations = []
    for i in range(2000):
        a = time.perf_counter()
        run.log({"train/loss": float(i), "train/acc": i / 2000})
        durations.append(time.perf_counter() - a)
    run.summary.update({"eval/score": 0.5})
    t_loop = sum(durations)
    run.finish()
    durations.sort()
    print(f"INIT={t_init}")
    print(f"LOOP={t_loop}")
    print(f"MEDIAN={durations[len(durations) // 2]}")
    print(f"TOTAL={time.monotonic() - t0}")
"""


CASES = [
    ("refused", "auto"),
    ("silent", "auto"),
    ("http500", "auto"),
    ("refused", "online"),
    ("api_hangs", "online"),  # the probe passes; wandb's own init hangs
]


@pytest.mark.parametrize(("kind", "mode"), CASES, ids=[f"{k}-{m}" for k, m in CASES])
def test_faulty_server_neither_slows_training_nor_loses_rows(
        tmp_path: Path, kind: str, mode: str) -> None:
    # "silent" here holds the raw connection and never reads it: the server sees only that.
    with serve("silent_socket" if kind == "silent" else kind) as server:
        done = run_script(tmp_path, SCRIPT, args=[mode], timeout=60, env={
            "WANDB_API_KEY": FAKE_KEY, "WANDB_BASE_URL": server.url,
            "STEADYRUN_ONLINE_INIT_TIMEOUT": "8"})
    rdir, seen = done.rdir, server.seen

    # Training never waits on the network.
    assert float(done.value("INIT")) < 5, done.output
    assert float(done.value("LOOP")) < 5, done.output
    assert float(done.value("MEDIAN")) < 1e-3, done.output
    # The whole script, sidecar included, ends far below wandb's 90 s init timeout.
    assert float(done.value("TOTAL")) < 45, done.output
    assert done.elapsed < 45, done.output

    status = sink_status(rdir)
    assert status["mode"] == "offline" and status["state"] == "finished", status
    note = sidecar_log(rdir)
    assert "W&B offline files" in note and f"steadyrun sync {done.run_id}" in note, note

    # Every row is in W&B's offline files, once.
    files = listed_files(rdir)
    assert files and all(f.parent.name.startswith("offline-run-") for f in files), files
    log = wandb_log(rdir, files=files)
    assert len(log.history) == ROWS
    assert_once(log, "train/loss", [float(i) for i in range(ROWS)])
    assert [r["train/step"] for r in log.history] == list(range(ROWS))
    assert_steps_strictly_increase(log)
    assert log.summary["eval/score"] == 0.5
    assert log.exit_code == 0
    # A killed online attempt may leave its own log behind: it holds no row.
    for stray in set(wandb_files(rdir)) - set(files):
        assert wandb_txlog.wait_complete(stray, timeout=30, require_exit=False)
        assert wandb_txlog.load(stray).history == []

    # Offline, W&B sends nothing: the server saw the sidecar's one probe and no more.
    if mode == "auto":
        assert seen == {"refused": [], "silent": ["connection"],
                        "http500": ["GET /healthz"]}[kind], seen
    if kind == "api_hangs":
        # The probe passed, so this took the supervisor's bounded online attempt.
        assert status.get("fallback") == "offline", status
        assert "did not start in 8s" in note, note
