"""The thinning of a chart's series (ui/downsample.py) never hides a spike.

Each bucket of points keeps its first, last, smallest and largest value, and the
non-finite values are kept apart: a single huge value among a million points survives,
as do the first and last points, and every bucket's extremes.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from steadyrun.ui.downsample import keep, thin


def buckets_of(n: int, target: int) -> list[tuple[int, int]]:
    """The buckets `keep` cuts `n` points into: target // 4, of equal size but the last."""
    count = max(1, target // 4)
    size = -(-n // count)
    return [(lo, min(lo + size, n)) for lo in range(0, n, size)]


def check(y: np.ndarray, target: int) -> np.ndarray:
    idx = keep(y, target)
    n = len(y)
    assert idx.dtype.kind == "i" and (np.diff(idx) > 0).all()  # ascending, unique
    if n <= target:
        assert idx.tolist() == list(range(n))
        return idx
    kept = set(idx.tolist())
    assert 0 in kept and n - 1 in kept
    finite = np.isfinite(y)
    assert set(np.flatnonzero(~finite)[:target].tolist()) <= kept  # every gap, up to a bound
    for lo, hi in buckets_of(n, target):
        part = y[lo:hi]
        good = np.isfinite(part)
        if good.any():
            values = {float(y[i]) for i in kept if lo <= i < hi and np.isfinite(y[i])}
            assert float(part[good].max()) in values and float(part[good].min()) in values
        assert lo in kept and hi - 1 in kept
    assert len(idx) <= 4 * len(buckets_of(n, target)) + min(int((~finite).sum()), target)
    return idx


def test_one_spike_among_a_million_points_survives() -> None:
    rng = np.random.default_rng(13)
    n = 1_000_000
    y = rng.normal(0.0, 1.0, n)
    up, down, gap = 777_777, 123_457, 500_001
    y[up], y[down], y[gap] = 1e12, -1e12, np.nan
    idx = check(y, 2000)
    assert {up, down, gap, 0, n - 1} <= set(idx.tolist())
    assert len(idx) <= 2001
    # and a series of one value but the spike: the spike, whatever the bucket edges
    flat = np.zeros(n)
    flat[999_999 - 3] = 5.0
    assert 999_996 in keep(flat, 2000)


@pytest.mark.parametrize("n", [1, 2, 15, 16, 17, 1999, 2000, 2001, 4003, 99_999])
@pytest.mark.parametrize("target", [16, 17, 100, 2000])
def test_bucket_extremes_and_ends_are_kept(n: int, target: int) -> None:
    rng = np.random.default_rng(n * 7919 + target)
    y = rng.standard_cauchy(n)  # heavy tails: spikes everywhere
    y[rng.integers(0, n, size=max(1, n // 500))] = np.nan
    check(y, target)


@settings(max_examples=150, deadline=None)
@given(y=arrays(np.float64, st.integers(1, 400),
                elements=st.floats(allow_nan=True, allow_infinity=True, width=64)),
       target=st.integers(16, 64))
def test_property_bucket_extremes_kept(y: np.ndarray, target: int) -> None:
    check(y, target)


def test_thin_takes_every_column_at_the_kept_points() -> None:
    n = 10_000
    cols = {"x": np.arange(n, dtype=np.float64), "t": np.linspace(0, 1, n),
            "y": np.sin(np.arange(n) / 50.0)}
    cols["y"][4242] = 99.0
    out = thin(cols, "y", 100)
    assert len(out["x"]) == len(out["t"]) == len(out["y"]) < 110
    i = out["x"].tolist().index(4242.0)
    assert out["y"][i] == 99.0 and out["t"][i] == cols["t"][4242]
    small = {k: v[:50] for k, v in cols.items()}
    assert thin(small, "y", 100) is small  # nothing to thin: the same arrays
