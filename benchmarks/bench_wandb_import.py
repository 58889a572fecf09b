"""(w) Reading a big W&B run: `steadyrun import` and `steadyrun doctor` on 1 M history rows.

The data, written once per benchmark run by raw `wandb` (offline, the settings of
_common.wandb_settings) in a child process: N rows (1,000,000; quick: 100,000; smoke:
5,000) of `train/loss`, `train/lr`, `train/grad_norm`, every 1,000th row instead
`epoch`, `val/loss`, `val/acc` with `define_metric("val/*", step_metric="epoch")`, a
nested config and one summary value. Raw wandb.log is the slow part (about 6 minutes
for 1 M rows on 2 cores): its time is reported in the notes. A small run of 5,000 rows
is written too, as the reference for "flat memory".

  w1  `import_runs([folder], root)` (what `steadyrun import` runs) in a fresh process
      each, into an empty root: wall seconds of the import (imports of the modules
      excluded) and the peak RSS (ru_maxrss) of the largest process (a big log is read
      by one process per core, importer/parallel.py), beside the same for the
      5,000-row run; median and range of 3 repetitions (quick: 2, smoke: 1)
  w2  `steadyrun.doctor.diagnose` (the doctor's entry point) on the same folder,
      measured the same way; written as "not measured: doctor not built" while the
      doctor package has no such function

Target (issue 16): 10 s or less for 1 M rows, memory flat (the peak RSS of the 1 M-row
import close to the 5,000-row one's).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from _common import (
    PY,
    bench_env,
    emit,
    fmt_mb,
    fmt_s,
    load_note,
    median,
    now,
    parse_args,
    row,
    spread,
    workdir,
)

MAKE = textwrap.dedent('''
    import json, sys, time
    sys.path.insert(0, sys.argv[2])
    from _common import wandb_init
    n = int(sys.argv[1])
    t0 = time.perf_counter()
    run = wandb_init(config={"lr": 1e-3, "model": {"depth": 4}}, name="big")
    run.define_metric("epoch")
    run.define_metric("val/*", step_metric="epoch")
    log = run.log
    for i in range(n):
        if i % 1000 == 999:
            log({"epoch": i // 1000, "val/loss": 1.0 / (i + 1), "val/acc": i / n})
        else:
            log({"train/loss": 1.0 / (i + 1), "train/lr": 1e-3,
                 "train/grad_norm": (i % 7) * 0.5})
    run.summary["best"] = 0.5
    run.finish()
    print(json.dumps({"s": time.perf_counter() - t0, "dir": run.dir}))
''')

IMPORT = textwrap.dedent('''
    import json, resource, sys, time
    from steadyrun.importer import import_runs
    import wandb.proto.wandb_internal_pb2  # the module imports are not the import's time
    t0 = time.perf_counter()
    (o,) = import_runs([sys.argv[1]], sys.argv[2])
    s = time.perf_counter() - t0
    # the largest process: this one, or a worker that read a range of the log
    rss = max(resource.getrusage(who).ru_maxrss for who in
              (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    from steadyrun.ship.wandb.txlog.ranges import processes
    procs = processes(max(p.stat().st_size for p in o.sources))
    print(json.dumps({"s": s, "rss_mb": rss, "procs": procs, "rows": o.counts.rows,
                      "wandb_rows": o.counts.wandb_rows}))
''')

DOCTOR = textwrap.dedent('''
    import json, resource, sys, time
    import steadyrun.doctor as doctor
    diagnose = getattr(doctor, "diagnose", None)
    if diagnose is None:
        print(json.dumps({"missing": True}))
        raise SystemExit(0)
    import wandb.proto.wandb_internal_pb2
    t0 = time.perf_counter()
    diagnose([sys.argv[1]])
    s = time.perf_counter() - t0
    rss = max(resource.getrusage(who).ru_maxrss for who in
              (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)) / 1024
    print(json.dumps({"s": s, "rss_mb": rss}))
''')


def child(code: str, argv: list[str], env: dict[str, str], timeout: float = 1800
          ) -> dict[str, Any]:
    proc = subprocess.run([PY, "-c", code, *argv], env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"child exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def make_run(env: dict[str, str], n: int) -> tuple[Path, float]:
    got = child(MAKE, [str(n), str(Path(__file__).resolve().parent)], env)
    return Path(got["dir"]).parent, got["s"]


def measure(code: str, folder: Path, base: Path, env: dict[str, str], reps: int,
            name: str) -> list[dict[str, Any]]:
    out = []
    for i in range(reps):
        out.append(child(code, [str(folder), str(base / f"{name}-{i}")], env))
    return out


def main() -> None:
    args = parse_args(__doc__)
    started = now()
    n = 5_000 if args.smoke else 100_000 if args.quick else 1_000_000
    small_n = 5_000
    reps = 1 if args.smoke else 2 if args.quick else 3
    base = workdir(args, "wandb-import")
    env = bench_env(base, STEADYRUN_METADATA="0")
    big, make_s = make_run(env, n)
    small, small_make_s = (big, make_s) if n == small_n else make_run(env, small_n)
    size_mb = sum(p.stat().st_size for p in big.glob("run-*.wandb")) / 1e6
    load = load_note()

    imp = measure(IMPORT, big, base, env, reps, "import")
    imp_small = measure(IMPORT, small, base, env, 1, "import-small")
    secs = [r["s"] for r in imp]
    rss = [r["rss_mb"] for r in imp]
    target = 10.0 * n / 1_000_000
    made = (f"the W&B run ({n:,} rows, {size_mb:,.0f} MB of .wandb) took {make_s:,.0f} s to "
            f"write with raw wandb.log")
    rows = [row(
        "w1", f"`steadyrun import` of a W&B run of {n:,} history rows",
        f"{spread(secs, fmt_s)}, peak RSS {spread(rss, fmt_mb)}",
        f"peak RSS {fmt_mb(imp_small[0]['rss_mb'])} importing {small_n:,} rows",
        f"{median(secs) / target:.1f}× the target" if target else "—",
        f"≤ {target:g} s ({'10 s for 1 M rows, scaled' if n != 1_000_000 else 'issue 16'}), "
        "flat memory",
        median(secs) <= target if not args.smoke else None,
        f"fresh process each ({reps} runs; module imports not timed), the log read by "
        f"{imp[0]['procs']} process(es) (importer/parallel.py: one per core, 32 MiB of log "
        f"each at least); peak RSS is the largest process's; {made}; "
        f"{imp[0]['wandb_rows']:,} W&B rows became {imp[0]['rows']:,} steadyrun rows",
        seconds=secs, rss_mb=rss, small_rss_mb=imp_small[0]["rss_mb"], make_s=make_s,
        small_make_s=small_make_s, wandb_mb=size_mb, n=n)]

    doc = measure(DOCTOR, big, base, env, 1, "doctor")
    if doc[0].get("missing"):
        rows.append(row("w2", f"`steadyrun doctor` on the same {n:,}-row W&B run",
                        "not measured: doctor not built", "—",
                        note="steadyrun.doctor has no diagnose() yet"))
    else:
        doc += measure(DOCTOR, big, base, env, reps - 1, "doctor")
        doc_small = measure(DOCTOR, small, base, env, 1, "doctor-small")
        ds = [r["s"] for r in doc]
        dr = [r["rss_mb"] for r in doc]
        rows.append(row(
            "w2", f"`steadyrun doctor` on the same {n:,}-row W&B run",
            f"{spread(ds, fmt_s)}, peak RSS {spread(dr, fmt_mb)}",
            f"peak RSS {fmt_mb(doc_small[0]['rss_mb'])} on {small_n:,} rows",
            f"{median(ds) / target:.1f}× the target", f"≤ {target:g} s, flat memory",
            median(ds) <= target if not args.smoke else None,
            f"steadyrun.doctor.diagnose([folder]), fresh process each ({reps} runs), the "
            f"log read by {imp[0]['procs']} process(es) (doctor/parallel.py); peak RSS is "
            "the largest process's",
            seconds=ds, rss_mb=dr, small_rss_mb=doc_small[0]["rss_mb"], n=n))
    emit(args, rows, started, load=load, cleanup=base)


if __name__ == "__main__":
    sys.exit(main())
