"""Histograms of values, parameters and gradients (seed 003's `wandb.watch` use).

Why here and not in W&B: the histogram is computed where the tensor lives, so a model's
parameters and gradients cost one host transfer per interval for all of them together,
not one per tensor, and the local log keeps the bins (counts and edges) whatever W&B
does. The sink turns each one into a `wandb.Histogram`.

Non-finite values are left out of the bins and counted (`nonfinite`); an input with no
finite value is rejected like any bad value. Bins are computed in float64 (float32 on
devices without it) and counted in int64, so huge values and huge tensors bin like
numpy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..store.values import Rejected
from .deferred import is_tensor

MAX_BINS = 512  # W&B's limit for one histogram
WATCH_LOG = ("parameters", "gradients", "all")


def check_bins(key: str, bins: Any) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int) or not 1 <= bins <= MAX_BINS:
        raise Rejected(key, f"bins must be an int from 1 to {MAX_BINS}, got {bins!r}",
                       ValueError)
    return bins


def of_many(named: Mapping[str, Any], bins: int = 64
            ) -> tuple[dict[str, dict[str, Any]], list[Rejected]]:
    """(histograms, rejections): one bad input never costs the others theirs, and all
    tensors of a device are read back in one transfer."""
    out: dict[str, dict[str, Any]] = {}
    bad: list[Rejected] = []
    tensors: dict[str, Any] = {}
    for key, values in named.items():
        try:
            if is_tensor(values):
                tensors[key] = _checked_tensor(key, values)
            else:
                out[key] = _of_sequence(key, values, bins)
        except Rejected as exc:
            bad.append(exc)
    if tensors:
        hists, empty = _of_tensors(tensors, bins)
        out.update(hists)
        bad.extend(empty)
    return {key: out[key] for key in named if key in out}, bad


def _of_sequence(key: str, values: Any, bins: int) -> dict[str, Any]:
    import numpy as np

    try:
        arr = np.asarray(values, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise Rejected(key, f"a histogram needs numbers: {exc}", TypeError) from None
    finite = arr[np.isfinite(arr)]
    if finite.size == 0:
        raise Rejected(key, "a histogram needs at least one finite value", ValueError)
    try:
        with np.errstate(all="ignore"):
            counts, edges = np.histogram(finite, bins=bins)
    except ValueError as exc:  # a range too wide for float64 bins
        raise Rejected(key, f"cannot bin these values: {exc}", ValueError) from None
    return {"counts": counts.tolist(), "edges": edges.tolist(),
            "nonfinite": int(arr.size - finite.size)}


def _checked_tensor(key: str, t: Any) -> Any:
    import torch

    if t.is_complex() or t.dtype == torch.bool:
        raise Rejected(key, f"a histogram needs real numbers, got a {t.dtype} tensor",
                       TypeError)
    if t.layout != torch.strided:
        raise Rejected(key, f"a {t.layout} tensor is not histogrammed (its implicit zeros "
                            f"would be left out)", TypeError)
    if t.numel() == 0:
        raise Rejected(key, "a histogram needs at least one finite value", ValueError)
    return t


def _of_tensors(tensors: Mapping[str, Any], bins: int
                ) -> tuple[dict[str, dict[str, Any]], list[Rejected]]:
    """Binned on each tensor's device with no host sync (no boolean indexing, no
    `bincount`, no host scalars), then one `.tolist()` per device for all."""
    import torch

    by_device: dict[Any, list[tuple[str, Any]]] = {}
    for key, t in tensors.items():
        by_device.setdefault(t.device, []).append((key, t))
    out: dict[str, dict[str, Any]] = {}
    bad: list[Rejected] = []
    for device, items in by_device.items():
        dtype = torch.float32 if device.type == "mps" else torch.float64
        with torch.no_grad():
            rows = [_binned(torch, t, bins, dtype) for _, t in items]
            host = torch.stack(rows).tolist()  # the one transfer for this device
        for (key, _), row in zip(items, host, strict=True):
            counts, lo, hi, nonfinite, n = row[:bins], row[bins], row[bins + 1], row[-2], row[-1]
            if n == 0:
                bad.append(Rejected(key, "a histogram needs at least one finite value",
                                    ValueError))
                continue
            out[key] = {"counts": [int(c) for c in counts], "edges": _edges(lo, hi, bins),
                        "nonfinite": int(nonfinite)}
    return out, bad


def _binned(torch: Any, t: Any, bins: int, dtype: Any) -> Any:
    """[counts..., low edge, high edge, non-finite count, finite count] on t's device."""
    flat = t.detach().reshape(-1).to(dtype)
    ok = torch.isfinite(flat)
    inf = torch.full((), float("inf"), dtype=dtype, device=flat.device)  # no host copy
    lo = torch.where(ok, flat, inf).min()
    hi = torch.where(ok, flat, -inf).max()
    same = hi <= lo  # one value: a unit-wide range around it, like numpy
    lo, hi = torch.where(same, lo - 0.5, lo), torch.where(same, hi + 0.5, hi)
    # (x - lo) / (hi - lo) in two steps: hi - lo can overflow where each part does not
    pos = ((torch.where(ok, flat, lo) / 2 - lo / 2) / (hi / 2 - lo / 2)) * bins
    idx = torch.nan_to_num(pos.floor(), nan=0.0).clamp(0, bins - 1).to(torch.int64)
    counts = torch.zeros(bins, dtype=torch.int64, device=flat.device)
    counts.scatter_add_(0, idx, ok.to(torch.int64))
    n = ok.sum()
    tail = torch.stack([lo, hi, (flat.numel() - n).to(dtype), n.to(dtype)])
    return torch.cat([counts.to(dtype), tail])


def _edges(lo: float, hi: float, bins: int) -> list[float]:
    step = hi / bins - lo / bins  # each part finite even where hi - lo is not
    return [lo + i * step for i in range(bins)] + [hi]
