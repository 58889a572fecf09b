"""(f) The reader: time to `open_run` a 1 M-row run, and to get one namespace's history.

The run is written by this benchmark through `run.log` in local mode (quick: 100 k
rows): every step a row of 5 scalars in two namespaces (train/, perf/), and every 100
steps a validation row (val/). Each measurement is a fresh interpreter (no warm
caches in the process; the file itself is in the page cache after the first repeat):

  open      steadyrun.open_run(path) and its records: every segment read, parsed, merged
            in time order (open_run reads on first use; the records are asked for)
  history   run.history("train") (the big namespace) and run.history("val") (1 %)

The floor, in its own fresh interpreter: read the same segment bytes and parse them with
orjson, 1 MiB of lines per call, garbage collector off: the least any reader that hands
back a Python dict per record can cost. Repeats alternate steadyrun and floor; figures are medians.

Columns (f3-f6, extra `frames`), on a second run written by `run.log`: 1 M rows (quick:
100 k) of 10 train/ keys (9 logged + train/step), a val/ row every 100 steps:

  warm      open_run(path).history("train").to_arrow() (and .to_pandas()) with the
            columnar cache in place: 1 M rows x 10 keys (f3); one key of one namespace,
            column("train/loss").to_arrow() (f4). `import pyarrow, pyarrow.compute` is
            done before the clock starts (~0.2 s once per process, reported apart)
  cold      the same history("train").to_arrow() after deleting the cache, which it
            writes again, against the orjson floor of the same segment (f5)
  memory    peak RSS of a fresh process that reads a 10 M-row run (quick: 1 M) one column
            at a time, column(key) as to_arrow(), to_pandas(copy=False) and to_pandas(),
            summing every value (f6). The 10 M-row segment is
            written directly as segment lines with orjson (the same record format
            run.log writes; run.log would take minutes), and its cache built by a
            separate process first, whose time and peak RSS the note gives.
"""

from __future__ import annotations

import importlib.util
import textwrap

from _common import (
    PY,
    bench_env,
    child_json,
    emit,
    fmt_mb,
    fmt_ms,
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
    run.records  # open_run reads segments on first use: the load is timed as before
    t1 = time.perf_counter()
    val = run.history("val").list  # history() builds its list on first use
    t2 = time.perf_counter()
    train = run.history("train").list
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


COLS_WARM = textwrap.dedent("""
    import json, sys, time
    import pyarrow, pyarrow.compute, pandas
    import steadyrun
    t0 = time.perf_counter()
    table = steadyrun.open_run(sys.argv[1]).history("train").to_arrow()
    t1 = time.perf_counter()
    df = steadyrun.open_run(sys.argv[1]).history("train").to_pandas()
    t2 = time.perf_counter()
    col = steadyrun.open_run(sys.argv[1]).column("train/loss").to_arrow()
    t3 = time.perf_counter()
    # The cache is memory-mapped: the conversions touch no data. One pass over every
    # value (a sum per column) says what reading the pages costs, on top of them.
    total = sum(float(df[c].sum()) for c in df.columns)
    t4 = time.perf_counter()
    print(json.dumps({"arrow": t1 - t0, "pandas": t2 - t1, "one_key": t3 - t2,
                      "pandas_touched": t4 - t1, "total": total,
                      "shape": list(table.shape), "df": list(df.shape), "col": col.num_rows}))
""")

COLS_COLD = textwrap.dedent("""
    import json, shutil, sys, time
    from pathlib import Path
    import pyarrow, pyarrow.compute, pandas
    import steadyrun
    shutil.rmtree(Path(sys.argv[1], "cache"), ignore_errors=True)
    t0 = time.perf_counter()
    table = steadyrun.open_run(sys.argv[1]).history("train").to_arrow()
    t1 = time.perf_counter()
    print(json.dumps({"open": t1 - t0, "rows": table.num_rows,
                      "cached": len(list(Path(sys.argv[1], "cache").glob("*.arrow")))}))
""")

IMPORT_PA = textwrap.dedent("""
    import json, time
    t0 = time.perf_counter()
    import pyarrow, pyarrow.compute, pyarrow.ipc
    print(json.dumps({"import": time.perf_counter() - t0}))
""")

COLS_MEMORY = textwrap.dedent("""
    import json, sys, time
    import steadyrun
    how = sys.argv[2]
    t0 = time.perf_counter()
    run = steadyrun.open_run(sys.argv[1])
    keys = [f"train/{k}" for k in KEYS] + ["val/loss", "val/acc"]
    rows = 0
    for key in keys:
        col = run.column(key)
        if how == "arrow":
            import pyarrow.compute as pc
            table = col.to_arrow()
            rows += len(table)
            total = sum(pc.sum(c).as_py() for c in table.columns)  # touch every page
            del table
        else:
            df = col.to_pandas(copy=how == "pandas")
            rows += len(df)
            total = float(df.iloc[:, 0].sum()) + float(df.iloc[:, -1].sum())
            del df
    # VmHWM, this process's own peak: ru_maxrss would keep the parent's across exec
    status = open("/proc/self/status").read()
    hwm = int(status.split("VmHWM:")[1].split()[0]) / 1024
    print(json.dumps({"peak_mb": hwm, "s": time.perf_counter() - t0, "rows": rows,
                      "keys": len(keys)}))
""")

KEYS = ["loss", "acc", "lr", "grad_norm", "momentum", "wd", "tokens", "mfu", "clip"]


def log_columns_run(n_rows: int):
    """1 M rows of 10 train/ keys through run.log (in this process), a val/ row per 100."""
    import steadyrun

    run = steadyrun.init(mode="local", project="bench", name="bench-columns")
    log = run.log
    for i in range(n_rows - n_rows // 100):
        log({"train/loss": 1.0 / (i + 1), "train/acc": 0.5, "train/lr": 3e-4,
             "train/grad_norm": 1.25, "train/momentum": 0.9, "train/wd": 0.01,
             "train/tokens": 4096.0 * i, "train/mfu": 0.41, "train/clip": 1.0})
        if i % 99 == 0:
            log({"val/loss": 0.5, "val/acc": 0.75})
    run.finish()
    return run.dir


def write_segment_run(base, n_rows: int):
    """A run of `n_rows` rows written directly as a closed segment (orjson lines in the
    format of store/records.py), for the memory row: run.log would take minutes."""
    import orjson

    rdir = base / "runs" / "bigcols0"
    (rdir / "segments").mkdir(parents=True)
    (rdir / "run.json").write_bytes(orjson.dumps({"id": "bigcols0", "state": "finished"}))
    t = 1.7e9
    with open(rdir / "segments" / "owner-1-0000.jsonl", "wb") as fh:
        fh.write(orjson.dumps({"k": "open", "t": t, "writer": "owner-1-0000", "role": "owner",
                               "pid": 1, "host": "bench"}) + b"\n")
        lines, step, val = [], 0, 0
        for i in range(n_rows):
            if i % 100 == 99:
                v = {"val/loss": 0.5, "val/acc": 0.75, "val/step": val}
                val += 1
            else:
                v = {f"train/{k}": 1.0 / (i + j + 1) for j, k in enumerate(KEYS)}
                v["train/step"] = step
                step += 1
            lines.append(orjson.dumps({"k": "row", "t": t + i * 1e-4, "x": i, "v": v}))
            if len(lines) >= 100_000:
                fh.write(b"\n".join(lines) + b"\n")
                lines = []
        if lines:
            fh.write(b"\n".join(lines) + b"\n")
        fh.write(orjson.dumps({"k": "close", "t": t + n_rows * 1e-4, "exit_code": 0,
                               "state": "finished"}) + b"\n")
    return rdir


def columns_rows(args, base, env, reps: int) -> list[dict]:
    """f3-f6: the columnar reads (extra `frames`)."""
    n_rows = 20_000 if args.smoke else 100_000 if args.quick else 1_000_000
    t0 = now()
    rdir = log_columns_run(n_rows)
    write_s = now() - t0
    path = str(rdir)
    child(COLS_COLD, path, env)  # the cache, for the warm rows
    warm, cold, floor, imp = [], [], [], []
    for _ in range(reps):
        warm.append(child(COLS_WARM, path, env))
        cold.append(child(COLS_COLD, path, env))
        floor.append(child(READ_FLOOR, path, env))
        imp.append(child(IMPORT_PA, path, env))
    big_rows = 100_000 if args.smoke else 1_000_000 if args.quick else 10_000_000
    t0 = now()
    big = write_segment_run(base, big_rows)
    big_write = now() - t0
    code = COLS_MEMORY.replace("KEYS", repr(KEYS))
    build = child_json([PY, "-c", COLS_MEMORY.replace("KEYS", repr(KEYS[:1])), str(big),
                        "arrow"], env, timeout=900)
    mem = {how: [child_json([PY, "-c", code, str(big), how], env, timeout=600)
                 for _ in range(reps)] for how in ("arrow", "view", "pandas")}
    wa, wp, wk, wt = (median(x[k] for x in warm)
                      for k in ("arrow", "pandas", "one_key", "pandas_touched"))
    c, f = median(x["open"] for x in cold), median(x["open"] for x in floor)
    pa_import = median(x["import"] for x in imp)
    peak = {how: median(x["peak_mb"] for x in m) for how, m in mem.items()}
    shape = warm[0]["shape"]
    common = (f"{shape[0]:,} rows x {shape[1]} keys (train/), written by run.log in "
              f"{write_s:.0f} s; fresh interpreter per repeat, median of {reps}")
    full = not args.quick
    return [
        row("f3", f"history(\"train\").to_arrow(), warm cache: {shape[0] / 1e6:.2g} M rows "
                  f"x {shape[1]} keys, and to_pandas() + a sum of every column",
            f"{fmt_ms(wa * 1e3)}; to_pandas + sums {fmt_ms(wt * 1e3)}",
            f"to_pandas alone {fmt_ms(wp * 1e3)}", "—", "≤ 0.2 s", wt <= 0.2 if full else None,
            note=f"{common}; `import pyarrow, pyarrow.compute` before the clock: "
                 f"{fmt_s(pa_import)} once per process", warm=warm, import_s=imp),
        row("f4", "column(\"train/loss\").to_arrow(), warm cache: one key of one "
                  "namespace", fmt_ms(wk * 1e3), "—", "—", "≤ 50 ms",
            wk <= 0.05 if full else None,
            note=f"{warm[0]['col']:,} rows; {common}"),
        row("f5", "history(\"train\").to_arrow(), cold (no cache; writes it)", fmt_s(c),
            f"orjson floor {fmt_s(f)}", fmt_x(c / f, "the floor"), "≤ floor x 1.3",
            c <= 1.3 * f if full else None,
            note=f"{common}; cache files after: {cold[0]['cached']}", cold=cold, floor=floor),
        row("f6", f"peak RSS reading a {big_rows / 1e6:.2g} M-row run one column at a time "
                  f"({mem['arrow'][0]['keys']} keys; every value summed)",
            f"to_arrow {fmt_mb(peak['arrow'])}, to_pandas(copy=False) "
            f"{fmt_mb(peak['view'])}", f"to_pandas() {fmt_mb(peak['pandas'])}", "—",
            "≤ 300 MB", peak["arrow"] <= 300 if full else None,
            note=f"segment written with orjson in {big_write:.0f} s; cache built first by "
                 f"its own process in {build['s']:.0f} s, peak RSS "
                 f"{fmt_mb(build['peak_mb'])}; to_arrow and to_pandas(copy=False) map the "
                 f"cache (the pages read count once); to_pandas() copies into a mutable "
                 f"frame while the mapped pages are resident; reading "
                 f"{mem['arrow'][0]['rows']:,} values took "
                 f"{fmt_s(median(x['s'] for x in mem['arrow']))} (arrow)",
            memory=mem, build=build),
    ]


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
    if importlib.util.find_spec("pyarrow") and importlib.util.find_spec("pandas"):
        rows += columns_rows(args, base, env, reps)
    else:
        rows += [row(rid, "columnar reads", "skipped: pyarrow/pandas not installed", "—",
                     note="pip install 'steadyrun[frames]'") for rid in ("f3", "f4", "f5", "f6")]
    emit(args, rows, started, load=load, cleanup=base)


if __name__ == "__main__":
    main()
