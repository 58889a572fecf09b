"""Tensors logged with `run.log`, read from their device once per interval, not per call.

Why: turning a CUDA tensor into a Python number (`.item()`, `float()`, `.cpu()`) blocks
the training thread until the GPU has finished all queued work. Done on every step, it
serialises the CPU and the GPU and can cost a large share of a step's time. So a tensor
value is only copied on its own device when it is logged (a detached clone: no sync, and
later in-place edits of the caller's tensor cannot change the logged value), and the rows
that hold tensors wait in a buffer. Every `log_interval` such rows (or after `MAX_AGE`
seconds, or at `flush()`/`finish()`), all their tensors are stacked per device and read
with one `.tolist()`: one host transfer for the whole interval. Each row keeps the step
and the timestamp of its `log` call, so nothing about it changes but when it is written.
"""

from __future__ import annotations

import sys
from typing import Any

from ..store.records import encode, row
from ..store.values import Rejected, nonfinite_tag

MAX_AGE = 30.0  # seconds a buffered row may wait for its interval to fill


# A CPU tensor has no device queue to wait for: reading it at once (`.item()`, about a
# microsecond) is cheaper than holding a copy. Tests set this to exercise the deferral on
# machines without an accelerator.
DEFER_CPU = False


def is_tensor(value: Any) -> bool:
    """A torch tensor (subclasses included), decided without importing torch."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def deferrable(value: Any) -> bool:
    """A tensor whose read would wait on a device (CUDA, MPS, XLA...): hold it instead."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor) and (
        DEFER_CPU or value.device.type != "cpu")


def hold(key: str, value: Any) -> Any:
    """A private 0-d copy of a one-element tensor, on its device, without reading it."""
    if value.numel() != 1:
        raise Rejected(key, f"tensor of shape {tuple(value.shape)} is not a scalar")
    if value.is_complex():
        raise Rejected(key, f"complex tensor ({value.dtype}) is not a real number")
    held = value.detach()
    return (held if held.dim() == 0 else held.reshape(())).clone()


class DeferredRows:
    """The rows of one Run that hold tensors, in call order, until they are read."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, float, dict[str, Any], dict[str, str] | None]] = []
        self._oldest = 0.0

    def add(self, x: int, t: float, values: dict[str, Any], nf: dict[str, str] | None,
            every: int) -> bool:
        """Buffer a row; True when the buffer is due to be read."""
        if not self.rows:
            self._oldest = t
        self.rows.append((x, t, values, nf))
        return len(self.rows) >= every or t - self._oldest >= MAX_AGE

    def take(self) -> list[tuple[int, float, dict[str, Any], dict[str, str] | None]]:
        rows, self.rows = self.rows, []
        return rows

    def __len__(self) -> int:
        return len(self.rows)


def read_tensors(tensors: list[Any]) -> list[Any]:
    """Python numbers for 0-d tensors: one `.tolist()` per (device, kind) group.

    Floating tensors of mixed dtypes are read as float64 (float32 on MPS, which lacks
    float64); integer and bool tensors keep exact values. A run on one device with float
    losses makes exactly one host transfer here.
    """
    torch = sys.modules["torch"]  # a tensor exists, so torch is imported: no import here

    out: list[Any] = [None] * len(tensors)
    groups: dict[tuple[Any, str], list[int]] = {}
    for i, t in enumerate(tensors):
        kind = "f" if t.is_floating_point() else ("b" if t.dtype == torch.bool else "i")
        groups.setdefault((t.device, kind), []).append(i)
    for (device, kind), idx in groups.items():
        items = [tensors[i] for i in idx]
        dtypes = {t.dtype for t in items}
        if len(dtypes) > 1:
            common = {"f": torch.float32 if device.type == "mps" else torch.float64,
                      "i": torch.int64, "b": torch.bool}[kind]
            items = [t.to(common) for t in items]
        numbers = torch.stack(items).tolist()  # the one host transfer of this group
        for i, num in zip(idx, numbers, strict=True):
            out[i] = num
    return out


def materialise(rows: list[tuple[int, float, dict[str, Any], dict[str, str] | None]]
                ) -> list[bytes]:
    """Encoded row records with every held tensor replaced by its number."""
    where: list[tuple[int, str]] = []
    tensors: list[Any] = []
    for i, (_, _, values, _) in enumerate(rows):
        for k, v in values.items():
            if is_tensor(v):
                where.append((i, k))
                tensors.append(v)
    numbers = read_tensors(tensors) if tensors else []
    for (i, k), num in zip(where, numbers, strict=True):
        x, t, values, nf = rows[i]
        if type(num) is float and num - num != 0.0:
            nf = dict(nf or {})
            nf[k] = nonfinite_tag(num)
            rows[i] = (x, t, values, nf)
            num = None
        values[k] = num
    return [encode(row(x, t, values, nf)) for x, t, values, nf in rows]
