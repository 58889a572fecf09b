"""(d) `import steadyrun` and `steadyrun.init` time, against `import wandb` and `wandb.init`.

Every measurement is a fresh interpreter, so nothing is cached in the process; figures
are medians over repeats, steadyrun and wandb interleaved. Bytecode is cached (in a
scratch PYTHONPYCACHEPREFIX, filled by one warm-up run) as it is for any installed
package, even where the caller sets PYTHONDONTWRITEBYTECODE.

- import: `python -X importtime -c "import steadyrun"`, the cumulative time of the
  `steadyrun` line (the interpreter's own start-up left out); the same for wandb. The
  child also reports which of wandb, torch and numpy are in sys.modules afterwards.
- init: the time `steadyrun.init(mode=...)` holds the calling thread, in local mode and in
  offline mode (where it starts the sidecar process in the background and returns),
  measured after `import steadyrun` (so it includes the lazy imports init triggers);
  against `import wandb` + `wandb.init` offline, what a W&B user waits for.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap

from _common import (
    PY,
    bench_env,
    child_json,
    emit,
    fmt_ms,
    fmt_x,
    load_note,
    median,
    now,
    parse_args,
    row,
    workdir,
)

HEAVY = ("wandb", "torch", "numpy")

INIT_SR = textwrap.dedent("""
    import json, sys, time
    import steadyrun
    HEAVY = HEAVY_NAMES
    t0 = time.perf_counter()
    run = steadyrun.init(mode=sys.argv[1], project="bench", name="bench-init")
    t1 = time.perf_counter()
    run.log({"train/loss": 0.5})
    heavy = sorted(m for m in HEAVY if m in sys.modules)
    run.finish(timeout=60)
    t2 = time.perf_counter()  # a second init: its modules are imported, the work is left
    run = steadyrun.init(mode=sys.argv[1], project="bench", name="bench-init-2")
    t3 = time.perf_counter()
    run.finish(timeout=60)
    print(json.dumps({"init_s": t1 - t0, "second_init_s": t3 - t2, "heavy_after_init": heavy}))
""").replace("HEAVY_NAMES", repr(HEAVY))

INIT_WB = textwrap.dedent("""
    import json, sys, time
    sys.path.insert(0, sys.argv[1])
    t0 = time.perf_counter()
    import wandb
    t1 = time.perf_counter()
    from _common import wandb_init
    run = wandb_init(name="bench-init")
    t2 = time.perf_counter()
    run.log({"train/loss": 0.5})
    run.finish()
    wandb.teardown()
    print(json.dumps({"import_s": t1 - t0, "init_s": t2 - t1}))
""")


def import_time(module: str, env: dict[str, str]) -> tuple[float, list[str]]:
    """(cumulative import seconds of `module`, heavy modules loaded) in a fresh interpreter."""
    code = f"import sys, json; import {module}; " \
           f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    proc = subprocess.run([PY, "-X", "importtime", "-c", code], env=env, capture_output=True,
                          text=True, timeout=120, check=True)
    cumulative = None
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|\s*(\S+)\s*$", line)
        if m and m.group(3) == module:
            cumulative = int(m.group(2)) / 1e6
    if cumulative is None:
        raise RuntimeError(f"no importtime line for {module}:\n{proc.stderr[-2000:]}")
    return cumulative, json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse_args(__doc__)
    started = now()
    quick = args.quick
    base = workdir(args, "startup")
    # Bytecode cached, as in any installed package: without it every start compiles
    # steadyrun's (and wandb's) sources again. The cache lives in the scratch folder, and
    # one warm-up of each measurement fills it before anything is timed.
    env = bench_env(base, PYTHONDONTWRITEBYTECODE=None,
                    PYTHONPYCACHEPREFIX=str(base / "pycache"))
    here = str(__import__("pathlib").Path(__file__).resolve().parent)
    import_time("steadyrun", env)
    import_time("wandb", env)
    child_json([PY, "-c", INIT_SR, "local"], env)
    child_json([PY, "-c", INIT_SR, "offline"], env)
    child_json([PY, "-c", INIT_WB, here], env)

    n_sr = 2 if args.smoke else 4 if quick else 10
    n_wb = 1 if args.smoke else 2 if quick else 3
    imp_sr, imp_wb, heavy_import = [], [], set()
    for i in range(n_sr):
        t, heavy = import_time("steadyrun", env)
        imp_sr.append(t)
        heavy_import.update(heavy)
        if i < n_wb:
            imp_wb.append(import_time("wandb", env)[0])

    init_local, init_off, heavy_init, second_local = [], [], set(), []
    wb_import, wb_init = [], []
    for i in range(n_sr):
        r = child_json([PY, "-c", INIT_SR, "local"], env)
        init_local.append(r["init_s"])
        second_local.append(r["second_init_s"])
        heavy_init.update(r["heavy_after_init"])
        if i < n_wb:
            r = child_json([PY, "-c", INIT_SR, "offline"], env)
            init_off.append(r["init_s"])
            heavy_init.update(r["heavy_after_init"])
            r = child_json([PY, "-c", INIT_WB, here], env)
            wb_import.append(r["import_s"])
            wb_init.append(r["init_s"])
    load = load_note()

    isr, iwb = median(imp_sr), median(imp_wb)
    il, io = median(init_local), median(init_off)
    wbi = median(a + b for a, b in zip(wb_import, wb_init, strict=True))
    none_heavy = not heavy_import
    rows = [
        row("d1", "`import steadyrun` (fresh interpreter, -X importtime, cumulative)",
            fmt_ms(isr * 1e3), f"import wandb {fmt_ms(iwb * 1e3)}", fmt_x(iwb / isr, "faster"),
            "≤ 100 ms, no wandb/torch/numpy", isr <= 0.100 and none_heavy,
            note=f"median of {n_sr} (wandb: {n_wb}); modules of {', '.join(HEAVY)} loaded by "
                 f"`import steadyrun`: {', '.join(sorted(heavy_import)) or 'none'}",
            import_s=imp_sr, wandb_import_s=imp_wb, heavy=sorted(heavy_import)),
        row("d2", "`steadyrun.init(mode=\"local\")` on the calling thread",
            fmt_ms(il * 1e3), f"import wandb + wandb.init offline {fmt_ms(wbi * 1e3)}",
            fmt_x(wbi / il, "faster"), "≤ 50 ms", il <= 0.050,
            note=f"median of {n_sr}, after `import steadyrun`; the lazy imports init triggers "
                 f"are included: a second init in the same process, modules loaded, takes "
                 f"{fmt_ms(median(second_local) * 1e3)}. Loaded after init + one log: "
                 f"{', '.join(sorted(heavy_init)) or 'no wandb, torch or numpy'}",
            init_local_s=init_local, second_init_s=second_local, heavy_after_init=sorted(heavy_init)),
        row("d3", "`steadyrun.init(mode=\"offline\")` on the calling thread (sidecar started "
                  "in the background)",
            fmt_ms(io * 1e3), f"import wandb + wandb.init offline {fmt_ms(wbi * 1e3)}",
            fmt_x(wbi / io, "faster"),
            note=f"median of {n_wb}; wandb alone: import {fmt_ms(median(wb_import) * 1e3)}, "
                 f"init {fmt_ms(median(wb_init) * 1e3)}; the sidecar imports wandb in its "
                 f"own process",
            init_offline_s=init_off, wandb_import_s=wb_import, wandb_init_s=wb_init),
    ]
    emit(args, rows, started, load=load, cleanup=base)


if __name__ == "__main__":
    main()
