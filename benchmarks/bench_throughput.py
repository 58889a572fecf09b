"""(c) Sustained rows/s into the local log, and rows/s the sidecar ships to W&B offline files.

Local: N rows of 10 scalars through `run.log` as fast as the caller can go, then
`flush()` (encoded, written, fsynced); against raw `wandb.log` of the same dicts, then
`finish()` (its rows in its file), and the floor (orjson plus a buffered write, then
fsync). Each is timed alone in a fresh process of its own, the three alternating over
repetitions (until b8771f0 all three shared one process, with wandb-core running
beside the steadyrun writer).

Shipping: a run of R rows is written in local mode first (no sidecar). Then
`steadyrun sync RUN --mode offline` ships it in a fresh process, timed from start to
exit (import wandb, W&B init, every row, finish) and the rows counted from the cursor
(sinks/wandb.cursor). The baseline is a fresh process doing what any W&B user's script
does with the same rows: import wandb, init offline, wandb.log of every row, finish.
Both processes (and their wandb-core children) are sampled for RSS: the (e) row on
the sidecar's memory comes from here.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

from _common import (
    PY,
    bench_env,
    child_json,
    emit,
    fmt_mb,
    fmt_rate,
    fmt_x,
    load_note,
    median,
    now,
    parse_args,
    row,
    use_env,
    workdir,
)

KEYS = [f"train/metric_{i:02d}" for i in range(8)] + ["perf/samples_per_sec", "perf/lr"]


def metrics(i: int) -> dict[str, float]:
    return {k: (i % 1000) * 0.001 + j for j, k in enumerate(KEYS)}


class RssSampler:
    """Peak and curve of the RSS of a process and its children, every `every` seconds."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        import psutil

        self.proc = psutil.Process(pid)
        self.every = every
        self.samples: list[tuple[float, float, float]] = []  # (t, main MB, children MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                main = self.proc.memory_info().rss / 1e6
                kids = sum(c.memory_info().rss for c in self.proc.children(recursive=True)) / 1e6
            except Exception:  # the process ended between two calls
                break
            self.samples.append((time.monotonic() - t0, main, kids))
            self._stop.wait(self.every)

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        if not self.samples:
            return {"main_peak": 0.0, "children_peak": 0.0, "total_peak": 0.0}
        return {"main_peak": max(s[1] for s in self.samples),
                "children_peak": max(s[2] for s in self.samples),
                "total_peak": max(s[1] + s[2] for s in self.samples),
                "main_median": median(s[1] for s in self.samples)}


def timed_process(cmd: list[str], env: dict[str, str]) -> tuple[float, float, dict[str, float]]:
    """(wall seconds, CPU seconds of it and the children it waited for, RSS peaks)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = now()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sampler = RssSampler(proc.pid)
    out, _ = proc.communicate(timeout=900)
    wall = now() - t0
    rss = sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} exited {proc.returncode}:\n{out.decode(errors='replace')}")
    return wall, cpu, rss


# c1: one system in a fresh process: rows/s until its rows are written (and fsynced).
LOCAL_RATE = textwrap.dedent("""
    import os, sys, time
    import orjson
    from bench_throughput import metrics
    which, n, base = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    ds = [metrics(i) for i in range(1000)]
    now = time.perf_counter
    if which == "steadyrun":
        import steadyrun
        run = steadyrun.init(mode="local", project="bench", name="bench-rows-local")
        log = run.log
        for d in ds[:3]:
            log(d)
        run.flush()
        t0 = now()
        for i in range(n):
            log(ds[i % 1000])
        run.flush()
        t = now() - t0
        run.finish()
    elif which == "wandb":
        import wandb
        from _common import wandb_init
        run = wandb_init(name="bench-rows-raw")
        for d in ds[:3]:
            run.log(d)
        t0 = now()
        for i in range(n):
            run.log(ds[i % 1000])
        run.finish()
        t = now() - t0
        wandb.teardown()
    else:
        path = os.path.join(base, f"floor-{os.getpid()}.jsonl")
        with open(path, "wb", buffering=1 << 16) as fh:
            dumps = orjson.dumps
            t0 = now()
            for i in range(n):
                fh.write(dumps(ds[i % 1000]) + b"\\n")
            fh.flush()
            os.fsync(fh.fileno())
            t = now() - t0
        os.remove(path)
    print(orjson.dumps({"rate": n / t}).decode())
""")

RAW_WANDB = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {here!r})
    from _common import wandb_init
    import wandb
    from bench_throughput import metrics
    n = int(sys.argv[1])
    run = wandb_init(name="bench-raw-rows")
    for i in range(n):
        run.log(metrics(i))
    run.finish()
    wandb.teardown()
""")


def main() -> None:
    args = parse_args(__doc__)
    started = now()
    quick = args.quick
    base = workdir(args, "throughput")
    env = bench_env(base)
    use_env(env)
    import steadyrun

    # ------------------------------------------------------------ local rows/s
    # Fresh processes, one system each, alternating; the rows are the same 1,000 dicts.
    n_local = 20_000 if quick else 300_000
    n_wandb = 500 if quick else 3_000
    reps = 2 if quick else 3
    here = str(Path(__file__).resolve().parent)
    child_env = {**env, "PYTHONPATH": here}
    rates: dict[str, list[float]] = {"steadyrun": [], "wandb": [], "floor": []}
    sizes = {"steadyrun": n_local, "wandb": n_wandb, "floor": n_local}
    order = list(rates)
    for r in range(reps):
        for which in order[r % 3:] + order[:r % 3]:
            out = child_json([PY, "-c", LOCAL_RATE, which, str(sizes[which]), str(base)],
                             child_env, timeout=600)
            rates[which].append(out["rate"])
    local = {k: median(v) for k, v in rates.items()}

    # ------------------------------------------------------------ shipping rows/s
    # Alternating fresh processes: sync of the pre-written run, then the raw script.
    n_ship = 3_000 if quick else 20_000
    ship_reps = 1 if quick else 2
    run = steadyrun.init(mode="local", project="bench", name="bench-ship")
    for i in range(n_ship):
        run.log(metrics(i))
    run.finish()
    rdir = run.dir
    root = rdir.parent.parent
    ship: list[dict[str, Any]] = []
    raw: list[dict[str, Any]] = []
    for _ in range(ship_reps):
        shutil.rmtree(rdir / "sinks", ignore_errors=True)  # ship it all again, from scratch
        (rdir / "sinks").mkdir()
        wall, cpu, rss = timed_process(
            [PY, "-m", "steadyrun", "--dir", str(root), "sync", run.id, "--mode", "offline",
             "--quiet"], env)
        shipped = int(json.loads((rdir / "sinks" / "wandb.cursor").read_bytes())["rows"])
        ship.append({"wall": wall, "cpu": cpu, "rss": rss, "rows": shipped,
                     "rate": shipped / wall})
        wall, cpu, rss = timed_process([PY, "-c", RAW_WANDB.format(here=here), str(n_ship)],
                                       {**env, "PYTHONPATH": here})
        raw.append({"wall": wall, "cpu": cpu, "rss": rss, "rows": n_ship, "rate": n_ship / wall})
    load = load_note()
    ship_rate = median(x["rate"] for x in ship)
    raw_rate = median(x["rate"] for x in raw)
    shipped = min(x["rows"] for x in ship)
    ship_cpu = median(x["cpu"] / x["rows"] * 1e6 for x in ship)
    raw_cpu = median(x["cpu"] / x["rows"] * 1e6 for x in raw)
    ship_rss = {k: max(x["rss"][k] for x in ship) for k in ("main_peak", "children_peak")}
    raw_rss = {k: max(x["rss"][k] for x in raw) for k in ("main_peak", "children_peak")}

    rows: list[dict[str, Any]] = [
        row("c1", "rows/s sustained into the local log (10 scalars; until flush() returns)",
            fmt_rate(local["steadyrun"]), f"wandb.log {fmt_rate(local['wandb'])}",
            fmt_x(local["steadyrun"] / local["wandb"], "more"),
            note=f"{n_local:,} rows per repeat (wandb {n_wandb:,}, then finish()), median of "
                 f"{reps}, each system alone in a fresh process, alternating; the "
                 f"floor (orjson + buffered write + fsync) does {fmt_rate(local['floor'])} "
                 f"({local['steadyrun'] / local['floor']:.2f}× of it)", rates=rates),
        row("c2", "rows/s shipped by the sidecar to W&B offline files "
                  "(`steadyrun sync RUN --mode offline`)",
            fmt_rate(ship_rate), f"raw wandb.log script {fmt_rate(raw_rate)}",
            fmt_x(ship_rate / raw_rate, "of raw wandb"),
            note=f"{shipped:,} of {n_ship:,} rows shipped (cursor); fresh processes timed start "
                 f"to exit, W&B init and finish included, median of {ship_reps} alternating; "
                 f"CPU per row (python + wandb-core): sidecar {ship_cpu:,.0f} µs, raw "
                 f"{raw_cpu:,.0f} µs. wandb.log is the ceiling of any W&B shipper",
            shipped=shipped, written=n_ship, ship=ship, raw=raw),
        row("e2", f"RSS of the sidecar while it ships a {n_ship:,}-row run (peak)",
            f"{fmt_mb(ship_rss['main_peak'])} (+ wandb-core {fmt_mb(ship_rss['children_peak'])})",
            f"raw wandb script {fmt_mb(raw_rss['main_peak'])} (+ wandb-core "
            f"{fmt_mb(raw_rss['children_peak'])})",
            fmt_x(ship_rss["main_peak"] / raw_rss["main_peak"], "of raw wandb"),
            note="sampled every 0.1 s; the sidecar reads at most 4 MiB of records per batch, "
                 "so its memory does not grow with the run", sidecar=ship_rss, raw=raw_rss),
    ]
    emit(args, rows, started, load=load, cleanup=base)


if __name__ == "__main__":
    main()
