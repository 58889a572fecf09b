"""(a) The cost of `run.log` on the training thread, against raw `wandb.log` and the floor.

In one process: a steadyrun run in local mode, a steadyrun run in offline mode (its
sidecar process running and shipping to W&B offline files), a raw wandb run (offline,
silent, no stats), and two floors: appending the dict to a list, and orjson plus a
buffered file write. Every round times one batch of calls of each variant, in a
rotating order so that drift and background work fall on all of them alike; a
variant's figure is the median of its per-batch mean cost per call.

The per-call figure is what the training thread pays, including the time the
steadyrun writer thread holds the GIL while it encodes. The amortised figure adds
everything left: N calls, then `flush()` (encode, write and fsync of all N rows) on
the caller, divided by N; its floor is orjson plus buffered write plus one fsync.
"""

from __future__ import annotations

import gc
import os
import time

import orjson
from _common import (
    bench_env,
    emit,
    fmt_us,
    fmt_x,
    load_note,
    median,
    now,
    parse_args,
    quantiles,
    row,
    use_env,
    wandb_init,
    workdir,
)


def make_metrics(n: int) -> dict[str, float]:
    return {f"train/metric_{i:03d}": 0.001 * (i + 1) for i in range(n)}


def per_call(fns: dict[str, tuple], rounds: int) -> dict[str, list[float]]:
    """{name: (fn, batch)} -> per-call µs of each batch, variants interleaved per round."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    pc = time.perf_counter_ns
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn, batch = fns[name]
            t0 = pc()
            for _ in range(batch):
                fn()
            out[name].append((pc() - t0) / batch / 1000)
    return out


def main() -> None:
    args = parse_args(__doc__)
    started = now()
    quick = args.quick
    base = workdir(args, "log")
    use_env(bench_env(base))

    import wandb

    import steadyrun

    sr_local = steadyrun.init(mode="local", project="bench", name="bench-log-local")
    sr_off = steadyrun.init(mode="offline", project="bench", name="bench-log-offline")
    wb = wandb_init(name="bench-log-raw")

    sizes = (10, 100)
    rounds = 12 if quick else 60
    results: dict[int, dict[str, dict]] = {}
    floor_file = open(base / "floor.jsonl", "wb", buffering=1 << 16)  # noqa: SIM115
    dumps = orjson.dumps
    fwrite = floor_file.write
    for n in sizes:
        d = make_metrics(n)
        # First calls take the slow path (new keys); the rest the fast path.
        for r in (sr_local, sr_off):
            r.log(d)
            r.log(d)
        wb.log(d)
        sink: list = []
        sr_batch = 200 if quick else 500
        wb_batch = 10 if quick else 20
        off_batch = 100 if quick else 200  # bounded: the sidecar must ship all of them

        def floor_list(d=d, append=sink.append):
            append(d)

        def floor_orjson(d=d):
            fwrite(dumps(d) + b"\n")

        fns = {
            "steadyrun_local": (lambda d=d: sr_local.log(d), sr_batch),
            "steadyrun_offline": (lambda d=d: sr_off.log(d), off_batch),
            "wandb": (lambda d=d: wb.log(d), wb_batch),
            "floor_list": (floor_list, sr_batch),
            "floor_orjson_write": (floor_orjson, sr_batch),
        }
        samples = per_call(fns, rounds)
        sink.clear()
        results[n] = {name: quantiles(xs) for name, xs in samples.items()}

    # Amortised: N calls then flush() on the caller, median of a few repeats. CPU time of
    # the whole process (training and writer threads), so the machine's other load is
    # left out; wall time is kept beside it for the record.
    amort: dict[int, dict[str, float]] = {}
    n_calls = 10_000 if quick else 50_000
    reps = 3 if quick else 5
    cpu = time.process_time
    for n in sizes:
        d = make_metrics(n)
        sr_c, sr_w, fl_c, fl_w = [], [], [], []
        for _ in range(reps):
            gc.collect()
            sr_local.flush()
            w0, c0 = now(), cpu()
            for _ in range(n_calls):
                sr_local.log(d)
            sr_local.flush()
            sr_c.append((cpu() - c0) / n_calls * 1e6)
            sr_w.append((now() - w0) / n_calls * 1e6)
            floor_file.flush()
            w0, c0 = now(), cpu()
            for _ in range(n_calls):
                fwrite(dumps(d) + b"\n")
            floor_file.flush()
            os.fsync(floor_file.fileno())
            fl_c.append((cpu() - c0) / n_calls * 1e6)
            fl_w.append((now() - w0) / n_calls * 1e6)
        amort[n] = {"steadyrun_cpu": median(sr_c), "floor_cpu": median(fl_c),
                    "steadyrun_wall": median(sr_w), "floor_wall": median(fl_w)}
    floor_file.close()
    load = load_note()

    # Wind down outside every timed region: the sidecar ships what it was given.
    t0 = now()
    sr_off.finish(timeout=300)
    drain_s = now() - t0
    sr_local.finish()
    wb.finish()
    wandb.teardown()

    rows = []
    for i, n in enumerate(sizes):
        res = results[n]
        sr_l = res["steadyrun_local"]["median"]
        sr_o = res["steadyrun_offline"]["median"]
        w = res["wandb"]["median"]
        target = "≤ 5 µs and ≥ 35× faster than wandb.log" if n == 10 else "—"
        met_l = (sr_l <= 5 and w / sr_l >= 35) if n == 10 else None
        met_o = (sr_o <= 5 and w / sr_o >= 35) if n == 10 else None
        rows.append(row(
            f"a{2 * i + 1}", f"run.log, {n} scalars, local mode: per call on the training "
                             f"thread (median)",
            fmt_us(sr_l), f"wandb.log {fmt_us(w)}", fmt_x(w / sr_l, "faster"), target, met_l,
            note=f"median of {rounds} interleaved batches; p25–p75 steadyrun "
                 f"{res['steadyrun_local']['p25']:.2f}–"
                 f"{res['steadyrun_local']['p75']:.2f} µs, wandb "
                 f"{res['wandb']['p25']:.0f}–{res['wandb']['p75']:.0f} µs",
            samples=res))
        rows.append(row(
            f"a{2 * i + 2}", f"run.log, {n} scalars, offline mode with the sidecar shipping "
                             f"(median)",
            fmt_us(sr_o), f"wandb.log {fmt_us(w)}", fmt_x(w / sr_o, "faster"), target, met_o,
            note=f"p25–p75 {res['steadyrun_offline']['p25']:.2f}–"
                 f"{res['steadyrun_offline']['p75']:.2f} µs; the sidecar process drained "
                 f"the rows in {drain_s:.1f} s after the measurement (not timed)",
            sidecar_drain_s=drain_s))
    r10 = results[10]
    sr10 = r10["steadyrun_local"]["median"]
    rows.append(row(
        "a5", "run.log, 10 scalars, local, against the floor: dict appended to a list",
        fmt_us(sr10), f"list.append {fmt_us(r10['floor_list']['median'])}",
        fmt_x(sr10 / r10["floor_list"]["median"], "the floor"),
        note="the floor is the least any in-process logger can cost"))
    rows.append(row(
        "a6", "run.log, 10 scalars, local, against the floor: orjson + buffered write",
        fmt_us(sr10), f"orjson+write {fmt_us(r10['floor_orjson_write']['median'])}",
        fmt_x(sr10 / r10["floor_orjson_write"]["median"], "the floor"),
        note="steadyrun keeps the encode off the training thread, so it can beat this floor "
             "per call; see a7/a8 for the amortised cost"))
    for j, n in enumerate(sizes):
        a = amort[n]
        rows.append(row(
            f"a{7 + j}", f"run.log, {n} scalars, amortised: CPU of N calls + flush() (encode, "
                         f"write, fsync: both threads) ÷ N",
            fmt_us(a["steadyrun_cpu"]), f"orjson+write+fsync {fmt_us(a['floor_cpu'])}",
            fmt_x(a["steadyrun_cpu"] / a["floor_cpu"], "the floor"),
            note=f"N = {n_calls:,}, median of {reps}, process CPU time; wall time "
                 f"{fmt_us(a['steadyrun_wall'])} vs {fmt_us(a['floor_wall'])} on this "
                 f"(shared) machine", amortised=a))
    emit(args, rows, started, load=load, cleanup=base)


if __name__ == "__main__":
    main()
