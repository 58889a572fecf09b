"""(b) A real training loop: no tracking, steadyrun, raw wandb.log, at the same logging rate.

A small torch MLP trains on the CPU (one thread), sized at start so that one step
costs about 1 ms of CPU (about 1,000 steps/s on a quiet core). A worker process runs the
same loop in each variant:

  none       computes the metrics it would log, logs nothing
  steadyrun  steadyrun.init(mode="offline"): run.log of 5 scalars every step, while the
             sidecar process ships them to W&B offline files
  wandb      raw wandb.log of the same 5 scalars every step (offline, no stats)

Every block runs in a fresh worker of its own, started for it and ended after it (the
run finished, the sidecar and wandb-core gone) before the next worker starts: no
variant is ever timed while another variant's processes exist. (Until b8771f0 the
workers lived through the whole benchmark, so raw wandb was timed beside an idle
steadyrun sidecar and the other way round.) The coordinator rotates the order each
repetition (A/B/C, B/C/A, C/A/B, ...), so slow drift of the machine falls on all of
them. After its block, the worker waits until its background work is done (the sidecar
has shipped every row, wandb-core is idle) and reports: each block is charged with the
background work that overlapped it.

Slowdown = median over repetitions of (block time of the variant / block time of `none`
in the same repetition) - 1, on wall time (what the user sees) and on the training
process's CPU time (steadier on a shared machine). The sidecar's and wandb-core's own
CPU per step is reported too: on a machine with a spare core it runs beside training.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import (
    PY,
    bench_env,
    emit,
    load_note,
    median,
    now,
    parse_args,
    quantiles,
    row,
    skip_without,
    use_env,
    wandb_init,
    workdir,
)

VARIANTS = ("none", "steadyrun", "local", "wandb")
N_IN, N_OUT, N_DATA = 64, 10, 4096
WIDTHS = (32, 48, 64, 96, 128, 192, 256, 384)


# ---------------------------------------------------------------------- the loop
class Trainer:
    def __init__(self, hidden: int, batch: int = 32) -> None:
        import torch
        from torch import nn

        torch.set_num_threads(1)
        torch.manual_seed(0)
        self.torch = torch
        self.batch = batch
        self.model = nn.Sequential(nn.Linear(N_IN, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                   nn.ReLU(), nn.Linear(hidden, N_OUT))
        # SGD: no hidden .item() calls inside the optimizer, unlike Adam's step counters.
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(N_DATA, N_IN, generator=gen)
        self.y = torch.randint(0, N_OUT, (N_DATA,), generator=gen)
        self.steps = 0
        self.per_epoch = N_DATA // batch

    def step(self) -> dict[str, Any]:
        import torch.nn.functional as F  # noqa: N812

        t0 = time.perf_counter()
        s = self.steps
        j = (s % self.per_epoch) * self.batch
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x[j:j + self.batch]), self.y[j:j + self.batch])
        loss.backward()
        self.opt.step()
        self.steps = s + 1
        # What a training script logs each step: 5 scalars, computed in every variant.
        return {"train/loss": loss.item(), "train/lr": self.opt.param_groups[0]["lr"],
                "train/epoch": s // self.per_epoch, "train/samples": (s + 1) * self.batch,
                "perf/step_ms": (time.perf_counter() - t0) * 1e3}


def calibrate() -> tuple[int, float]:
    """The hidden width whose step costs closest to 1 ms of CPU on this machine."""
    best = (WIDTHS[0], 0.0)
    for width in WIDTHS:
        tr = Trainer(width)
        for _ in range(50):
            tr.step()
        c0 = time.thread_time()
        for _ in range(300):
            tr.step()
        ms = (time.thread_time() - c0) / 300 * 1e3
        if abs(ms - 1.0) < abs(best[1] - 1.0) or best[1] == 0.0:
            best = (width, ms)
        if ms > 1.0:
            break
    return best


# ---------------------------------------------------------------------- worker side
def _tree_cpu(procs: list[Any]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except Exception:  # psutil.NoSuchProcess and friends: it ended
            pass
    return total


def worker(variant: str, hidden: int) -> None:
    import psutil

    tr = Trainer(hidden)
    me = psutil.Process()
    run: Any = None
    log = None
    cursor_path: Path | None = None
    if variant == "steadyrun":
        import steadyrun

        run = steadyrun.init(mode="offline", project="bench", name="bench-loop")
        log = run.log
        cursor_path = run.dir / "sinks" / "wandb.cursor"
    elif variant == "local":
        import steadyrun

        run = steadyrun.init(mode="local", project="bench", name="bench-loop-local")
        log = run.log
    elif variant == "wandb":
        run = wandb_init(name="bench-loop-raw")
        log = run.log

    def background() -> list[Any]:
        """The sidecar and its wandb-core (steadyrun), or wandb-core (raw wandb)."""
        return me.children(recursive=True)

    def shipped() -> int:
        try:
            return int(json.loads(cursor_path.read_bytes()).get("rows", 0))
        except (FileNotFoundError, ValueError):
            return 0

    logged = 0

    def settle(deadline_s: float = 120.0) -> tuple[float, int]:
        """Wait for the background to finish its work; (seconds waited, rows behind)."""
        t0 = now()
        behind = 0
        if variant == "steadyrun":
            run.flush()
            behind = max(0, logged - shipped())
            while shipped() < logged and now() - t0 < deadline_s:
                time.sleep(0.05)
        if variant != "none":
            last = _tree_cpu(background())
            quiet = 0
            while now() - t0 < deadline_s and quiet < 3:
                time.sleep(0.1)
                cur = _tree_cpu(background())
                quiet = quiet + 1 if cur - last < 0.003 else 0
                last = cur
        return now() - t0, behind

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        n = int(cmd["steps"])
        bg = background()
        b0 = _tree_cpu(bg)
        pc = time.perf_counter
        step = tr.step
        inlog = 0.0
        w0, c0, t0 = now(), time.process_time(), time.thread_time()
        if log is None:
            for _ in range(n):
                step()
                t = pc()  # the same clock reads as the tracked loops
                inlog += pc() - t
        else:
            for _ in range(n):
                m = step()
                t = pc()
                log(m)
                inlog += pc() - t
        wall = now() - w0
        cpu = time.process_time() - c0
        other_threads = cpu - (time.thread_time() - t0)
        b1 = _tree_cpu(bg)
        logged += n if log is not None else 0
        waited, behind = settle()
        b2 = _tree_cpu(background())
        print(json.dumps({"wall": wall, "cpu": cpu, "in_log": inlog,
                          "other_threads_cpu": other_threads, "bg_cpu_block": b1 - b0,
                          "bg_cpu_total": b2 - b0, "settle_s": waited, "behind": behind,
                          "steps": n}), flush=True)
    if variant in ("steadyrun", "local"):
        run.finish(timeout=120)
    elif variant == "wandb":
        import wandb

        run.finish()
        wandb.teardown()


# ---------------------------------------------------------------------- coordinator
class Worker:
    def __init__(self, variant: str, hidden: int, env: dict[str, str]) -> None:
        self.variant = variant
        self.proc = subprocess.Popen(
            [PY, __file__, "--worker", variant, "--hidden", str(hidden)], env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
            start_new_session=True)
        self._read()

    def _read(self) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.variant} exited (code {self.proc.wait()})")
        return json.loads(line)

    def block(self, steps: int) -> dict[str, Any]:
        self.proc.stdin.write(json.dumps({"op": "go", "steps": steps}) + "\n")
        return self._read()

    def close(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        self.proc.wait(timeout=300)
        from bench_peers import settle

        settle(self.proc.pid)  # whatever it started (sidecar, wandb-core) has exited too


def main() -> None:
    args = parse_args(__doc__, lambda p: (p.add_argument("--worker", choices=VARIANTS),
                                          p.add_argument("--hidden", type=int, default=0)))
    if args.worker:
        worker(args.worker, args.hidden)
        return
    started = now()
    if skip_without("torch", args, {"b1": "training loop slowdown, wall clock (offline)",
                                    "b2": "training loop slowdown, wall clock (local)",
                                    "b3": "training loop overhead, direct",
                                    "b4": "background CPU per logged step"}, started):
        return
    base = workdir(args, "loop")
    env = bench_env(base)
    use_env(env)
    hidden, step_ms = calibrate()
    block = 50 if args.smoke else 200 if args.quick else 600
    # a fresh worker per block: 5 to 10 s each
    reps = 1 if args.smoke else 2 if args.quick else 8

    res: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    for r in range(reps):
        k = r % len(VARIANTS)
        for v in VARIANTS[k:] + VARIANTS[:k]:
            w = Worker(v, hidden, env)  # alone: the previous worker and its helpers are gone
            try:
                w.block(20 if args.smoke else 200)  # warm-up: slow path, caches fill
                res[v].append(w.block(block))
            finally:
                w.close()
    load = load_note()

    def paired(v: str, key: str) -> list[float]:
        return [(a[key] / b[key] - 1) * 100 for a, b in zip(res[v], res["none"], strict=True)]

    tracked = ("steadyrun", "local", "wandb")
    wall = {v: paired(v, "wall") for v in tracked}
    cpu = {v: paired(v, "cpu") for v in tracked}
    sw, lw, ww = median(wall["steadyrun"]), median(wall["local"]), median(wall["wandb"])
    sc, lc, wc = median(cpu["steadyrun"]), median(cpu["local"]), median(cpu["wandb"])
    qs = {v: quantiles(wall[v]) for v in wall}
    sps = {v: median(block / x["wall"] for x in res[v]) for v in VARIANTS}
    # Direct attribution: time inside the log call on the training thread plus the CPU of
    # the process's other threads (steadyrun's writer; wandb's own threads), against the
    # untracked step. Immune to the machine's noise, blind to indirect effects (caches).
    base_step = median(x["wall"] / x["steps"] for x in res["none"])
    base_cpu = median(x["cpu"] / x["steps"] for x in res["none"])
    direct = {}
    for v in tracked:
        in_log = median(x["in_log"] / x["steps"] for x in res[v])
        threads = median(max(0.0, x["other_threads_cpu"]) / x["steps"] for x in res[v])
        direct[v] = {"in_log_us": in_log * 1e6, "other_threads_us": threads * 1e6,
                     "pct": (in_log + threads) / base_cpu * 100}
    bg = {v: median(x["bg_cpu_total"] / x["steps"] * 1e6 for x in res[v]) for v in VARIANTS}
    behind = max(x["behind"] for x in res["steadyrun"])
    settle = median(x["settle_s"] for x in res["steadyrun"])
    target = "< 5 % (raw wandb > 15 %)"
    common = (f"MLP 64→{hidden}→{hidden}→10, batch 32, SGD, 1 torch thread, "
              f"{step_ms:.2f} ms CPU/step at calibration; {reps} repetitions × {block} steps "
              f"per variant, order rotated")
    ds, dw = direct["steadyrun"], direct["wandb"]
    rows = [
        row("b1", "training loop slowdown, wall clock, rotating blocks: 5 scalars logged every "
                  "step (steadyrun offline, sidecar shipping)",
            f"{sw:+.1f} %", f"raw wandb.log {ww:+.1f} %",
            f"{ww / sw:.0f}× less overhead" if sw > 0.5 else "—", target, sw < 5,
            note=f"{common}; paired slowdown p25–p75: steadyrun {qs['steadyrun']['p25']:+.1f} "
                 f"to {qs['steadyrun']['p75']:+.1f} %, wandb {qs['wandb']['p25']:+.1f} to "
                 f"{qs['wandb']['p75']:+.1f} %; on CPU time of the training process "
                 f"steadyrun {sc:+.1f} %, wandb {wc:+.1f} %; untracked {sps['none']:,.0f} "
                 f"steps/s wall, steadyrun {sps['steadyrun']:,.0f}, wandb {sps['wandb']:,.0f}",
            results=res, slowdown_wall=wall, slowdown_cpu=cpu, steps_per_s_wall=sps),
        row("b2", "training loop slowdown, wall clock, same blocks: steadyrun local mode (no "
                  "sidecar: the in-process cost alone)",
            f"{lw:+.1f} %", f"raw wandb.log {ww:+.1f} %",
            f"{ww / lw:.0f}× less overhead" if lw > 0.5 else "—", target, lw < 5,
            note=f"p25–p75 {qs['local']['p25']:+.1f} to {qs['local']['p75']:+.1f} %; CPU time "
                 f"of the training process {lc:+.1f} %. The gap to b1 is the sidecar and its "
                 f"wandb-core competing for this machine's {os.cpu_count()} CPUs (b4)"),
        row("b3", "training loop overhead, direct: time in the log call + the process's other "
                  "threads' CPU, ÷ untracked step",
            f"{ds['pct']:+.2f} %", f"raw wandb.log {dw['pct']:+.1f} %",
            f"{dw['pct'] / ds['pct']:.0f}× less overhead" if ds["pct"] > 0 else "—", target,
            ds["pct"] < 5,
            note=f"per step: steadyrun {ds['in_log_us']:.1f} µs in run.log + "
                 f"{ds['other_threads_us']:.1f} µs writer thread; wandb {dw['in_log_us']:.0f} "
                 f"µs in wandb.log + {dw['other_threads_us']:.0f} µs its threads; untracked "
                 f"step {base_cpu * 1e6:,.0f} µs CPU ({base_step * 1e6:,.0f} µs wall)",
            direct=direct),
        row("b4", "background CPU per logged step, outside the training process",
            f"sidecar + its wandb-core {bg['steadyrun']:,.0f} µs",
            f"wandb-core {bg['wandb']:,.0f} µs",
            note=f"sidecar at most {behind:,} rows behind at a block's end, caught up "
                 f"{settle:.2f} s after (median); W&B's own cost, moved out of training to "
                 f"another core", background_us_per_step=bg),
    ]
    emit(args, rows, started, load=load, cleanup=base)


if __name__ == "__main__":
    main()
