"""(k) Console capture (log/console.py) on a print-heavy training loop.

A loop that prints 10,000 lines per second (issue 17) and logs a row per line, in local
mode, its stdout a pipe read by this script (as a terminal or a SLURM log reads it).
Each configuration runs alone in its own fresh process, alternating, repeated (5 times;
quick 3, smoke 1); figures are medians with their range.

  k1  wall time of the loop's prints (N = 30,000 lines, `print(..., flush=True)` each,
      paced at 10,000 lines/s: the loop sleeps to keep the pace, so the figure is the
      time the prints themselves held the training thread), console on against the
      same loop with `console="off"`: microseconds per print
  k2  the whole process's CPU time (user + system, the reader thread included) for
      the same loop, on against off: what capture costs the machine per line
  k3  lines kept: the run's console file against the lines printed (must be all)

Target: no cost on the training thread per print beyond its own write (k1 on within
the noise of off); k3 = N.
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
    emit,
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

LOOP = textwrap.dedent('''
    import json, os, resource, sys, time
    import steadyrun
    n, console = int(sys.argv[1]), sys.argv[2]
    run = steadyrun.init(project="bench-console", mode="local", console=console,
                         metadata=False)
    pace = 1.0 / 10_000
    held = 0.0
    start = time.perf_counter()
    for i in range(n):
        t0 = time.perf_counter()
        print(f"step {i} loss {1.0 / (i + 1):.6f}", flush=True)
        held += time.perf_counter() - t0
        run.log({"train/loss": 1.0 / (i + 1)})
        ahead = start + (i + 1) * pace - time.perf_counter()
        if ahead > 0:
            time.sleep(ahead)
    run.finish()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    lines = 0
    folder = run.dir / "console"
    if folder.is_dir():
        for p in folder.glob("*.jsonl"):
            lines += sum(1 for ln in p.read_bytes().splitlines() if b'"step ' in ln)
    print(json.dumps({"print_us": held / n * 1e6, "cpu_s": ru.ru_utime + ru.ru_stime,
                      "lines": lines}), file=sys.stderr)
''')


def one(base: Path, n: int, console: str) -> dict[str, Any]:
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("STEADYRUN_")}
    env["STEADYRUN_DIR"] = str(base / "root")
    proc = subprocess.run([PY, "-c", LOOP, str(n), console], env=env, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"the loop exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    printed = proc.stdout.count("\n")
    got = json.loads(proc.stderr.strip().splitlines()[-1])
    got["printed"] = printed
    return got


def main() -> None:
    args = parse_args(__doc__)
    started = now()
    n = 2_000 if args.smoke else 10_000 if args.quick else 30_000
    reps = 1 if args.smoke else 3 if args.quick else 5
    base = workdir(args, "console")
    load = load_note()
    on: list[dict[str, Any]] = []
    off: list[dict[str, Any]] = []
    for _ in range(reps):  # alternating, each alone in its own process
        off.append(one(base, n, "off"))
        on.append(one(base, n, "on"))
    pon = [r["print_us"] for r in on]
    poff = [r["print_us"] for r in off]
    con = [r["cpu_s"] / n * 1e6 for r in on]
    coff = [r["cpu_s"] / n * 1e6 for r in off]
    kept = [r["lines"] for r in on]
    shown = [r["printed"] for r in on]
    rows = [
        row("k1", f"a print on the training thread, {n:,} lines at 10,000 lines/s, console "
            "captured", spread(pon, fmt_us), f"console off {spread(poff, fmt_us)}",
            fmt_x(median(pon) / median(poff), "off's time"),
            "within the noise of off (no lock, no extra syscall per print)", None,
            f"each configuration alone in its own process, alternating, {reps} runs; local "
            "mode, a row logged per line; stdout a pipe this script reads",
            on=pon, off=poff, n=n),
        row("k2", "the process's CPU time per line printed (the reader thread included)",
            spread(con, fmt_us), f"console off {spread(coff, fmt_us)}",
            fmt_x(median(con) / median(coff), "off's"), "—", None,
            "user + system time of the whole process over the loop, divided by the lines",
            on=con, off=coff),
        row("k3", "lines kept in the run's console file", f"{min(kept):,} of {n:,}",
            f"the terminal (the pipe) got {min(shown):,} lines", "—", "every line",
            min(kept) == n and min(shown) >= n if not args.smoke else None,
            "counted in console/<writer>.jsonl after finish", kept=kept, printed=shown),
    ]
    emit(args, rows, started, load=load, cleanup=base)


if __name__ == "__main__":
    sys.exit(main())
