"""(l) Deciding with runs: `steadyrun leaderboard` and `steadyrun compare` over many runs.

The data, written once by this benchmark in two fresh child processes (one per CPU) with
`steadyrun.init(mode="local")`: 1,000 small runs (quick: 100) in 4 projects, each with a
config of 4 keys (lr, seed, batch size, depth), `define_metric("val/acc",
goal="maximize")`, 50 rows of train/loss and train/lr, 10 rows of val/acc and val/loss,
and a summary of 2 keys; every fourth run has the tag `base`. The runs' digests are what
their writers left at `finish()` (read/digest.py): nothing is prepared for the reader.

  l1  `steadyrun leaderboard --dir ROOT` over every run, as a user types it: a fresh
      process each (interpreter start, imports, every run.json and digest read, the rich
      table printed to a pipe); `run_digest` is then called on every run in this
      process to check that its folded_bytes is 0 (each digest was current, no segment
      was parsed)
  l2  the same command with every digest deleted first (digests/ removed: each whole
      segment is folded, the reader's fallback), to show what the digests save
  l3  `steadyrun compare tag:base <latest run>`: a set of 250 runs (quick: 25) as one
      column (mean ± std) against one run, fresh process each

Each figure: one unmeasured warm-up (bytecode compiled into a scratch pycache, the files
in the page cache, as for any command run twice), then a median of 5 runs (quick: 3)
with its range (min-max).
"""

from __future__ import annotations

import shutil
import subprocess
import textwrap
from pathlib import Path
from typing import Any

from _common import (
    PY,
    bench_env,
    emit,
    fmt_ms,
    fmt_s,
    fmt_x,
    load_note,
    median,
    now,
    parse_args,
    row,
    spread,
    workdir,
)

WRITE = textwrap.dedent('''
    import json, sys, time
    import steadyrun
    start, count = int(sys.argv[1]), int(sys.argv[2])
    t0 = time.perf_counter()
    for r in range(start, start + count):
        seed = r % 5
        run = steadyrun.init(mode="local", project=f"p{r % 4}", name=f"run-{r:04d}",
                             tags=["base"] if r % 4 == 0 else ["try"], group=f"g{r % 10}",
                             config={"lr": [1e-4, 3e-4, 1e-3][r % 3], "seed": seed,
                                     "batch_size": 32, "model": {"depth": 2 + r % 2}})
        run.define_metric("val/acc", goal="maximize")
        q = ((r * 7919) % 1000) / 1000
        for i in range(50):
            run.log({"train/loss": 2.0 / (i + 1) + q, "train/lr": 1e-3})
            if i % 5 == 4:
                run.log({"val/acc": 0.5 + 0.4 * q * i / 49, "val/loss": 1.0 - q * i / 49},
                        step=i)
        run.summary.update({"eval/acc": 0.5 + 0.4 * q, "eval/n": 1000})
        run.finish()
    print(json.dumps({"runs": count, "s": time.perf_counter() - t0}))
''')

FOLDED = textwrap.dedent('''
    import json, sys, time
    from steadyrun.read.digest import run_digest
    from steadyrun.read.select import run_dirs
    t0 = time.perf_counter()
    folded = [run_digest(d)["folded_bytes"] for d in run_dirs(sys.argv[1])]
    print(json.dumps({"runs": len(folded), "folded_bytes": sum(folded),
                      "runs_folded": sum(1 for f in folded if f), "s": time.perf_counter() - t0}))
''')


def write_runs(root: Path, env: dict[str, str], n: int) -> float:
    """n runs in two concurrent child processes; the wall time."""
    env = {**env, "STEADYRUN_DIR": str(root)}
    half = n // 2
    t0 = now()
    procs = [subprocess.Popen([PY, "-c", WRITE, str(start), str(count)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for start, count in ((0, half), (half, n - half))]
    for p in procs:
        out, err = p.communicate(timeout=1200)
        if p.returncode != 0:
            raise RuntimeError(f"writing runs failed ({p.returncode}):\n{err[-3000:]}")
    return now() - t0


def timed(cmd: list[str], env: dict[str, str], reps: int) -> dict[str, Any]:
    """One unmeasured warm-up, then `reps` fresh processes; their wall times."""
    times: list[float] = []
    out = ""
    for i in range(reps + 1):
        t0 = now()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        took = now() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[2:6]} exited {proc.returncode}: {proc.stderr[-2000:]}")
        if i:
            times.append(took)
        out = proc.stdout
    return {"s": times, "stdout_lines": len(out.splitlines()), "stdout_bytes": len(out)}


def secs(x: float) -> str:
    return fmt_s(x) if x >= 1 else fmt_ms(x * 1e3)


def main() -> None:
    args = parse_args(__doc__)
    started = now()
    quick = args.quick
    n = 20 if args.smoke else 100 if quick else 1000
    reps = 1 if args.smoke else 3 if quick else 5
    base = workdir(args, "compare")
    env = bench_env(base, STEADYRUN_METADATA="0", PYTHONDONTWRITEBYTECODE=None,
                    PYTHONPYCACHEPREFIX=str(base / "pycache"), COLUMNS="160")
    root = base / "sr"
    write_s = write_runs(root, env, n)
    load0 = load_note()
    cli = [PY, "-m", "steadyrun", "--dir", str(root)]

    l1 = timed([*cli, "leaderboard"], env, reps)
    folded = __import__("json").loads(subprocess.run(
        [PY, "-c", FOLDED, str(root)], env=env, capture_output=True, text=True,
        timeout=600, check=True).stdout.strip().splitlines()[-1])
    latest = sorted((root / "runs").iterdir(), key=lambda d: d.stat().st_mtime)[-1].name
    l3 = timed([*cli, "compare", "tag:base", latest], env, reps)
    for d in (root / "runs").iterdir():
        shutil.rmtree(d / "digests", ignore_errors=True)
    l2 = timed([*cli, "leaderboard"], env, reps)

    load = f"{load0} before, {load_note()} after"
    full = not quick
    written = (f"{n:,} runs of 50 train rows and 10 val rows each, written by "
               f"steadyrun.init/log/finish in two processes in {write_s:.0f} s")
    rows = [
        row("l1", f"`steadyrun leaderboard` over {n:,} runs: a fresh process, the table "
                  "printed",
            spread(l1["s"], secs), "—", "—", "≤ 1 s (issue 14)",
            median(l1["s"]) <= 1.0 if full else None,
            note=f"{written}; median of {len(l1['s'])} fresh processes after one unmeasured "
                 f"warm-up, interpreter start included; digests used: run_digest over "
                 f"every run folded {folded['folded_bytes']} bytes of segments "
                 f"({folded['runs_folded']} runs needed a fold; 0 = every digest was "
                 f"current), in {folded['s'] * 1e3:.0f} ms in one process",
            raw=l1, folded=folded, write_s=write_s),
        row("l2", "the same leaderboard with every digest deleted (the reader folds each "
                  "whole segment)",
            spread(l2["s"], secs), f"with digests (l1) {spread(l1['s'], secs)}",
            fmt_x(median(l2["s"]) / median(l1["s"]), "the time with digests"),
            note="digests/ removed from every run; shows what the digests save; "
                 f"median of {len(l2['s'])} after one warm-up", raw=l2),
        row("l3", f"`steadyrun compare tag:base <run>`: {n // 4:,} runs as one column "
                  "(mean ± std) against one run",
            spread(l3["s"], secs), "—", note=f"{written}; fresh process each, median of "
                                       f"{len(l3['s'])} after one warm-up", raw=l3),
    ]
    for r in rows:
        r["data"]["commit"] = _commit()
    emit(args, rows, started, load=load, cleanup=base)


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


if __name__ == "__main__":
    main()
