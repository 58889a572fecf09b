"""What raw `wandb` does in the fault suite's cases, measured (docs/reliability.md).

    .venv/bin/python benchmarks/raw_wandb_faults.py             # every case, ~3 minutes
    .venv/bin/python benchmarks/raw_wandb_faults.py --only hang,step_regression

Each case runs plain `wandb` (no steadyrun) in a fresh interpreter, against loopback
servers of this script's own (127.0.0.1 only) or in offline mode, and counts what W&B's
own transaction log (`run-<id>.wandb`) holds with `steadyrun.ship.wandb.txlog`. The network
cases use `init_timeout=10` instead of wandb's default of 90 s, so they take 10 s
rather than 90 s; the figure to expect with the default is stated beside them.

Writes benchmarks/results/raw_wandb_faults.json (one object per case: what was done,
what happened, the figures), which tests/faults/make_scorecard.py puts next to
steadyrun's figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

from steadyrun.testing import FaultServer  # the fault suite's W&B stand-in: same faults

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "raw_wandb_faults.json"
FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"
INIT_TIMEOUT = 10
CLEARED = ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL", "WANDB_DIR", "WANDB_PROJECT",
           "WANDB_ENTITY", "WANDB_RUN_ID", "WANDB_RESUME", "WANDB_SERVICE", "STEADYRUN_DIR")

# ---------------------------------------------------------------------- case bodies
# Each body runs in its own interpreter with cwd = a scratch folder and prints one line
# `RESULT=<json>`. `txlog_rows(folder)` counts history rows in every W&B log under it.
PRELUDE = """
import json, os, sys, time, warnings
t0 = time.monotonic()
import wandb
from steadyrun.ship.wandb import txlog as wandb_txlog

def txlog_rows(folder="wb"):
    files = sorted(p for p in __import__("pathlib").Path(folder).rglob("run-*.wandb"))
    if not files:
        return 0, 0
    for f in files:
        wandb_txlog.wait_complete(f, timeout=20, require_exit=False)
    return sum(len(wandb_txlog.load([f]).history) for f in files), len(files)

def settings(**kw):
    base = dict(silent=True, console="off", x_disable_stats=True, x_disable_meta=True,
                disable_git=True, save_code=False)
    base.update(kw)
    return wandb.Settings(**base)

def done(**fields):
    fields.setdefault("seconds", round(time.monotonic() - t0, 2))
    print("RESULT=" + json.dumps(fields, default=str), flush=True)
"""

ONLINE_INIT = """
try:
    a = time.monotonic()
    run = wandb.init(project="raw", mode="online", dir="wb",
                     settings=settings(init_timeout=INIT_TIMEOUT))
    took = time.monotonic() - a
    for i in range(100):
        run.log({"loss": float(i)})
    run.finish()
    done(init_s=round(took, 2), outcome="init returned", rows_logged=100)
except Exception as exc:
    done(init_s=round(time.monotonic() - a, 2), rows_logged=0, rows_wandb=0,
         outcome=f"wandb.init raised {type(exc).__name__}: {str(exc)[:160]}")
""".replace("INIT_TIMEOUT", str(INIT_TIMEOUT))

CASES: dict[str, dict[str, Any]] = {
    "refused": {"server": "refused", "body": ONLINE_INIT,
                "what": "wandb.init online, W&B refuses connections"},
    "hang": {"server": "silent", "body": ONLINE_INIT,
             "what": "wandb.init online, W&B accepts and never answers"},
    "http500": {"server": "http500", "body": ONLINE_INIT,
                "what": "wandb.init online, W&B answers 500"},
    # 1 s: the same server as the fault suite's slow case, which answers within
    # steadyrun's 3 s probe so that its online worker starts.
    "slow": {"server": "slow", "delay": 1.0, "body": ONLINE_INIT,
             "what": "wandb.init online, W&B answers every request after 1 s"},
    "step_regression": {"what": "offline: log(step=10) then log(step=5)", "body": """
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    run = wandb.init(project="raw", mode="offline", dir="wb", settings=settings())
    run.log({"loss": 1.0}, step=10)
    run.log({"loss": 2.0}, step=5)
    run.finish()
rows, _ = txlog_rows()
done(rows_logged=2, rows_wandb=rows, outcome=f"{2 - rows} of 2 rows dropped")
"""},
    "sigkill_training": {"what": "offline: 3000 rows logged, training SIGKILLed", "body": """
import signal
run = wandb.init(project="raw", mode="offline", dir="wb", settings=settings())
for i in range(3000):
    run.log({"loss": float(i)})
print("RUNDIR=" + os.path.dirname(run.dir), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""},
    "kill_core": {"what": "offline: wandb-core SIGKILLed after 1000 of 2000 rows", "body": """
import psutil, signal
run = wandb.init(project="raw", mode="offline", dir="wb", settings=settings())
for i in range(1000):
    run.log({"loss": float(i)})
cores = [p for p in psutil.Process().children(recursive=True) if "wandb-core" in p.name()]
for p in cores:
    p.send_signal(signal.SIGKILL)
raised = None
a = time.monotonic()
try:
    for i in range(1000, 2000):
        run.log({"loss": float(i)})
    run.finish()
except BaseException as exc:
    raised = f"{type(exc).__name__}: {str(exc)[:120]}"
rows, _ = txlog_rows()
done(rows_logged=2000, rows_wandb=rows, killed=len(cores), after_kill_s=round(time.monotonic() - a, 2),
     outcome=f"raised {raised}" if raised else "no error raised")
"""},
    "disk_full": {"what": "offline under RLIMIT_FSIZE=64 KiB: 5000 rows", "fsize": 64 * 1024,
                  "body": """
raised = None
try:
    run = wandb.init(project="raw", mode="offline", dir="wb", settings=settings())
    for i in range(5000):
        run.log({"loss": float(i)})
    run.finish()
except BaseException as exc:
    raised = f"{type(exc).__name__}: {str(exc)[:120]}"
import resource
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
rows, _ = txlog_rows()
done(rows_logged=5000, rows_wandb=rows, outcome=f"raised {raised}" if raised else
     "no error raised")
"""},
    "read_only": {"what": "offline, wandb.init(dir=<read-only folder>)", "read_only": "ro",
                  "body": """
raised = None
try:
    run = wandb.init(project="raw", mode="offline", dir="ro", settings=settings())
    for i in range(100):
        run.log({"loss": float(i)})
    where = run.dir
    run.finish()
except BaseException as exc:
    raised, where = f"{type(exc).__name__}: {str(exc)[:160]}", None
import tempfile
fell_back = where is not None and not os.path.abspath(where).startswith(os.path.abspath("ro"))
done(rows_logged=100, outcome=f"raised {raised}" if raised else
     f"no error: wrote to {tempfile.gettempdir()}/wandb/ instead, without a word"
     if fell_back else f"wrote to {where}")
"""},
    "threads": {"what": "offline: 16 threads x 1000 rows, auto step", "body": """
import threading
run = wandb.init(project="raw", mode="offline", dir="wb", settings=settings())
def work(k):
    for i in range(1000):
        run.log({"thread": k, "i": i})
pool = [threading.Thread(target=work, args=(k,)) for k in range(16)]
for t in pool: t.start()
for t in pool: t.join()
run.finish()
rows, _ = txlog_rows()
done(rows_logged=16000, rows_wandb=rows, outcome="every row kept" if rows == 16000 else
     f"{16000 - rows} rows missing")
"""},
    "processes": {"what": "offline: 4 processes, wandb.init(id=<same>)", "body": """
import subprocess
child = '''
import sys, wandb
run = wandb.init(project="raw", id="sharedrun", mode="offline", dir="wb",
                 settings=wandb.Settings(silent=True, x_disable_stats=True))
for i in range(500):
    run.log({f"p{sys.argv[1]}": float(i)})
run.finish()
'''
procs = [subprocess.Popen([sys.executable, "-c", child, str(k)]) for k in range(4)]
codes = [p.wait() for p in procs]
rows, files = txlog_rows()
done(rows_logged=2000, rows_wandb=rows, outcome=f"{files} separate offline runs for one id",
     exit_codes=codes)
"""},
    "throughput": {"what": "offline: 20,000 rows in a tight loop", "body": """
import psutil
proc = psutil.Process()
run = wandb.init(project="raw", mode="offline", dir="wb", settings=settings())
base = proc.memory_info().rss
a = time.monotonic()
peak = base
for i in range(20000):
    run.log({"loss": float(i), "lr": 1e-4})
    if i % 500 == 0:
        peak = max(peak, proc.memory_info().rss)
took = time.monotonic() - a
run.finish()
rows, _ = txlog_rows()
done(rows_logged=20000, rows_wandb=rows, log_s=round(took, 2),
     rows_per_s=round(20000 / took), rss_growth_mb=round((peak - base) / 2**20, 1),
     million_rows_minutes=round(1e6 / (20000 / took) / 60, 1),
     outcome=f"{20000 / took:.0f} rows/s: 1M rows take {1e6 / (20000 / took) / 60:.0f} min "
             f"of the training thread")
"""},
    "bad_input": {"what": "offline: log() of str, None, object, dict, list, NaN, 2**70, keys "
                          "'', 'a*b', '_x', 'a\\\\nb'", "body": """
run = wandb.init(project="raw", mode="offline", dir="wb", settings=settings())
cases = {"str": {"v": "text"}, "None": {"v": None}, "object": {"v": object()},
         "dict": {"v": {"a": 1.0}}, "list": {"v": [1.0]}, "nan": {"v": float("nan")},
         "int70": {"v": 2**70}, "empty key": {"": 1.0}, "star key": {"a*b": 1.0},
         "underscore key": {"_x": 1.0}, "newline key": {"a\\nb": 1.0}}
raised = {}
for label, metrics in cases.items():
    try:
        run.log(metrics)
    except BaseException as exc:
        raised[label] = f"{type(exc).__name__}"
try:
    run.define_metric("a*b", step_metric="s")
except BaseException as exc:
    raised["define_metric('a*b')"] = type(exc).__name__
run.finish()
rows, _ = txlog_rows()
done(rows_logged=len(cases), rows_wandb=rows, raised=raised,
     outcome=f"{len(raised)} of {len(cases) + 1} calls raised: {', '.join(raised) or 'none'}")
"""},
    "config_cycle": {"what": "offline: wandb.init(config=<a dict that contains itself>)",
                     "body": """
cfg = {"lr": 0.1}
cfg["self"] = cfg
raised = None
try:
    run = wandb.init(project="raw", mode="offline", dir="wb", config=cfg, settings=settings())
    run.finish()
except BaseException as exc:
    raised = f"{type(exc).__name__}: {str(exc)[:100]}"
done(outcome=f"raised {raised}" if raised else "accepted")
"""},
    "save_escape": {"what": "offline: wandb.save('../outside.txt') and a symlink loop",
                    "body": """
open("../outside.txt", "w").write("x")
os.symlink("loop", "loop")
run = wandb.init(project="raw", mode="offline", dir="wb", settings=settings())
out = {}
for label, path in (("..", "../outside.txt"), ("symlink loop", "loop")):
    try:
        out[label] = "accepted" if run.save(path) else "refused"
    except BaseException as exc:
        out[label] = f"raised {type(exc).__name__}"
run.finish()
done(outcome="; ".join(f"{k}: {v}" for k, v in out.items()))
"""},
    "secrets": {"what": "offline: key in env, api_key/password in config, --token= in argv, "
                        "user:pass@ URL", "argv": ["--token=argvTok3nRaw", "https://u:urlPw7Raw@h.example.com"],
                "env": {"WANDB_API_KEY": "5ec7e70a11ce0ffe1deadbeef0ddba11c0ffee42"}, "body": """
import pathlib
cfg = {"api_key": "cfgKeyRaw9", "password": "cfgPwRaw8",
       "url": "https://alice:cfgUrlPwRaw7@h.example.com/x"}
run = wandb.init(project="raw", mode="offline", dir="wb", config=cfg,
                 settings=wandb.Settings(silent=True, x_disable_stats=True))
run.log({"loss": 1.0})
run.finish()
secrets = {"env WANDB_API_KEY": os.environ["WANDB_API_KEY"], "config api_key": "cfgKeyRaw9",
           "config password": "cfgPwRaw8", "config URL": "cfgUrlPwRaw7",
           "argv --token=": "argvTok3nRaw", "argv URL": "urlPw7Raw"}
files = [p for p in pathlib.Path("wb").rglob("*") if p.is_file()]
found = {k: len([p for p in files if v.encode() in p.read_bytes()]) for k, v in secrets.items()}
leaked = [k for k, n in found.items() if n]
done(secrets_planted=len(secrets), secrets_found=len(leaked), files_scanned=len(files),
     outcome=f"{len(leaked)} of {len(secrets)} secrets on disk: {', '.join(leaked) or 'none'}")
"""},
    "ports_and_modes": {"what": "offline run, umask 0: listening sockets and file modes",
                        "body": """
import psutil, stat, pathlib
os.umask(0)
run = wandb.init(project="raw", mode="offline", dir="wb", settings=settings())
run.log({"loss": 1.0})
procs = [psutil.Process()] + psutil.Process().children(recursive=True)
listen = [c for p in procs for c in p.net_connections(kind="inet")
          if c.status == psutil.CONN_LISTEN]
run.finish()
loose = [str(p) for p in pathlib.Path("wb").rglob("*")
         if stat.S_IMODE(p.lstat().st_mode) & 0o077]
done(listening_sockets=len(listen), processes=len(procs), loose_files=len(loose),
     outcome=f"{len(listen)} listening sockets; {len(loose)} files/folders readable by "
             f"others (umask 0)")
"""},
}


# ---------------------------------------------------------------------- running
def _env(base: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    wb = base / "wandb-home"
    env.update({"WANDB_CONFIG_DIR": str(wb / "config"), "WANDB_DATA_DIR": str(wb / "data"),
                "WANDB_CACHE_DIR": str(wb / "cache"), "WANDB_ARTIFACT_DIR": str(wb / "art"),
                "NETRC": str(wb / "netrc-none"), "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(REPO / "src")})
    env.update(extra)
    return env


def _prefix(case: dict[str, Any], base: Path) -> tuple[list[str], Any]:
    """A read-only folder (chmod for a user, a read-only tmpfs for root), or RLIMIT_FSIZE."""
    if case.get("read_only"):
        ro = base / case["read_only"]
        ro.mkdir()
        if os.geteuid() != 0:
            ro.chmod(0o555)
            return [], None
        if shutil.which("unshare") is None:
            return [], None
        return ["unshare", "-m", "--propagation", "private", "sh", "-c",
                f'mount -t tmpfs -o ro,size=64k none "{ro}" && exec "$@"', "sh"], None
    if case.get("fsize"):
        import resource
        import signal

        def limit() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (case["fsize"], resource.RLIM_INFINITY))
        return [], limit
    return [], None


def run_case(name: str, scratch: Path) -> dict[str, Any]:
    case = CASES[name]
    base = scratch / name
    (base / "cwd").mkdir(parents=True)
    extra = dict(case.get("env") or {})
    server = None
    if case.get("server"):
        server = FaultServer(case["server"], delay=case.get("delay", 5.0), hang=600)
        extra.update({"WANDB_BASE_URL": server.url, "WANDB_API_KEY": FAKE_KEY})
    script = base / "case.py"
    script.write_text(PRELUDE + textwrap.dedent(case["body"]))
    prefix, preexec = _prefix(case, base / "cwd")
    t0 = time.monotonic()
    try:
        proc = subprocess.run([*prefix, sys.executable, str(script), *case.get("argv", [])],
                              cwd=base / "cwd", env=_env(base, extra), capture_output=True,
                              text=True, timeout=300, preexec_fn=preexec,
                              stdin=subprocess.DEVNULL)
        out, err, code = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out, err, code = (exc.stdout or b"").decode(), (exc.stderr or b"").decode(), "timeout"
    finally:
        if server is not None:
            server.close()
    elapsed = time.monotonic() - t0
    result: dict[str, Any] = {"case": name, "what": case["what"], "exit": code,
                              "wall_s": round(elapsed, 2)}
    for line in out.splitlines():
        if line.startswith("RESULT="):
            result.update(json.loads(line[7:]))
    if name == "sigkill_training":
        result.update(_after_sigkill(base / "cwd"))
    if "outcome" not in result:
        result["outcome"] = f"exit {code}: {(err.strip().splitlines() or [''])[-1][:200]}"
    if case.get("server"):
        result["default_timeout_note"] = ("with wandb's default init_timeout of 90 s, "
                                          "init blocks 9x longer")
    return result


def _after_sigkill(cwd: Path) -> dict[str, Any]:
    """Count what the log of a SIGKILLed offline run holds, once wandb-core has exited."""
    from steadyrun.ship.wandb import txlog as wandb_txlog

    files = sorted(cwd.rglob("run-*.wandb"))
    for f in files:
        wandb_txlog.wait_complete(f, timeout=20, require_exit=False)
    rows = sum(len(wandb_txlog.load([f]).history) for f in files)
    return {"rows_logged": 3000, "rows_wandb": rows,
            "outcome": f"{3000 - rows} of 3000 rows lost; the run never finishes "
                       f"(no exit record: {not any(wandb_txlog.has_exit_record(f) for f in files)})"}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated case names")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args()
    names = [n for n in args.only.split(",") if n] or list(CASES)
    scratch = Path(tempfile.mkdtemp(prefix="raw-wandb-"))
    results: dict[str, Any] = {}
    if args.out.exists():
        results = json.loads(args.out.read_text()).get("cases", {})
    try:
        for name in names:
            res = run_case(name, scratch)
            results[name] = res
            print(f"{name:18} {res['wall_s']:7.1f}s  {res['outcome']}", flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    import wandb

    args.out.parent.mkdir(parents=True, exist_ok=True)
    # Each case keeps the date it was measured (an --only run re-measures only its cases).
    today = time.strftime("%Y-%m-%d")
    for name in names:
        results[name]["measured"] = today
    args.out.write_text(json.dumps({"wandb": wandb.__version__, "init_timeout_s": INIT_TIMEOUT,
                                    "machine": f"{os.cpu_count()} cores",
                                    "cases": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
