"""Where the time of one `run.log` goes: each step of the fast path timed on its own.

    .venv/bin/python benchmarks/profile_log.py [--keys 10] [--rounds 60]

One process, one steadyrun run in local mode (no sidecar), and each step of
`Run.log`'s fast path (log/run.py) repeated on its own in batches of 2,000 calls; the
steps alternate round by round so the machine's drift falls on all of them alike.
Figures are the median over rounds of each batch's mean, in ns, with p25-p75. The sum
of the steps is compared with the whole call measured in the same rounds; the floor
of the issue (orjson of the bare dict plus a buffered file write) is beside them.

This is the "explain the limit with numbers" of issue 12: a profile of one call, not
a benchmark row (bench_log.py's a-rows are those).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=60)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="steadyrun-profile-"))
    os.environ["STEADYRUN_DIR"] = str(tmp)
    import orjson

    import steadyrun

    run = steadyrun.init(mode="local", project="profile", metadata=False)
    d = {f"train/metric_{i:03d}": 0.001 * (i + 1) for i in range(args.keys)}
    run.log(d)
    run.log(d)
    writer = run._writer  # the profile reaches in on purpose: one step at a time
    fast_keys, plan, tail = run._fast
    numeric = frozenset((float, int))
    lock = writer.lock
    dumps = orjson.dumps
    put = writer.put_locked
    line = dumps({"k": "row", "t": time.time(), "x": 5, "v": d})
    row = line[:-2] + tail % ((5,) * len(plan))
    floor_file = open(tmp / "floor.jsonl", "wb", buffering=1 << 16)  # noqa: SIM115
    fwrite = floor_file.write

    def noop(metrics, step=None, commit=True, reduce=None):
        return None

    steps = {
        "call of a method with log's signature": lambda: noop(d),
        "same keys as last time (dict_keys ==)": lambda: d.keys() == fast_keys,
        "plain int/float values (type check)": lambda: numeric.issuperset(map(type, d.values())),
        "writer lock, acquire + release": lambda: (lock.acquire(), lock.release()),
        "orjson of the row, time.time() included": lambda: dumps(
            {"k": "row", "t": time.time(), "x": 5, "v": d}),
        "NaN check and step metrics spliced in": lambda: (
            b":null" not in line, line[:-2] + tail % ((5,) * len(plan))),
        "copy into the segment (SegmentFile.put)": lambda: put(row),
    }
    whole = {"run.log, the whole call": lambda: run.log(d)}
    floor = {"floor: orjson(dict) + buffered write": lambda: fwrite(dumps(d) + b"\n")}
    cases = {**steps, **whole, **floor}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    pc = time.perf_counter_ns
    for r in range(args.rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            fn = cases[name]
            t0 = pc()
            for _ in range(2000):
                fn()
            samples[name].append((pc() - t0) / 2000)
    run.finish()
    floor_file.close()

    def q(xs: list[float]) -> tuple[float, float, float]:
        xs = sorted(xs)
        return statistics.median(xs), xs[len(xs) // 4], xs[(3 * len(xs)) // 4]

    print(f"| step of run.log's fast path ({args.keys} scalars, {writer.mode} mode) "
          f"| ns (median) | p25-p75 |")
    print("|---|---|---|")
    total = 0.0
    for name in names:
        med, lo, hi = q(samples[name])
        if name in steps:
            total += med
        print(f"| {name} | {med:.0f} | {lo:.0f}-{hi:.0f} |")
        if name == names[len(steps) - 1]:
            print(f"| sum of the steps above | {total:.0f} | |")
    print(f"\nload average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
