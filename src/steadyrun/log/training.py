"""Training-loop helpers and `run.log_training_step` (DESIGN.md section 5, seeds 003/004).

Why a helper at all: every team's wrapper logged loss, learning rate, gradient norm, AMP
scale and throughput by hand, calling `loss.item()` every step. On a GPU each such call
waits for the device to drain its queue, so the logging itself slowed training. Here
tensors stay on their device: `log_training_step` keeps each step's detached loss in a
list and, once per `log_interval` steps, stacks the interval's losses, the gradient norm
and the AMP scale and reads them with a single `.tolist()`. Steps in between cost a few
microseconds and never touch the device.

torch is imported lazily (these functions are only called by code that uses torch), so
`import steadyrun` stays free of it.
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from .deferred import is_tensor, read_tensors

GB = 1e9


# ---------------------------------------------------------------------- helpers
def compute_grad_norm(model_or_params: Any, norm_type: float = 2.0) -> Any:
    """The L2 norm over all gradients, as a 0-d tensor on the gradients' device.

    Returns a tensor (not a float) so that no host sync happens here; log it as is, or
    call `float()` when you need the number now. None when no parameter has a gradient.
    A DeepSpeed engine answers with its own global norm (a float), which is correct
    under ZeRO where each rank holds only a shard of the gradients.
    """
    engine_norm = getattr(model_or_params, "get_global_grad_norm", None)
    if callable(engine_norm):
        norm = engine_norm()
        if norm is not None:
            return norm
    import torch

    if isinstance(model_or_params, torch.nn.Module):
        params: Iterable[Any] = model_or_params.parameters()
    elif isinstance(model_or_params, torch.Tensor):
        params = [model_or_params]
    else:
        params = model_or_params
    grads = [p.grad for p in params if getattr(p, "grad", None) is not None]
    grads = [g for g in grads if not g.is_sparse]
    if not grads:
        return None
    total = getattr(torch.nn.utils, "get_total_norm", None)
    if total is not None:
        return total(grads, norm_type=norm_type)
    per_device = {}
    for g in grads:
        per_device.setdefault(g.device, []).append(torch.linalg.vector_norm(g, norm_type))
    first = next(iter(per_device))
    norms = [torch.stack(v).to(first) for v in per_device.values()]
    return torch.linalg.vector_norm(torch.cat([torch.linalg.vector_norm(n, norm_type)
                                               .reshape(1) for n in norms]), norm_type)


def get_learning_rate(optimizer: Any) -> float | list[float] | None:
    """The learning rate: one float when every param group agrees, else one per group.

    Accepts an optimizer (its `param_groups`) or an LR scheduler (`get_last_lr()`).
    """
    groups = getattr(optimizer, "param_groups", None)
    if groups is not None:
        lrs = [g.get("lr") for g in groups]
    elif callable(getattr(optimizer, "get_last_lr", None)):
        lrs = list(optimizer.get_last_lr())
    else:
        return None
    lrs = [float(lr) for lr in lrs if lr is not None]
    if not lrs:
        return None
    return lrs[0] if all(lr == lrs[0] for lr in lrs) else lrs


def get_amp_scale(scaler: Any) -> float | None:
    """The current loss scale of a GradScaler (a host sync); None when it is disabled."""
    if scaler is None or not getattr(scaler, "is_enabled", lambda: True)():
        return None
    return float(scaler.get_scale())


def _amp_scale_lazy(scaler: Any) -> Any:
    """The scale as a device tensor when the scaler exposes one, so no sync happens here."""
    if scaler is None or not getattr(scaler, "is_enabled", lambda: True)():
        return None
    get_async = getattr(scaler, "_get_scale_async", None)
    if callable(get_async):
        scale = get_async()
        if scale is not None:
            return scale
    return get_amp_scale(scaler)


_nvml: Any = None
_nvml_failed = False


def _nvml_handle(torch: Any, index: int) -> Any:
    """NVML's handle of CUDA device `index`, matched by PCI bus id (CUDA_VISIBLE_DEVICES)."""
    global _nvml, _nvml_failed
    if _nvml_failed:
        return None
    try:
        if _nvml is None:
            import pynvml

            pynvml.nvmlInit()
            _nvml = pynvml
        props = torch.cuda.get_device_properties(index)
        bus = getattr(props, "pci_bus_id", None)
        if bus is not None:
            pci = (f"{getattr(props, 'pci_domain_id', 0):08x}:{bus:02x}:"
                   f"{getattr(props, 'pci_device_id', 0):02x}.0")
            return _nvml.nvmlDeviceGetHandleByPciBusId(pci)
        return _nvml.nvmlDeviceGetHandleByIndex(index)
    except Exception:  # no nvidia-ml-py, no driver, or an old one: torch's numbers only
        _nvml_failed = True
        return None


def get_gpu_stats(device: int | None = None) -> dict[str, float]:
    """`gpu/*` numbers of the current (or given) CUDA device; {} without a GPU in use.

    Memory comes from torch's allocator (`memory_used_gb`: allocated now,
    `memory_peak_gb`: the peak, `memory_reserved_gb`: held by the cache), utilisation,
    temperature and power from nvidia-ml-py when it is installed. Nothing here
    synchronises the device, and CUDA is never initialised by this call: a process that
    has not used its GPU gets {}.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return {}
    try:
        if not (torch.cuda.is_available() and torch.cuda.is_initialized()):
            return {}
        index = torch.cuda.current_device() if device is None else int(device)
        stats: dict[str, float] = {
            "gpu/memory_used_gb": torch.cuda.memory_allocated(index) / GB,
            "gpu/memory_peak_gb": torch.cuda.max_memory_allocated(index) / GB,
            "gpu/memory_reserved_gb": torch.cuda.memory_reserved(index) / GB,
        }
    except Exception:
        return {}
    handle = _nvml_handle(torch, index)
    if handle is not None:
        nv = _nvml
        for key, read in (
                ("gpu/utilization", lambda: nv.nvmlDeviceGetUtilizationRates(handle).gpu),
                ("gpu/temperature", lambda: nv.nvmlDeviceGetTemperature(handle, 0)),
                ("gpu/power_w", lambda: nv.nvmlDeviceGetPowerUsage(handle) / 1000.0)):
            try:
                stats[key] = float(read())
            except Exception:  # a counter this GPU or driver does not offer
                pass
    return stats


def set_seeds(seed: int, deterministic: bool = False,
              torch: bool | None = None) -> dict[str, Any]:
    """Seed Python, NumPy, PyTorch and CUDA; return what was set, for the run to record.

    `deterministic=True` also asks PyTorch for deterministic kernels (cuDNN without
    autotuning, `use_deterministic_algorithms` in warn-only mode, and the cuBLAS
    workspace setting it needs). The seeds go into the run's metadata (config key
    `steadyrun.seeds`), also when this is called after `steadyrun.init`. `torch=False`
    spares NumPy-only code the second it takes to import PyTorch.
    """
    seed = int(seed)
    seeds: dict[str, Any] = {"seed": seed, "python": seed}
    random.seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % 2**32)
        seeds["numpy"] = seed % 2**32
    except ImportError:
        pass
    use_torch, torch = torch, None
    if use_torch is not False:  # None: whenever PyTorch is installed; False: NumPy-only code
        try:
            import torch
        except ImportError:
            torch = None
    if torch is not None:
        torch.manual_seed(seed)  # seeds every CUDA device too, lazily
        seeds["torch"] = seed
        if torch.cuda.is_available():
            torch.cuda.manual_seed_all(seed)
            seeds["cuda"] = seed
        if deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False
            torch.use_deterministic_algorithms(True, warn_only=True)
    seeds["deterministic"] = bool(deterministic)
    from . import metadata

    metadata.note_seeds(seeds)  # the metadata of this process's runs, now and later
    return seeds


# ---------------------------------------------------------------------- the step logger
class StepLogger:
    """The state behind `run.log_training_step`: one per Run, created on first use.

    It acts for the Run through three callables only: `log` (Run.log), `reject` (the
    bad-input rule) and `after_step(step, model, prefix)` (model size and `watch`).
    """

    def __init__(self, log: Callable[..., None], reject: Callable[..., None],
                 after_step: Callable[[int, Any, str], None], prefix: str = "", *,
                 every: int = 10, gpu_every: int = 100) -> None:
        self.log = log
        self.reject = reject
        self.after_step = after_step
        self.prefix = f"{prefix.strip('/')}/" if prefix else ""
        self.every = max(1, int(every or 10))
        self.gpu_every = max(1, int(gpu_every or 100))
        self.losses: dict[str, list[Any]] = {}
        self.calls = 0
        self.samples = 0
        self.t_last: float | None = None
        self.next_row: int | None = None
        self.next_gpu: int | None = None
        self.last_step: int | None = None
        self.last: tuple[Any, Any, Any] = (None, None, None)
        self._gpu = None  # decided on the first call: does this process use a GPU?

    def __call__(self, loss: Any, step: int, batch_size: int | None, optimizer: Any,
                 model: Any, scaler: Any) -> None:
        step = int(step)
        if isinstance(loss, Mapping):
            for name, value in loss.items():
                self._add(str(name), value)
        else:
            self._add("total", loss)
        self.calls += 1
        if batch_size:
            self.samples += int(batch_size)
        self.last_step = step
        self.last = (optimizer, model, scaler)
        row_due = self.next_row is None or step >= self.next_row
        gpu_due = self._gpu_due(step)
        row = self._row(step, optimizer, model, scaler) if row_due else {}
        if gpu_due:
            row.update(get_gpu_stats())
            self.next_gpu = (step // self.gpu_every + 1) * self.gpu_every
        if row:
            self._emit(row, step)
        self.after_step(step, model, self.prefix)

    def _add(self, name: str, value: Any) -> None:
        bucket = self.losses.get(name)
        if bucket is None:
            bucket = self.losses[name] = []
        if is_tensor(value):
            if value.numel() != 1:
                self.reject(f"loss/{name}", value, f"tensor of shape {tuple(value.shape)} "
                                                      f"is not a scalar loss")
                return
            value = value.detach()
        bucket.append(value)

    def _gpu_due(self, step: int) -> bool:
        if self._gpu is None:
            torch = sys.modules.get("torch")
            self._gpu = bool(torch is not None and torch.cuda.is_available())
        return self._gpu and (self.next_gpu is None or step >= self.next_gpu)

    def _row(self, step: int, optimizer: Any, model: Any, scaler: Any) -> dict[str, Any]:
        """The interval's row: one host transfer for all of its tensors."""
        self.next_row = (step // self.every + 1) * self.every
        keys: list[str] = []
        pending: list[Any] = []
        losses = self._loss_means()
        if "total" not in losses and losses:
            parts = list(losses.values())
            losses["total"] = parts[0] if len(parts) == 1 else _sum(parts)
        for name in ["total", *(n for n in losses if n != "total")]:
            if name in losses:
                keys.append(f"loss/{name}")
                pending.append(losses[name])
        lr = get_learning_rate(optimizer) if optimizer is not None else None
        if isinstance(lr, list):
            for i, value in enumerate(lr):
                keys.append(f"train/lr/group{i}")
                pending.append(value)
        elif lr is not None:
            keys.append("train/lr")
            pending.append(lr)
        if model is not None:
            norm = compute_grad_norm(model)
            if norm is not None:
                keys.append("train/grad_norm")
                pending.append(norm)
        scale = _amp_scale_lazy(scaler)
        if scale is not None:
            keys.append("train/amp_scale")
            pending.append(scale)
        row = dict(zip(keys, _numbers(pending), strict=True))
        now = time.perf_counter()  # after the read: the device has caught up
        if self.t_last is not None and now > self.t_last:
            elapsed = now - self.t_last
            row["perf/steps_per_sec"] = self.calls / elapsed
            if self.samples:
                from .distributed import rank_info

                row["perf/samples_per_sec"] = self.samples * rank_info()[1] / elapsed
        self.t_last = now
        self.calls = self.samples = 0
        return row

    def _loss_means(self) -> dict[str, Any]:
        means: dict[str, Any] = {}
        for name, values in self.losses.items():
            if values:
                means[name] = values[0] if len(values) == 1 else _mean(values)
        self.losses = {}
        return means

    def _emit(self, row: dict[str, Any], step: int) -> None:
        """A prefix (a pipeline stage) gives every key its own namespace and step axis."""
        if self.prefix:
            row = {self.prefix + k: v for k, v in row.items()}
        self.log(row, step=step)

    def close(self) -> None:
        """At finish: the steps since the last row get a final row at the last step."""
        if self.last_step is not None and any(self.losses.values()):
            self._emit(self._row(self.last_step, *self.last), self.last_step)


def _mean(values: list[Any]) -> Any:
    """Mean of floats and same-device tensors, computed on the device (no sync)."""
    tensors = [v for v in values if is_tensor(v)]
    if not tensors:
        return sum(float(v) for v in values) / len(values)
    import torch

    device = tensors[0].device
    stacked = torch.stack([t.to(device, torch.float32) for t in tensors]).sum()
    rest = sum(float(v) for v in values if not is_tensor(v))
    return (stacked + rest) / len(values)


def _sum(values: list[Any]) -> Any:
    total: Any = 0.0
    for v in values:
        total = total + (v.to(values[0].device) if is_tensor(v) and is_tensor(values[0]) else v)
    return total


def _numbers(values: list[Any]) -> list[Any]:
    """Floats for a mix of numbers and tensors: one `.tolist()` per device."""
    idx = [i for i, v in enumerate(values) if is_tensor(v)]
    out = list(values)
    if idx:
        read = read_tensors([values[i].detach().reshape(()).float() for i in idx])
        for i, num in zip(idx, read, strict=True):
            out[i] = num
    return [float(v) if not isinstance(v, bool) else v for v in out]
