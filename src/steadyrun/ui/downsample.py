"""Series thinned for drawing, without hiding a spike.

A chart is about 1,000 to 2,000 pixels wide: more points than that cost transfer and
drawing time and show nothing more. Averaging or LTTB would smooth away a one-step
spike, which is often exactly what a person is looking for (a loss blow-up, a NaN). So
the points are cut into buckets by position, and each bucket keeps its first, last,
smallest and largest value, and its first non-finite one: the envelope of the curve is
exact at every pixel (the M4 idea: Jugel et al., VLDB 2014).
"""

from __future__ import annotations

from typing import Any

import numpy as np

TARGET = 2000  # points per series, about the width of a wide chart


def keep(y: np.ndarray, target: int = TARGET) -> np.ndarray:
    """Indices (ascending) of the points to draw out of `y` (float, NaN where none)."""
    n = len(y)
    if n <= target:
        return np.arange(n)
    buckets = max(1, target // 4)
    size = -(-n // buckets)  # ceil: every bucket full but the last
    full = n // size  # buckets of `size` points; the last one may hold fewer
    finite = np.isfinite(y)
    clean = bool(finite.all())
    # Non-finite values never win a bucket's min or max (they are kept apart, below);
    # a series without any is searched as it is, without a copy.
    lo = y if clean else np.where(finite, y, np.inf)
    hi = y if clean else np.where(finite, y, -np.inf)
    base = np.arange(full) * size
    picks = [base, base + size - 1,
             base + lo[:full * size].reshape(full, size).argmin(1),
             base + hi[:full * size].reshape(full, size).argmax(1)]
    if full * size < n:  # the last, shorter bucket
        rest = full * size
        picks.append(np.array([rest, n - 1, rest + int(lo[rest:].argmin()),
                               rest + int(hi[rest:].argmax())]))
    if not clean:
        picks.append(np.flatnonzero(~finite)[:target])  # every gap drawn, up to a bound
    return np.unique(np.concatenate(picks))


def thin(columns: dict[str, Any], y: str, target: int = TARGET) -> dict[str, Any]:
    """Every column of `columns` (numpy arrays of one length) at the points kept for `y`."""
    idx = keep(columns[y], target)
    if len(idx) == len(columns[y]):
        return columns
    return {name: col[idx] for name, col in columns.items()}
