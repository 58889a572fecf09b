"""(f) The reader: time to `open_run` a 1 M-row run, and to get one namespace's history.

The run is written by this benchmark through `run.log` in local mode (quick: 100 k
rows): every step a row of 5 scalars in two namespaces (train/, perf/), and every 100
steps a validation row (val/). Each measurement is a fresh interpreter (no warm
caches in the process; the file itself is in the page cache after the first repeat):

  open      steadyrun.open_run(path): every segment read, parsed, merged in time order
  history   run.history("train") (the big namespace) and run.history("val") (1 %)

The floor, in its own fresh interpreter: read the same segment bytes and parse them with
orjson, 1 MiB of lines per call, garbage collector off: the least any reader that hands
back a Python dict per record can cost. Repeats alternate steadyrun and floor; figures are medians.
"""

from __future__ import annotations

import textwrap

from _common import (
    PY,
    bench_env,
    child_json,
    emit,
    fmt_s,
    fmt_x,
    load_note,
    median,
    now,
    parse_args,
    row,
    use_env,
    workdir,
)

READ_SR = textwrap.dedent("""
    import json, sys, time
    import steadyrun
    t0 = time.perf_counter()
    run = steadyrun.open_run(sys.argv[1])
    t1 = time.perf_counter()
    val = run.history("val")
    t2 = time.perf_counter()
    train = run.history("train")
    t3 = time.perf_counter()
    print(json.dumps({"open": t1 - t0, "val": t2 - t1, "train": t3 - t2,
                      "rows": len(run.rows), "n_val": len(val), "n_train": len(train)}))
""")

READ_FLOOR = textwrap.dedent("""
    import gc, json, sys, time
    from pathlib import Path
    import orjson
    t0 = time.perf_counter()
    gc.disable()
    out = []
    for p in sorted(Path(sys.argv[1], "segments").glob("*.jsonl")):
        data = p.read_bytes()
        pos, n = 0, len(data)
        while pos < n:  # 1 MiB of lines per orjson call: the fastest way found
            end = data.rfind(b"\\n", pos, pos + (1 << 20)) + 1
            if end <= pos:
                end = data.find(b"\\n", pos) + 1 or n
            out.extend(orjson.loads(b"[" + data[pos:end - 1].replace(b"\\n", b",") + b"]"))
            pos = end
    t1 = time.perf_counter()
    print(json.dumps({"open": t1 - t0, "records": len(out)}))
""")


def child(code: str, path: str, env: dict[str, str]) -> dict:
    return child_json([PY, "-c", code, path], env, timeout=600)


def main() -> None:
    args = parse_args(__doc__)
    started = now()
    n_rows = 100_000 if args.quick else 1_000_000
    reps = 2 if args.quick else 3
    base = workdir(args, "reader")
    env = bench_env(base)
    use_env(env)
    import steadyrun

    run = steadyrun.init(mode="local", project="bench", name="bench-reader")
    log = run.log
    t0 = now()
    n_train = n_rows - n_rows // 100
    for i in range(n_train):
        log({"train/loss": 1.0 / (i + 1), "train/acc": 0.5, "train/lr": 3e-4,
             "train/grad_norm": 1.25, "perf/samples_per_sec": 1e4})
        if i % 99 == 0:
            log({"val/loss": 0.5, "val/acc": 0.75})
    run.finish()
    write_s = now() - t0
    path = str(run.dir)
    size = sum(p.stat().st_size for p in (run.dir / "segments").glob("*.jsonl"))

    sr, fl = [], []
    for _ in range(reps):
        sr.append(child(READ_SR, path, env))
        fl.append(child(READ_FLOOR, path, env))
    load = load_note()
    rows_read = sr[0]["rows"]
    o, f = median(x["open"] for x in sr), median(x["open"] for x in fl)
    ht, hv = median(x["train"] for x in sr), median(x["val"] for x in sr)
    common = (f"{rows_read:,} rows, {size / 1e6:,.0f} MB of segment, written by run.log in "
              f"{write_s:.0f} s; fresh interpreter per repeat, median of {reps}")
    rows = [
        row("f1", f"open_run of a {rows_read / 1e6:.2g} M-row run",
            fmt_s(o), f"orjson floor {fmt_s(f)}", fmt_x(o / f, "the floor"),
            "≤ 2 s (1 M rows)", None if args.quick else o <= 2.0,
            note=common, reads=sr, floor=fl, bytes=size),
        row("f2", "history of one namespace, after open_run: train/ (99 % of rows), "
                  "val/ (1 %)",
            f"train {fmt_s(ht)}, val {fmt_s(hv)}", "—",
            note=f"open + train history {fmt_s(o + ht)}; rows: train "
                 f"{sr[0]['n_train']:,}, val {sr[0]['n_val']:,}"),
    ]
    emit(args, rows, started, load=load, cleanup=base)


if __name__ == "__main__":
    main()
