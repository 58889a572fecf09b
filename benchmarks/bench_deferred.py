"""(g) Deferred tensors: host-device syncs per 1,000 steps, against `loss.item()` every step.

Counted on the CPU, where every sync is visible even though it costs nothing: a torch
function mode counts the calls that turn a tensor into a Python value (`.item()`,
`.tolist()`, `.cpu()`, `.numpy()`, `float()`, `int()`, `bool()`), and notes at which
step each happened. The same small MLP trains 1,000 steps in each variant:

  item        `loss.item()` every step, the usual hand-written logging (the baseline)
  log_tensor  `run.log({"train/loss": loss})`: the tensor itself handed to run.log
  step        `run.log_training_step(loss, step, batch_size, optimizer, model)`

"Zero per-step syncs" means: syncs happen only when an interval's row is read (at
most one step in `log_interval` has any), never on the steps in between. Where
`Run.log_training_step` does not exist yet, its rows say so and are skipped.

With a CUDA GPU (torch.cuda.is_available()), the variants are also timed on it, the
model large enough that the GPU has queued work to lose, and the GPU's utilisation is
sampled with nvidia-ml-py when installed.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from _common import (
    bench_env,
    emit,
    load_note,
    median,
    now,
    parse_args,
    row,
    skip_without,
    use_env,
    workdir,
)

SYNC_OPS = frozenset(("item", "tolist", "cpu", "numpy", "__float__", "__int__", "__bool__",
                      "__index__", "__complex__"))
STEPS = 1000
LOG_INTERVAL = 10


def sync_counter() -> Any:
    from torch.overrides import TorchFunctionMode

    class SyncCounter(TorchFunctionMode):
        """Counts tensor-to-host reads, and the steps they happened on."""

        def __init__(self) -> None:
            super().__init__()
            self.step = 0
            self.calls: dict[str, int] = {}
            self.steps_with_sync: set[int] = set()

        def __torch_function__(self, func, types, args=(), kwargs=None):
            name = getattr(func, "__name__", "")
            if name in SYNC_OPS:
                self.calls[name] = self.calls.get(name, 0) + 1
                self.steps_with_sync.add(self.step)
            return func(*args, **(kwargs or {}))

    return SyncCounter()


class Model:
    def __init__(self, device: str, width: int) -> None:
        import torch
        from torch import nn

        torch.manual_seed(0)
        self.torch = torch
        self.model = nn.Sequential(nn.Linear(64, width), nn.ReLU(), nn.Linear(width, width),
                                   nn.ReLU(), nn.Linear(width, 10)).to(device)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9)
        gen = torch.Generator().manual_seed(0)
        self.x = torch.randn(64 * 32, 64, generator=gen).to(device)
        self.y = torch.randint(0, 10, (64 * 32,), generator=gen).to(device)

    def step(self, s: int) -> Any:
        import torch.nn.functional as F  # noqa: N812

        j = (s % 64) * 32
        self.opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(self.model(self.x[j:j + 32]), self.y[j:j + 32])
        loss.backward()
        self.opt.step()
        return loss


def loop(variant: str, m: Model, run: Any, steps: int, counter: Any = None,
         start: int = 0) -> None:
    for s in range(start, start + steps):
        if counter is not None:
            counter.step = s
        loss = m.step(s)
        if variant == "item":
            loss.item()
        elif variant == "log_tensor":
            run.log({"train/loss": loss})
        elif variant == "step":
            run.log_training_step(loss, s, batch_size=32, optimizer=m.opt, model=m.model)


def new_run(name: str) -> Any:
    import steadyrun

    return steadyrun.init(mode="local", project="bench", name=f"bench-deferred-{name}",
                          log_interval=LOG_INTERVAL)


def count(variant: str, steps: int) -> dict[str, Any]:
    """Syncs of one variant per 1,000 steps (measured over `steps`), in a run of its own."""
    run = new_run(variant)
    m = Model("cpu", 64)
    loop(variant, m, run, 20)  # warm-up, not counted
    counter = sync_counter()
    with counter:
        loop(variant, m, run, steps, counter, start=20)
    run.finish()
    scale = STEPS / steps
    return {"syncs": round(sum(counter.calls.values()) * scale),
            "steps_with_sync": round(len(counter.steps_with_sync) * scale),
            "calls": {k: round(v * scale) for k, v in counter.calls.items()},
            "measured_steps": steps}


class UtilSampler:
    """GPU utilisation (%) from nvidia-ml-py every 50 ms, when it is installed."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        try:
            import pynvml

            pynvml.nvmlInit()
            self._handle = pynvml.nvmlDeviceGetHandleByIndex(0)
            self._nv = pynvml
        except Exception:
            self._handle = None
            return
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.05):
            self.samples.append(float(self._nv.nvmlDeviceGetUtilizationRates(self._handle).gpu))

    def stop(self) -> float | None:
        if self._handle is None:
            return None
        self._stop.set()
        self._thread.join()
        return median(self.samples) if self.samples else None


def gpu_times(variants: list[str], quick: bool) -> dict[str, dict[str, Any]]:
    import torch

    m = Model("cuda", 1024 if quick else 2048)
    steps = 300 if quick else STEPS
    reps = 2 if quick else 5
    runs = {v: new_run(f"gpu-{v}") for v in variants}
    at = dict.fromkeys(variants, 0)  # each run's next step: steps only go forward
    out: dict[str, dict[str, Any]] = {v: {"s": [], "util": []} for v in variants}
    for v in variants:
        loop(v, m, runs[v], 50, start=at[v])
        at[v] += 50
    torch.cuda.synchronize()
    for r in range(reps):
        order = variants[r % len(variants):] + variants[:r % len(variants)]
        for v in order:
            # No run's writer may still be encoding the last block's rows while this one
            # is timed (the baseline included): all runs are local, without a sidecar.
            for run in runs.values():
                run.flush()
            sampler = UtilSampler()
            t0 = now()
            loop(v, m, runs[v], steps, start=at[v])
            torch.cuda.synchronize()
            out[v]["s"].append((now() - t0) / steps)
            at[v] += steps
            util = sampler.stop()
            if util is not None:
                out[v]["util"].append(util)
    for run in runs.values():
        run.finish()
    return {v: {"step_ms": median(d["s"]) * 1e3,
                "util": median(d["util"]) if d["util"] else None} for v, d in out.items()}


def main() -> None:
    args = parse_args(__doc__)
    started = now()
    if skip_without("torch", args, {"g1": "host-device syncs: run.log_training_step",
                                    "g2": "host-device syncs: run.log(tensor)",
                                    "g3": "step time on a GPU"}, started):
        return
    base = workdir(args, "deferred")
    use_env(bench_env(base))
    import torch

    import steadyrun

    torch.set_num_threads(1)
    has_step = hasattr(steadyrun.Run, "log_training_step")
    steps = 300 if args.quick else STEPS
    res: dict[str, dict[str, Any]] = {"item": count("item", steps)}
    # On the CPU steadyrun reads a tensor given to run.log at once (it has no device queue
    # to wait for); its test switch makes it defer as it does on a GPU, to count that path.
    deferred_mod = sys.modules.get("steadyrun.log.deferred")
    forced = deferred_mod is not None and hasattr(deferred_mod, "DEFER_CPU")
    if forced:
        deferred_mod.DEFER_CPU = True
    try:
        res["log_tensor"] = count("log_tensor", steps)
    finally:
        if forced:
            deferred_mod.DEFER_CPU = False
    if has_step:
        res["step"] = count("step", steps)
    intervals = STEPS // LOG_INTERVAL
    cuda = torch.cuda.is_available()
    gpu: dict[str, dict[str, Any]] = {}
    if cuda:
        gpu = gpu_times(["item", "log_tensor"] + (["step"] if has_step else []), args.quick)
    load = load_note()

    base_syncs = res["item"]["syncs"]
    rows = []
    if has_step:
        st = res["step"]
        rows.append(row(
            "g1", "host-device syncs per 1,000 steps: run.log_training_step (loss, lr, grad "
                  "norm, throughput)",
            f"{st['syncs']} syncs, on {st['steps_with_sync']} steps",
            f"loss.item() every step: {base_syncs} syncs",
            f"{base_syncs / max(st['syncs'], 1):.0f}× fewer",
            "zero per-step syncs", st["steps_with_sync"] <= intervals + 1,
            note=f"log_interval={LOG_INTERVAL}: at most one read per interval "
                 f"({intervals} intervals); ops counted {st['calls'] or 'none'}",
            counts=res))
    else:
        rows.append(row(
            "g1", "host-device syncs per 1,000 steps: run.log_training_step",
            "skipped: Run.log_training_step not present yet",
            f"loss.item() every step: {base_syncs} syncs", target="zero per-step syncs",
            met=None, counts=res))
    lt = res["log_tensor"]
    rows.append(row(
        "g2", "host-device syncs per 1,000 steps: run.log({\"train/loss\": loss_tensor})",
        f"{lt['syncs']} syncs, on {lt['steps_with_sync']} steps",
        f"loss.item() every step: {base_syncs} syncs",
        f"{base_syncs / max(lt['syncs'], 1):.0f}× fewer",
        note=f"a tensor handed to run.log is held on its device and read once per "
             f"{LOG_INTERVAL} rows"
             + (" (deferral forced on the CPU with steadyrun.log.deferred.DEFER_CPU, as it is on a "
                "GPU; on the CPU run.log reads a tensor at once, about 1 µs)" if forced else "")
             + f"; ops counted {lt['calls'] or 'none'}"))
    if cuda:
        names = torch.cuda.get_device_name(0)
        b = gpu["item"]
        best = gpu.get("step", gpu["log_tensor"])
        which = "log_training_step" if "step" in gpu else "run.log(tensor)"
        util = (f"; GPU utilisation {best['util']:.0f} % vs {b['util']:.0f} %"
                if best["util"] is not None and b["util"] is not None else "")
        rows.append(row(
            "g3", f"step time on the GPU ({names}): {which} vs loss.item() every step",
            f"{best['step_ms']:.3f} ms/step", f"loss.item() {b['step_ms']:.3f} ms/step",
            f"{b['step_ms'] / best['step_ms']:.2f}× faster",
            note=f"median of interleaved repeats{util}", gpu=gpu))
    else:
        rows.append(row("g3", "step time and utilisation on a GPU",
                        "skipped: no CUDA GPU on this machine", "—",
                        note="run this script on a machine with a GPU to fill the row"))
    emit(args, rows, started, load=load, cleanup=base)


if __name__ == "__main__":
    main()
