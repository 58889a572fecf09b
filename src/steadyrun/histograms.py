"""Histograms of values, parameters and gradients (seed 003's `wandb.watch` use).

Why here and not in W&B: the histogram is computed where the tensor lives, so a model's
parameters and gradients cost one host transfer per interval for all of them together,
not one per tensor, and the local log keeps the bins (counts and edges) whatever W&B
does. The sink turns each one into a `wandb.Histogram`.

Non-finite values are left out of the bins and counted (`nonfinite`); an input with no
finite value is rejected like any bad value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .deferred import is_tensor
from .values import Rejected

MAX_BINS = 512  # W&B's limit for one histogram
WATCH_LOG = ("parameters", "gradients", "all")


def _bins(key: str, bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= MAX_BINS:
        raise Rejected(key, f"bins must be an int from 1 to {MAX_BINS}, got {bins!r}",
                       ValueError)
    return bins


def of_values(key: str, values: Any, bins: int = 64) -> dict[str, Any]:
    """One histogram of numbers: a tensor (on its device), an array or a sequence."""
    return of_many({key: values}, bins)[key]


def of_many(named: Mapping[str, Any], bins: int = 64) -> dict[str, dict[str, Any]]:
    """Histograms of several inputs; all tensors are read back in one transfer per device."""
    out: dict[str, dict[str, Any]] = {}
    tensors: dict[str, Any] = {}
    for key, values in named.items():
        _bins(key, bins)
        if is_tensor(values):
            tensors[key] = values
        else:
            out[key] = _of_sequence(key, values, bins)
    if tensors:
        out.update(_of_tensors(tensors, bins))
    return {key: out[key] for key in named}


def _of_sequence(key: str, values: Any, bins: int) -> dict[str, Any]:
    import numpy as np

    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise Rejected(key, f"a histogram needs numbers: {exc}", TypeError) from None
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        raise Rejected(key, "a histogram needs at least one finite value", ValueError)
    counts, edges = np.histogram(finite, bins=bins)
    return {"counts": counts.tolist(), "edges": edges.tolist(),
            "nonfinite": int(arr.size - finite.size)}


def _of_tensors(tensors: Mapping[str, Any], bins: int) -> dict[str, dict[str, Any]]:
    """Binned on each tensor's device with no host sync (no boolean indexing, no
    `bincount`, no Python-float bounds), then one `.tolist()` per device for all."""
    import torch

    by_device: dict[Any, list[tuple[str, Any]]] = {}
    for key, t in tensors.items():
        if t.is_complex() or t.dtype == torch.bool:
            raise Rejected(key, f"a histogram needs real numbers, got a {t.dtype} tensor",
                           TypeError)
        if t.numel() == 0:
            raise Rejected(key, "a histogram needs at least one finite value", ValueError)
        by_device.setdefault(t.device, []).append((key, t))
    out: dict[str, dict[str, Any]] = {}
    for items in by_device.values():
        with torch.no_grad():
            rows = [_binned(torch, t, bins) for _, t in items]
            host = torch.stack(rows).tolist()  # the one transfer for this device
        for (key, _), row in zip(items, host, strict=True):
            counts, lo, hi, nonfinite, n = row[:bins], row[bins], row[bins + 1], row[-2], row[-1]
            if n == 0:
                raise Rejected(key, "a histogram needs at least one finite value", ValueError)
            out[key] = {"counts": [int(c) for c in counts], "edges": _edges(lo, hi, bins),
                        "nonfinite": int(nonfinite)}
    return out


def _binned(torch: Any, t: Any, bins: int) -> Any:
    """[counts..., low edge, high edge, non-finite count, finite count] on t's device."""
    flat = t.detach().reshape(-1).to(torch.float32)
    ok = torch.isfinite(flat)
    inf = flat.new_tensor(float("inf"))
    lo = torch.where(ok, flat, inf).min()
    hi = torch.where(ok, flat, -inf).max()
    same = hi <= lo  # one value: a unit-wide range around it, like numpy
    lo, hi = torch.where(same, lo - 0.5, lo), torch.where(same, hi + 0.5, hi)
    pos = (torch.where(ok, flat, lo) - lo) / (hi - lo) * bins
    idx = torch.nan_to_num(pos.floor(), nan=0.0).clamp(0, bins - 1).to(torch.int64)
    counts = flat.new_zeros(bins).scatter_add_(0, idx, ok.to(torch.float32))
    n = ok.sum().to(torch.float32)
    return torch.cat([counts, torch.stack([lo, hi, flat.numel() - n, n])])


def _edges(lo: float, hi: float, bins: int) -> list[float]:
    step = (hi - lo) / bins
    return [lo + i * step for i in range(bins)] + [hi]
