"""(p) steadyrun against its peers, every system measured alone in its own fresh process.

Systems: steadyrun in local mode; steadyrun in offline mode (its sidecar process ships
every row to W&B offline files); raw wandb (offline, silent, no stats); Trackio (its
local SQLite database); tensorboardX (an event file); MLflow with a SQLite store and
with a file store; DVCLive. A system that is not installed gets a row saying so.

Each measurement is one fresh `python` child running exactly one system, under a
scratch folder that holds every store (nothing reaches a network). The child times:

  import + init   from before `import <system>` to the moment its run is ready to log
                  (bytecode cached, as for any installed package: one unmeasured
                  warm-up child per system fills a private cache first)
  per call        N calls that log the same dict of K scalars (the same keys and values
                  for every system, and the same N for every system unless the table
                  says otherwise), in batches; the figure is the median of the per-batch
                  mean wall time per call (about 40 batches), on the calling thread. Two first calls (new
                  keys) come before and are left out. The calling thread's own CPU time
                  per call is kept beside it: wall time above it is waiting
  durable end     from the last call until the system says its files are complete:
                  steadyrun `run.finish()` (in offline mode that waits for the sidecar
                  to ship every row and close the W&B run), `wandb.finish()`,
                  `trackio.finish()`, tensorboardX `writer.close()`, MLflow
                  `end_run()`, DVCLive `live.end()`

What one call is, per system (10 scalars: K = 10):
  steadyrun   run.log(d)                      wandb     run.log(d)
  trackio     trackio.log(d)                  mlflow    mlflow.log_metrics(d, step=i)
  tensorboardX  writer.add_scalar(k, v, i) for each of the K keys
  dvclive     live.log_metric(k, v) for each key, then live.next_step()

The coordinator runs the children one at a time and waits until every process a child
started (wandb-core, the sidecar) has exited before the next one starts, so no system is
ever timed while another competes for the CPU. Repetitions go round-robin over the
systems, the order rotated each repetition; a figure is the median over repetitions,
with the range (min–max). A ratio is the peer's per-call cost over steadyrun local's
in the same repetition: the median of those paired ratios, with their range. The
machine's other load is not ours to stop: each row keeps the load average beside it.

Full: 10,000 calls (500 for the peers that cost milliseconds a call), 5 repetitions,
about 5 minutes on 2 busy CPUs; --quick: 2,000 and 200 calls, 2 repetitions. The script
fails (exit 1, the rows marked failed by run_all.py) when a child fails, or when steadyrun
offline's finish() returned before its sidecar had shipped every row.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

from _common import (
    PY,
    bench_env,
    emit,
    fmt_ms,
    fmt_us,
    fmt_x,
    load_note,
    median,
    now,
    parse_args,
    row,
    spread,
    workdir,
)

# (id, system, module that must be importable, what one call is)
SYSTEMS: list[tuple[str, str, str, str]] = [
    ("p1", "steadyrun_local", "steadyrun", "run.log(d)"),
    ("p2", "steadyrun_offline", "steadyrun", "run.log(d), sidecar shipping to W&B offline files"),
    ("p3", "wandb", "wandb", "run.log(d), offline"),
    ("p4", "trackio", "trackio", "trackio.log(d), local database"),
    ("p5", "tensorboardx", "tensorboardX", "writer.add_scalar(k, v, step) per key"),
    ("p6", "mlflow_sqlite", "mlflow", "mlflow.log_metrics(d, step=i), SQLite store"),
    ("p7", "mlflow_file", "mlflow", "mlflow.log_metrics(d, step=i), file store"),
    ("p8", "dvclive", "dvclive", "live.log_metric(k, v) per key + live.next_step()"),
]
LABEL = {"steadyrun_local": "steadyrun local", "steadyrun_offline": "steadyrun offline",
         "wandb": "wandb offline", "trackio": "Trackio", "tensorboardx": "tensorboardX",
         "mlflow_sqlite": "MLflow (SQLite store)", "mlflow_file": "MLflow (file store)",
         "dvclive": "DVCLive"}

# The child: stdlib only before the timed import, one system, one JSON line out.
CHILD = textwrap.dedent('''
    import gc, json, os, sys, time
    system, n_calls, n_keys, batch, store = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \\
        int(sys.argv[4]), sys.argv[5]
    d = {f"train/metric_{i:03d}": 0.001 * (i + 1) for i in range(n_keys)}
    items = list(d.items())
    pc = time.perf_counter
    extra = {}

    t0 = pc()
    if system.startswith("steadyrun"):
        import steadyrun
        t1 = pc()
        run = steadyrun.init(mode=system.split("_")[1], project="bench", name="bench-peers")
        log = run.log
        def call(i):
            log(d)
        def end():
            run.finish(timeout=600)
        def after():
            if system.endswith("offline"):
                import pathlib
                cur = pathlib.Path(run.dir, "sinks", "wandb.cursor")
                extra["shipped_rows"] = json.loads(cur.read_bytes()).get("rows")
    elif system == "wandb":
        import wandb
        t1 = pc()
        run = wandb.init(project="bench", name="bench-peers", settings=wandb.Settings(
            mode="offline", silent=True, console="off", save_code=False, disable_code=True,
            disable_git=True, x_disable_meta=True, x_disable_stats=True,
            x_save_requirements=False, disable_job_creation=True))
        log = run.log
        def call(i):
            log(d)
        def end():
            run.finish()
        def after():
            wandb.teardown()
    elif system == "trackio":
        import trackio
        t1 = pc()
        trackio.init(project="bench", name=f"bench-peers-{os.getpid()}", auto_log_gpu=False,
                     auto_log_cpu=False, embed=False)
        log = trackio.log
        def call(i):
            log(d)
        def end():
            trackio.finish()
        def after():
            pass
    elif system == "tensorboardx":
        from tensorboardX import SummaryWriter
        t1 = pc()
        writer = SummaryWriter(logdir=os.path.join(store, f"tb-{os.getpid()}"))
        add = writer.add_scalar
        def call(i):
            for k, v in items:
                add(k, v, i)
        def end():
            writer.close()
        def after():
            pass
    elif system.startswith("mlflow"):
        import mlflow
        t1 = pc()
        if system == "mlflow_sqlite":
            mlflow.set_tracking_uri("sqlite:///" + os.path.join(store, "mlflow.db"))
        else:
            mlflow.set_tracking_uri("file://" + os.path.join(store, "mlruns"))
        mlflow.set_experiment("bench")
        mlflow.start_run(run_name="bench-peers")
        log_metrics = mlflow.log_metrics
        def call(i):
            log_metrics(d, step=i)
        def end():
            mlflow.end_run()
        def after():
            pass
    elif system == "dvclive":
        from dvclive import Live
        t1 = pc()
        live = Live(dir=os.path.join(store, f"dvclive-{os.getpid()}"), save_dvc_exp=False,
                    dvcyaml=None, report=None)
        log_metric, next_step = live.log_metric, live.next_step
        def call(i):
            for k, v in items:
                log_metric(k, v)
            next_step()
        def end():
            live.end()
        def after():
            pass
    elif system == "floor_list":  # the floors of bench_log.py: no logger at all
        sink = []
        append = sink.append
        t1 = pc()
        def call(i):
            append(d)
        def end():
            sink.clear()
        def after():
            pass
    elif system == "floor_orjson":
        import orjson
        t1 = pc()
        fh = open(os.path.join(store, f"floor-{os.getpid()}.jsonl"), "wb", buffering=1 << 16)
        dumps, write = orjson.dumps, fh.write
        def call(i):
            write(dumps(d) + b"\\n")
        def end():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        def after():
            os.remove(fh.name)
    else:
        raise SystemExit(f"unknown system {system}")
    t2 = pc()

    # The harness alone: the same loop and wrapper, calling nothing.
    def nothing(i):
        pass
    h0 = pc()
    for i in range(batch):
        nothing(i)
    harness_us = (pc() - h0) / batch * 1e6

    f0 = pc()
    call(0)
    call(1)
    first_us = (pc() - f0) / 2 * 1e6
    per_batch = []
    i = 2
    done = 0
    c0 = time.thread_time()
    while done < n_calls:
        b = min(batch, n_calls - done)
        s = pc()
        for j in range(i, i + b):
            call(j)
        per_batch.append((pc() - s) / b * 1e6)
        i += b
        done += b
    thread_cpu_us = (time.thread_time() - c0) / n_calls * 1e6
    e0 = pc()
    end()
    e1 = pc()
    after()
    cpu = os.times()
    per_batch.sort()
    print(json.dumps({"import_s": t1 - t0, "init_s": t2 - t1, "first_us": first_us,
                      "per_call_us": per_batch[len(per_batch) // 2] if len(per_batch) % 2
                      else (per_batch[len(per_batch) // 2 - 1] + per_batch[len(per_batch) // 2]) / 2,
                      "batches": per_batch, "end_s": e1 - e0, "calls": n_calls,
                      "keys": n_keys, "harness_us": harness_us, "thread_cpu_us": thread_cpu_us,
                      "cpu_s": cpu.user + cpu.system, **extra}))
''')


# The peers that cost milliseconds per call get fewer calls (the full N would take
# minutes); steadyrun local is measured at that N too, for their ratios.
SLOW = {"tensorboardx", "mlflow_sqlite", "mlflow_file", "dvclive"}
SMALL = "steadyrun_local_small"


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def settle(sid: int, limit: float = 60.0) -> float:
    """Wait until no process of session `sid` (the child's) is left; seconds waited.

    The child ends its system before it exits, but a helper it started (wandb-core,
    steadyrun's sidecar) can outlive it by a moment: the next system must not share
    the CPU with it.
    """
    import psutil

    t0 = now()
    while now() - t0 < limit:
        left = []
        for p in psutil.process_iter(["pid"]):
            try:
                if os.getsid(p.info["pid"]) == sid:
                    left.append(p)
            except (ProcessLookupError, PermissionError, OSError):
                pass
        if not left:
            return now() - t0
        time.sleep(0.05)
    return now() - t0


def measure(system: str, n_calls: int, n_keys: int, batch: int, store: Path,
            env: dict[str, str], timeout: float) -> dict[str, Any]:
    store.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([PY, "-c", CHILD, system, str(n_calls), str(n_keys), str(batch),
                             str(store)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            cwd=store)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.communicate()
        raise RuntimeError(f"{system}: no result within {timeout:.0f} s") from None
    lingered = settle(proc.pid)
    if proc.returncode != 0:
        raise RuntimeError(f"{system} exited {proc.returncode}:\n{err[-3000:]}")
    res = json.loads(out.strip().splitlines()[-1])
    res["lingered_s"] = lingered
    return res



def table(res: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per system; ratios paired with steadyrun local at the same N."""
    rows: list[dict[str, Any]] = []
    local = res.get("steadyrun_local", [])
    by_n = {x["calls"]: xs for xs in (local, res.get(SMALL, [])) if xs for x in xs[:1]}
    for rid, name, module, what in SYSTEMS:
        label = LABEL[name]
        bench = f"{label}, 10 scalars: {what}; per call, import + init, durable end"
        if name not in res:
            rows.append(row(rid, bench, "—", f"skipped: {module} is not installed",
                            note="pip install -e '.[bench]' installs every peer"))
            continue
        xs = res[name]
        n = xs[0]["calls"]
        calls = [x["per_call_us"] for x in xs]
        start = [(x["import_s"] + x["init_s"]) * 1e3 for x in xs]
        end = [x["end_s"] * 1e3 for x in xs]
        figures = (f"{spread(calls, fmt_us)} per call; import + init {spread(start, fmt_ms)}; "
                   f"durable end {spread(end, fmt_ms)}")
        note = (f"N = {n:,} calls (+2 first calls, left out), {len(xs)} repetitions, a fresh "
                f"process each; import {fmt_ms(median(x['import_s'] * 1e3 for x in xs))}, "
                f"init {fmt_ms(median(x['init_s'] * 1e3 for x in xs))}; the 2 first calls "
                f"{fmt_us(median(x['first_us'] for x in xs))} each; the harness alone (loop "
                f"and wrapper) {fmt_us(median(x['harness_us'] for x in xs))} per call; CPU "
                f"of the calling thread {fmt_us(median(x['thread_cpu_us'] for x in xs))} per "
                f"call (the rest of the wall time it waited: for a helper thread or process, "
                f"the GIL, the disk, or the machine's other load)")
        data = {"system": name, "calls": n, "per_call_us": calls, "import_init_ms": start,
                "durable_end_ms": end, "raw": xs}
        if name == "steadyrun_local":
            small = res.get(SMALL, [])
            if small:
                note += (f"; at N = {small[0]['calls']:,} (the baseline of the peers measured "
                         f"at that N): {spread([x['per_call_us'] for x in small], fmt_us)}")
                data["small"] = small
            rows.append(row(rid, bench, figures, "—", note=note, **data))
            continue
        base = by_n.get(n)
        if not base:
            rows.append(row(rid, bench, figures if name.startswith("steadyrun") else "—",
                            "—" if name.startswith("steadyrun") else figures, note=note, **data))
            continue
        paired = [x["per_call_us"] / b["per_call_us"] for x, b in zip(xs, base, strict=True)]
        ratio = median(paired)
        sr = f"steadyrun local {spread([b['per_call_us'] for b in base], fmt_us)} per call"
        if name == "steadyrun_offline":
            shipped = min(x.get("shipped_rows") or 0 for x in xs)
            note += (f"; durable end = finish(), which waits for the sidecar to ship every "
                     f"row (at least {shipped:,} shipped per run) and close the W&B run")
            rows.append(row(rid, bench, figures, sr,
                            f"{ratio:.2f}× local ({min(paired):.2f}–{max(paired):.2f})",
                            note=note, paired_ratios=paired, **data))
            continue
        rows.append(row(rid, bench, f"{sr} (N = {n:,})", figures,
                        f"{fmt_x(ratio)} steadyrun's cost ({fmt_x(min(paired))}–"
                        f"{fmt_x(max(paired))})", note=note, paired_ratios=paired, **data))
    return rows


def main() -> None:
    args = parse_args(__doc__, lambda p: p.add_argument(
        "--reps", type=int, default=0, help="repetitions per system (default: 5; quick: 2)"))
    started = now()
    quick = args.quick
    reps = args.reps or (1 if args.smoke else 2 if quick else 5)
    # The same N for every system, so that none is measured on a shorter or longer run
    # than another (a queue that grows, a file that gets longer); the peers that cost
    # milliseconds per call get fewer calls (SLOW), and so does a second steadyrun.
    # About 5 min in full on 2 busy CPUs (load 4): at 20,000 and 1,000 calls it took 10.
    n_full = 300 if args.smoke else 2_000 if quick else 10_000
    n_slow = 50 if args.smoke else 200 if quick else 500
    base = workdir(args, "peers")
    env = bench_env(base, PYTHONDONTWRITEBYTECODE=None,
                    PYTHONPYCACHEPREFIX=str(base / "pycache"),
                    TRACKIO_DIR=str(base / "trackio"), HF_HOME=str(base / "hf"),
                    HF_HUB_OFFLINE="1", DO_NOT_TRACK="1", GRADIO_ANALYTICS_ENABLED="False",
                    MLFLOW_ENABLE_TELEMETRY="false", MLFLOW_DISABLE_TELEMETRY="true",
                    DVC_NO_ANALYTICS="1", DVCLIVE_OPEN="false",
                    MLFLOW_ALLOW_FILE_STORE="true")
    present = [s for s in SYSTEMS if installed(s[2])]
    names = [s[1] for s in present]
    # (key, system, N): steadyrun local is measured at both sizes, so that every peer's
    # ratio pairs it with steadyrun at the same number of calls in the same repetition.
    plan = [(name, name, n_slow if name in SLOW else n_full) for name in names]
    if "steadyrun_local" in names and SLOW.intersection(names):
        plan.insert(1, (SMALL, "steadyrun_local", n_slow))

    def batch_for(n: int) -> int:
        return max(10, n // 40)

    # Warm-up: one small unmeasured child per system fills the bytecode cache and creates
    # each system's store (the measured children then start a new run in an existing store).
    for name in names:
        measure(name, 50, 10, 10, base / "stores" / name, env, timeout=300)
    load0 = load_note()
    res: dict[str, list[dict[str, Any]]] = {key: [] for key, _, _ in plan}
    for r in range(reps):
        k = r % len(plan)
        for key, name, n in plan[k:] + plan[:k]:
            res[key].append(measure(name, n, 10, batch_for(n), base / "stores" / name, env,
                                    timeout=600))
    load = f"{load0} before, {load_note()} after"
    for x in res.get("steadyrun_offline", []):  # the durable end must mean what it says
        if (x.get("shipped_rows") or 0) < x["calls"] + 2:
            raise SystemExit(f"steadyrun offline: finish() returned with "
                             f"{x.get('shipped_rows')} of {x['calls'] + 2} rows shipped")
    rows = table(res)
    emit(args, rows, started, load=load, cleanup=base)


if __name__ == "__main__":
    main()
