"""Security: planted secrets reach no byte on disk, files are owner-only whatever the
umask, and no process of a run listens on a network port.

One offline run plants an API key in the environment, keys, passwords and tokens in the
config, the notes, an alert and the command line, and credentials in URLs. While it runs,
the training process, the sidecar and wandb-core are checked for sockets; after it, every
file under the run folder and W&B's folders is scanned byte by byte.

A fake key in auto mode is offered to whatever server WANDB_BASE_URL names, so the suite
pins that to loopback (wandb_helpers.NO_WANDB_URL); the last test here checks the pin in
every environment the helpers build.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import psutil
import pytest
from fault_helpers import MEASURE, exactly_once, figures_of, local_column, wait_for
from wandb_helpers import (
    NO_WANDB_URL,
    assert_loopback_wandb,
    bare_env,
    is_loopback_url,
    run_script,
    sidecar_log,
    sink_status,
    start_script,
    wandb_env,
    wandb_log,
)

SECRETS = {
    "env WANDB_API_KEY": "5ec7e70a11ce0ffe1deadbeef0ddba11c0ffee42",
    "config api_key": "cfgApiKeyQ7x9Zt2w",
    "config db_password": "cfgPassW0rdLk3v",
    "config nested token": "cfgNestedTok88Hq",
    "config URL credentials": "urlPassInConfig5u",
    "notes URL credentials": "urlPassInNotes7m",
    "alert URL credentials": "urlPassInAlert2k",
    "argv --token=": "argvTokenEq4Rr",
    "argv --password VALUE": "argvPassSpace9Pp",
    "argv URL credentials": "urlPassInArgv3Dd",
}
S = SECRETS

SCRIPT = f"""
import os, sys, time
os.umask(0)  # owner-only files must not depend on the caller's umask
t0 = time.monotonic()
import steadyrun

run = steadyrun.init(project="secrets", config={{
    "api_key": "{S['config api_key']}", "db_password": "{S['config db_password']}",
    "data_url": "https://alice:{S['config URL credentials']}@data.example.com/set",
    "nested": {{"auth_token": "{S['config nested token']}"}}, "lr": 0.1}},
    notes="data at https://carol:{S['notes URL credentials']}@host.example.com/x")
print(f"RUN={{run.id}}", flush=True)
print(f"DIR={{run.dir}}", flush=True)
env = run.child_env()
for i in range(300):
    run.log({{"train/loss": float(i)}})
run.alert("fetch failed", "https://dave:{S['alert URL credentials']}@host.example.com/y")
with open("report.md", "w") as fh:
    fh.write("# report")
run.save("report.md")
run.log_image("samples/img", [[0, 128], [255, 64]])
run.flush()
print("READY", flush=True)
while not os.path.exists("go"):  # the test inspects the sockets meanwhile
    time.sleep(0.02)
for i in range(300, 600):
    run.log({{"train/loss": float(i)}})
run.finish()
print(f"TOTAL={{time.monotonic() - t0:.3f}}")
""" + MEASURE

ARGV = [f"--token={S['argv --token=']}", "--password", S["argv --password VALUE"],
        f"https://bob:{S['argv URL credentials']}@example.com/data"]


def _listening(pids: list[int]) -> tuple[list[str], int]:
    """LISTEN sockets (TCP) and bound UDP sockets of the processes, and all inet sockets."""
    found, total = [], 0
    for pid in pids:
        try:
            conns = psutil.Process(pid).net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        total += len(conns)
        for c in conns:
            if c.status == psutil.CONN_LISTEN or (c.status == psutil.CONN_NONE and c.laddr):
                found.append(f"pid {pid}: {c.laddr} {c.status}")
    return found, total


def test_secrets_permissions_and_no_listening_ports(tmp_path: Path, scorecard) -> None:
    script = start_script(tmp_path, SCRIPT, args=ARGV,
                          env={"WANDB_API_KEY": S["env WANDB_API_KEY"]})
    out = tmp_path / "script.stdout"
    wait_for(lambda: b"READY" in out.read_bytes() or script.proc.poll() is not None, 60,
             "the script to log its first rows")
    rdir = Path(next(line[4:] for line in out.read_text().splitlines()
                     if line.startswith("DIR=")))
    status = wait_for(lambda: (sink_status(rdir) if (rdir / "sinks" / "wandb.json").exists()
                               else {}).get("state") == "shipping" and sink_status(rdir),
                      60, "the sidecar to ship")
    pids = [script.proc.pid, status["pid"]]
    for pid in list(pids):
        try:
            pids += [c.pid for c in psutil.Process(pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            pass
    listening, inet = _listening(pids)
    (tmp_path / "go").touch()
    done = script.wait(timeout=90)
    assert not listening, listening
    assert len(pids) >= 3  # training, sidecar, wandb-core: all checked

    # Planted secrets: in no byte under the run folder or W&B's folders.
    scanned = [p for folder in (rdir, tmp_path / "wandb-home") for p in folder.rglob("*")
               if p.is_file() and not p.is_symlink()]
    leaks = {label: [str(p) for p in scanned if secret.encode() in p.read_bytes()]
             for label, secret in SECRETS.items()}
    leaks = {label: where for label, where in leaks.items() if where}
    assert not leaks, leaks
    assert any(p.suffix == ".wandb" for p in scanned)  # W&B's own log was among them

    # Owner-only, with umask 0: folders 0700, our files 0600.
    loose = []
    for path in [rdir, *rdir.rglob("*")]:
        if rdir / "wandb" in path.parents or path == rdir / "wandb":
            continue  # W&B's own files: inside the 0700 run folder, out of others' reach
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            loose.append(f"{path.relative_to(rdir)}: {oct(mode)}")
    assert not loose, loose
    assert stat.S_IMODE(rdir.stat().st_mode) == 0o700
    assert stat.S_IMODE((rdir / "context.json").stat().st_mode) == 0o600

    local = local_column(rdir, "train/loss")
    exactly_once(local, [float(i) for i in range(600)])
    log = wandb_log(rdir)
    wb = [r["train/loss"] for r in log.history if "train/loss" in r]
    assert wb == local
    assert log.config["lr"] == 0.1 and log.config["api_key"] != S["config api_key"]
    # The planted key was offered to the loopback address alone: the probe was refused
    # there and the run went offline (the offline files above were all it wrote).
    assert f"W&B server {NO_WANDB_URL} does not answer" in sidecar_log(rdir), sidecar_log(rdir)
    scorecard("planted secrets, file modes, listening ports", rows_logged=600,
              rows_local=len(local), rows_wandb=len(wb), secrets_planted=len(SECRETS),
              secrets_found=0, files_scanned=len(scanned), processes_checked=len(pids),
              listening_sockets=len(listening), inet_sockets=inet, **figures_of(done))


# ---------------------------------------------------------------------- W&B on loopback
PROBE = """
import os, time
from steadyrun.ship.wandb import mode
t0 = time.monotonic()
ok, why = mode.server_answers()
print(f"URL={os.environ.get('WANDB_BASE_URL')}")
print(f"ANSWERS={ok}")
print(f"WHY={why}")
print(f"PROBE_S={time.monotonic() - t0:.3f}")
print(f"CHOSEN={mode.choose('auto')[0]}")
"""


def test_every_test_process_points_wandb_at_loopback(tmp_path: Path, run_python,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """No test process can reach a W&B beyond this machine: this process, the scripts of
    wandb_helpers (run_script and start_script; steadyrun_cli builds its environment with
    the same wandb_env) and conftest's `run_python` all carry a loopback WANDB_BASE_URL,
    even where the caller's environment names the public server, and a builder refuses
    an environment that names another host."""
    assert os.environ.get("WANDB_BASE_URL") == NO_WANDB_URL  # tests/conftest.py's pin

    # What the children see, with a fake key set: the probe of steadyrun's auto mode is
    # refused on loopback at once (no 3 s timeout), so the run goes offline.
    key = {"WANDB_API_KEY": "0" * 40}
    done = run_script(tmp_path / "script", PROBE, env=key)
    assert done.value("URL") == NO_WANDB_URL
    assert done.value("ANSWERS") == "False" and "ConnectionRefused" in done.value("WHY")
    assert float(done.value("PROBE_S")) < 1.0 and done.value("CHOSEN") == "offline"
    child = run_python("import os; print(os.environ.get('WANDB_BASE_URL'))")
    assert child.stdout.strip() == NO_WANDB_URL

    # A caller whose own environment names the public server: the builders pin loopback
    # anyway (the package's wandb_env puts loopback in place of the caller's URL).
    monkeypatch.setenv("WANDB_BASE_URL", "https://api.wandb.ai")
    assert wandb_env(tmp_path)["WANDB_BASE_URL"] == NO_WANDB_URL
    assert bare_env()["WANDB_BASE_URL"] == NO_WANDB_URL  # W&B's variables dropped, pin kept
    with pytest.raises(AssertionError, match="loopback"):
        wandb_env(tmp_path, WANDB_BASE_URL=None)  # unset: W&B's public server
    server = "http://127.0.0.1:45678"  # a test's own stand-in keeps its address
    assert wandb_env(tmp_path, WANDB_BASE_URL=server)["WANDB_BASE_URL"] == server
    with pytest.raises(AssertionError, match="loopback"):
        wandb_env(tmp_path, WANDB_BASE_URL="https://api.wandb.ai")
    with pytest.raises(AssertionError, match="loopback"):
        run_python("print(1)")  # the caller's environment, public URL and all

    for url, near in [(NO_WANDB_URL, True), ("http://localhost:8080", True),
                      ("http://[::1]:9", True), ("http://127.0.0.2", True),
                      ("https://api.wandb.ai", False), ("http://127.0.0.1.example.com", False),
                      ("http://10.0.0.1:9", False), ("", False), (None, False)]:
        assert is_loopback_url(url) is near, url
    assert_loopback_wandb({"WANDB_BASE_URL": NO_WANDB_URL})
    with pytest.raises(AssertionError):
        assert_loopback_wandb({})  # unset: W&B would use its public server
