"""(e) Memory: RSS while logging 10 M rows in local mode (quick: 1 M). It must stay flat.

The process logs rows of 5 scalars (the training loop's row) as fast as it can and
samples its own RSS (psutil) every `every` rows, inline, so the sampler costs nothing
between samples. Reported: RSS at the start (after init and the first rows), the peak,
the end (after flush) and the growth, plus the slope over the second half in MB per
million rows, which is what "flat" means: memory does not grow with history.

The baseline keeps the history in memory the way a naive logger does (a list of the
row dicts): its growth per million rows, measured on a shorter stretch in the same
process after the steadyrun part, shows what "not flat" looks like.

Writes the curve to rss_curve.csv and, when matplotlib is installed, rss_curve.png
(both in --out). The segment file (about 1 GB at 10 M rows) is deleted at the end.
"""

from __future__ import annotations

import csv
import gc
import json
import subprocess

from _common import PY, bench_env, emit, load_note, now, parse_args, row, use_env, workdir

NAIVE = """
import json, sys, psutil
n = int(sys.argv[1])
proc = psutil.Process()
start = proc.memory_info().rss
history = []
for i in range(n):
    history.append({"train/loss": 1.0 / (i + 1), "train/acc": 0.25, "train/lr": 3e-4,
                    "train/grad_norm": 1.5, "perf/samples_per_sec": 1e4, "step": i})
print(json.dumps({"mb_per_m": (proc.memory_info().rss - start) / n}))
"""


def rss_mb(proc) -> float:
    return proc.memory_info().rss / 1e6


def slope(points: list[tuple[int, float]]) -> float:
    """Least-squares MB per million rows."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    sxx = sum((p[0] - mx) ** 2 for p in points)
    sxy = sum((p[0] - mx) * (p[1] - my) for p in points)
    return sxy / sxx * 1e6 if sxx else 0.0


def plot(path, curve: list[tuple[int, float, float]], n_rows: int) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    fig, ax = plt.subplots(figsize=(7, 3.2), dpi=110)
    ax.plot([c[0] / 1e6 for c in curve], [c[2] for c in curve], lw=1.2, color="#1f77b4")
    ax.set_xlabel("rows logged (millions)")
    ax.set_ylabel("RSS (MB)")
    ax.set_title(f"steadyrun run.log, local mode: RSS over {n_rows / 1e6:.0f} M rows")
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def main() -> None:
    args = parse_args(__doc__)
    started = now()
    n_rows = 200_000 if args.smoke else 1_000_000 if args.quick else 10_000_000
    every = 10_000 if args.quick else 50_000
    base = workdir(args, "memory")
    use_env(bench_env(base))
    import psutil

    import steadyrun

    proc = psutil.Process()
    run = steadyrun.init(mode="local", project="bench", name="bench-memory")
    log = run.log
    m = {"train/loss": 0.5, "train/acc": 0.25, "train/lr": 3e-4, "train/grad_norm": 1.5,
         "perf/samples_per_sec": 1e4}
    for _ in range(1000):  # warm-up: the fast path, the writer thread, the heap
        log(m)
    run.flush()
    gc.collect()
    start = rss_mb(proc)
    curve: list[tuple[int, float, float]] = [(0, 0.0, start)]
    t0 = now()
    done = 0
    while done < n_rows:
        for i in range(every):
            log({"train/loss": 1.0 / (done + i + 1), "train/acc": 0.25, "train/lr": 3e-4,
                 "train/grad_norm": 1.5, "perf/samples_per_sec": 1e4})
        done += every
        curve.append((done, now() - t0, rss_mb(proc)))
    run.flush()
    elapsed = now() - t0
    end = rss_mb(proc)
    curve.append((done, now() - t0, end))
    seg_bytes = sum(p.stat().st_size for p in (run.dir / "segments").glob("*.jsonl"))
    run.finish()
    peak = max(c[2] for c in curve)
    second_half = [(c[0], c[2]) for c in curve if c[0] >= n_rows // 2]
    per_m = slope(second_half)

    # Baseline: a history kept in memory, on a shorter stretch, in a fresh process (this
    # one has free heap left from the steadyrun part, which would hide the growth).
    n_naive = 20_000 if args.smoke else 100_000 if args.quick else 500_000
    naive_per_m = json.loads(subprocess.run(
        [PY, "-c", NAIVE, str(n_naive)], capture_output=True, text=True, check=True,
        timeout=300).stdout)["mb_per_m"]
    load = load_note()

    args.out.mkdir(parents=True, exist_ok=True)
    csv_path = args.out / "rss_curve.csv"
    with open(csv_path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rows", "seconds", "rss_mb"])
        for c in curve:
            w.writerow([c[0], f"{c[1]:.3f}", f"{c[2]:.2f}"])
    png = plot(args.out / "rss_curve.png", curve, n_rows)

    growth = peak - start
    rows = [row(
        "e1", f"RSS while logging {n_rows / 1e6:.0f} M rows (local mode, 5 scalars each)",
        f"{start:.0f} → peak {peak:.0f} → end {end:.0f} MB (+{growth:.1f} MB; "
        f"{per_m:+.2f} MB per M rows)",
        f"history in memory: +{naive_per_m:,.0f} MB per M rows",
        f"{naive_per_m * n_rows / 1e6 / max(growth, 1.0):,.0f}× less growth",
        "flat: < 50 MB growth", growth < 50,
        note=f"{n_rows / elapsed:,.0f} rows/s sustained for {elapsed:.0f} s; segment "
             f"{seg_bytes / 1e9:.2f} GB on disk; curve in rss_curve.csv"
             + (" and rss_curve.png" if png else " (no matplotlib: no PNG)")
             + f"; slope over the second half; baseline measured on {n_naive:,} rows",
        start_mb=start, peak_mb=peak, end_mb=end, slope_mb_per_m=per_m,
        naive_mb_per_m=naive_per_m, rows_per_s=n_rows / elapsed, segment_bytes=seg_bytes)]
    emit(args, rows, started, load=load, cleanup=base)


if __name__ == "__main__":
    main()
