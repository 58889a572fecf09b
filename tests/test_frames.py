"""history() / column() as Arrow, pandas and polars, and the columnar cache behind them.

Real runs written by steadyrun, read back. The cache (cache/<writer>.arrow) is an
optimisation only: every test compares the DataFrame with the list the reader has always
returned, and with the DataFrame read again once the cache is gone, stale or torn.
"""

from __future__ import annotations

import math
import os
import sys
import warnings

import pytest

import steadyrun
from steadyrun.store.layout import column_cache_path
from steadyrun.store.segment_reader import list_segments
from steadyrun.store.values import SteadyrunWarning

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")
pl = pytest.importorskip("polars")


def as_frame(rows: list, columns: list[str]) -> pd.DataFrame:
    """The list path's answer as a DataFrame with the table's columns."""
    df = pd.DataFrame(list(rows))
    return df[columns] if len(df) else pd.DataFrame(columns=columns)


def same_as_list(data: steadyrun.RunData, ns: str | None) -> pd.DataFrame:
    hist = data.history(ns)
    df = hist.to_pandas()
    pd.testing.assert_frame_equal(df, as_frame(hist, list(df.columns)))
    assert sorted(df.columns) == sorted({k for row in hist for k in row})
    return df


def caches(rdir) -> list:
    return [column_cache_path(p) for p in list_segments(rdir)
            if column_cache_path(p).exists()]


def write_run(new_run, n: int = 300):
    run = new_run()
    for i in range(n):
        run.log({"train/loss": 1.0 / (i + 1), "train/ok": i % 3, "perf/sps": 1e4 + i})
        if i % 50 == 0:
            run.log({"val/loss": 0.5 - i / 1e4, "val/acc": i})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SteadyrunWarning)
        run.log({"train/loss": math.nan, "val/loss": math.inf, "val/acc": -math.inf})
    run.finish()
    return run


def test_frames_equal_the_lists_and_deleting_the_cache_changes_nothing(new_run):
    run = write_run(new_run)
    data = steadyrun.open_run(run.id)
    first = {ns: same_as_list(data, ns) for ns in [*data.namespaces, None]}
    assert list(first["train"].columns) == ["train/step", "train/loss", "train/ok"]
    assert len(first["train"]) == 301 and len(first["val"]) == 7
    assert len(caches(run.dir)) == 1  # written at the first read of a closed segment
    for path in caches(run.dir):
        path.unlink()
    again = steadyrun.open_run(run.id)
    for ns, df in first.items():
        pd.testing.assert_frame_equal(again.history(ns).to_pandas(), df)
    assert len(caches(run.dir)) == 1


def test_nonfinite_values_round_trip(new_run):
    run = write_run(new_run, n=10)
    data = steadyrun.open_run(run.id)
    for _ in range(2):  # built from the segment, then read from the cache
        val = data.history("val").to_pandas()
        assert math.isinf(val["val/loss"].iloc[-1]) and val["val/loss"].iloc[-1] > 0
        assert math.isinf(val["val/acc"].iloc[-1]) and val["val/acc"].iloc[-1] < 0
        assert math.isnan(data.history("train").to_pandas()["train/loss"].iloc[-1])
        assert math.isnan(data.column("train/loss").to_arrow()["train/loss"][-1].as_py())


def test_column_as_arrow_pandas_and_polars(new_run):
    run = write_run(new_run, n=120)
    data = steadyrun.open_run(run.id)
    pairs = data.column("val/acc")
    table = pairs.to_arrow()
    assert table.column_names == ["val/step", "val/acc"]
    assert list(zip(*(table[c].to_pylist() for c in table.column_names), strict=True)) == pairs[:-1] + [
        (pairs[-1][0], -math.inf)]
    assert pairs.to_pandas()["val/step"].tolist() == [s for s, _ in pairs]
    polars = pairs.to_polars()
    assert isinstance(polars, pl.DataFrame) and polars.columns == ["val/step", "val/acc"]
    assert polars["val/step"].to_list() == [s for s, _ in pairs]
    assert data.column("val/step").to_arrow().column_names == ["val/step"]
    assert data.column("nope").to_pandas().empty and data.column("nope") == []
    assert data.history("train").to_polars().shape == (len(data.history("train")), 3)


def test_a_stale_cache_is_ignored_and_rebuilt(new_run):
    run = write_run(new_run, n=50)
    data = steadyrun.open_run(run.id)
    before = data.history("train").to_pandas()
    seg = list_segments(run.dir)[0]
    cache = column_cache_path(seg)
    built = cache.stat().st_mtime_ns
    # The segment rewritten in place, same size and mtime: only the tail hash tells.
    st = seg.stat()
    body = seg.read_bytes()
    at = body.rindex(b'"train/ok":1')
    seg.write_bytes(body[:at] + b'"train/ok":7' + body[at + len(b'"train/ok":1'):])
    os.utime(seg, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = steadyrun.open_run(run.id).history("train")
    df = after.to_pandas()
    assert df["train/ok"].tolist().count(7) == 1
    assert df["train/ok"].tolist() != before["train/ok"].tolist()
    pd.testing.assert_frame_equal(df, as_frame(after, list(df.columns)))
    assert cache.stat().st_mtime_ns != built  # rebuilt for the new bytes


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "other_run"])
def test_a_torn_or_foreign_cache_is_ignored(new_run, damage):
    run = write_run(new_run, n=40)
    other = write_run(new_run, n=7)
    expected = steadyrun.open_run(run.id).history(None).to_pandas()
    steadyrun.open_run(other.id).history("train").to_arrow()
    cache = caches(run.dir)[0]
    body = cache.read_bytes()
    cache.write_bytes({"truncated": body[: len(body) // 2], "garbage": b"\x00junk" * 100,
                       "empty": b"", "other_run": caches(other.dir)[0].read_bytes()}[damage])
    pd.testing.assert_frame_equal(steadyrun.open_run(run.id).history(None).to_pandas(),
                                  expected)
    assert cache.read_bytes() == body or damage == "other_run"  # rebuilt whole


def test_two_writers_are_merged_in_time_order(new_run):
    run = new_run()
    run.log({"owner/x": 1, "shared/v": 10})
    run.flush()
    child = steadyrun.attach(run.id, name="eval-worker")
    child.log({"eval/y": 2, "shared/v": 20})
    child.finish()
    run.log({"owner/x": 3, "shared/v": 30})
    run.finish()
    data = steadyrun.open_run(run.id)
    assert len(list_segments(run.dir)) == 2
    shared = same_as_list(data, "shared")
    assert shared["shared/v"].tolist() == [10, 20, 30]
    whole = same_as_list(data, None)
    assert len(whole) == 3 and len(caches(run.dir)) == 2
    pd.testing.assert_frame_equal(steadyrun.open_run(run.id).history(None).to_pandas(), whole)


def test_a_namespace_whose_step_restarts(new_run):
    run = new_run()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SteadyrunWarning)
        for stage in range(2):
            for i in range(5):
                run.log({"stage/step": i, "stage/loss": stage + i / 10})
    run.finish()
    data = steadyrun.open_run(run.id)
    df = same_as_list(data, "stage")
    assert df["stage/step"].tolist() == [0, 1, 2, 3, 4] * 2
    assert df["stage/loss"].tolist() == [i / 10 for i in range(5)] + [1 + i / 10 for i in range(5)]


def test_an_open_segment_is_read_but_not_cached(new_run):
    run = new_run()
    for i in range(20):
        run.log({"train/loss": float(i)})
    run.flush()
    seg = list_segments(run.dir)[0]
    with open(seg, "ab") as fh:  # a preallocated (memory-mapped) segment's unwritten end
        fh.write(b"\0" * 4096)
    data = steadyrun.open_run(run.id)
    assert data.history("train").to_pandas()["train/loss"].tolist() == [float(i) for i in range(20)]
    assert caches(run.dir) == []
    with open(seg, "r+b") as fh:  # the writer truncates its segment to the data
        fh.truncate(seg.stat().st_size - 4096)
    run.log({"train/loss": 20.0})
    run.finish()
    assert len(steadyrun.open_run(run.id).history("train").to_pandas()) == 21
    assert len(caches(run.dir)) == 1


def test_odd_lines_take_the_exact_path(new_run, monkeypatch):
    """A torn line glued to the next, a hand-made row: what Arrow's JSON reader would
    refuse or miss is parsed like the list path parses it."""
    from steadyrun.read import columns

    exact: list[int] = []
    python_table = columns.python_table
    monkeypatch.setattr(columns, "python_table", lambda body: exact.append(1) or python_table(body))
    run = write_run(new_run, n=30)
    seg = list_segments(run.dir)[0]
    lines = seg.read_bytes().splitlines(keepends=True)
    lines.insert(5, b'{"k":"row","t":1.0,"x":9,"v":{"train/lo{"k":"row","t":1.5,"x":9,'
                    b'"v":{"train/loss":0.25,"train/step":9}}\n')
    lines.insert(8, b'{ "k" : "row", "t": 2.0, "x": 10, "v": {"train/loss": 2, "train/step": 10}}\n')
    seg.write_bytes(b"".join(lines))
    data = steadyrun.open_run(run.id)
    df = same_as_list(data, "train")
    assert 0.25 in df["train/loss"].tolist() and 2.0 in df["train/loss"].tolist()
    assert len(caches(run.dir)) == 1 and exact == [1]


def test_to_arrow_from_the_cache_parses_no_record(new_run, monkeypatch):
    from steadyrun.read import frames

    run = write_run(new_run, n=30)
    steadyrun.open_run(run.id).history("train").to_arrow()  # builds the cache
    data = steadyrun.open_run(run.id)
    monkeypatch.setattr(frames, "build", lambda *a: pytest.fail("the cache was not used"))
    assert data.history("train").to_arrow().num_rows == 31
    assert len(data.history(None).to_pandas()) == 32  # 30 train, 1 val, 1 of both
    assert "_loaded" not in data.__dict__  # the JSON was never parsed
    assert len(data.history("train")) == 31 and "_loaded" in data.__dict__


def test_missing_library_names_the_extra(new_run, monkeypatch):
    run = write_run(new_run, n=5)
    data = steadyrun.open_run(run.id)
    monkeypatch.setitem(sys.modules, "polars", None)
    with pytest.raises(ImportError, match=r"steadyrun\[frames\]"):
        data.history("train").to_polars()
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    for convert in ("to_arrow", "to_pandas", "to_polars"):
        with pytest.raises(ImportError, match=r"needs pyarrow.*pip install 'steadyrun\[frames\]'"):
            getattr(data.column("train/loss"), convert)()
    assert len(data.history("train")) == 6  # the lists need no optional library
    assert data.column("train/loss")[0] == (0, 1.0)


def test_the_list_api_is_unchanged(new_run):
    run = write_run(new_run, n=3)
    data = steadyrun.open_run(run.id)
    col = data.column("train/ok")
    assert col == [(0, 0), (2, 1), (3, 2)] and col != [(0, 0)]
    assert list(col) == col.list and len(col) == len(col.list) and col[-1] == col.list[-1]
    assert col[1:] == col.list[1:] and list(reversed(col)) == col.list[::-1]
    assert col + [] == col.list and [] + col == col.list and (col[0] in col)
    assert repr(col) == repr(col.list) and bool(data.column("nope")) is False


def test_small_pieces_give_the_same_table(new_run, monkeypatch):
    """A segment converted 700 bytes at a time (lines cut by every piece boundary, lines
    longer than a piece, types promoted across pieces) gives the table of one piece."""
    from steadyrun.read import columns

    run = new_run()
    for i in range(200):
        run.log({"a/n": i if i < 100 else i + 0.5, f"a/k{i % 7}": 1.0,
                 "a/long_" + "x" * 400: i, "a/wide_" + "y" * 400: -i})
    run.finish()
    whole = steadyrun.open_run(run.id).history("a").to_pandas()
    for path in caches(run.dir):
        path.unlink()
    monkeypatch.setattr(columns, "PIECE", 700)
    small = steadyrun.open_run(run.id).history("a")
    pd.testing.assert_frame_equal(small.to_pandas(), whole)
    pd.testing.assert_frame_equal(whole, as_frame(small, list(whole.columns)))


def test_many_shapes_are_kept_as_one_wide_table(new_run):
    """Keys logged in ever new combinations (more than MAX_SHAPES shapes): the cache holds
    one table with nulls, and the frames are the same."""
    from steadyrun.read import colcache

    run = new_run()
    for i in range(3 * colcache.MAX_SHAPES):
        run.log({"m/a": i, f"m/b{i % (colcache.MAX_SHAPES + 6)}": i / 2, "n/c": 1.0})
    run.finish()
    data = steadyrun.open_run(run.id)
    first = same_as_list(data, "m")
    seg = list_segments(run.dir)[0]
    keys, shapes = colcache.open_cache(seg)
    assert len(shapes) == 1 and shapes[0][0] == keys and len(keys) == colcache.MAX_SHAPES + 10
    pd.testing.assert_frame_equal(steadyrun.open_run(run.id).history("m").to_pandas(), first)
    assert data.column("m/b3").to_pandas()["m/b3"].tolist() == [v for _, v in data.column("m/b3")]


def test_a_frame_from_the_cache_can_be_changed_in_place(new_run):
    """to_pandas() is an ordinary frame; to_pandas(copy=False) wraps the mapped cache,
    read-only; the cache never changes."""
    run = write_run(new_run, n=20)
    steadyrun.open_run(run.id).history("train").to_arrow()
    cache = caches(run.dir)[0]
    body = cache.read_bytes()
    df = steadyrun.open_run(run.id).history("train").to_pandas()
    df.loc[0, "train/loss"] = 5.0
    df["train/ok"] *= 2
    assert df["train/loss"].iloc[0] == 5.0 and df["train/ok"].iloc[2] == 4
    view = steadyrun.open_run(run.id).history("train").to_pandas(copy=False)
    pd.testing.assert_frame_equal(view, steadyrun.open_run(run.id).history("train").to_pandas())
    with pytest.raises(ValueError, match="read-only"):
        view.loc[0, "train/loss"] = 5.0
    assert steadyrun.open_run(run.id).history("train").to_pandas()["train/loss"].iloc[0] == 1.0
    assert cache.read_bytes() == body


def test_zeros_inside_an_open_segment_are_a_bad_line_not_its_end(new_run):
    """Only the zeros that end a segment are not data (the list path's rule too)."""
    run = new_run()
    for i in range(20):
        run.log({"train/loss": float(i)})
    run.finish()
    seg = list_segments(run.dir)[0]
    lines = seg.read_bytes().splitlines(keepends=True)[:-1]  # as if never closed
    lines.insert(8, b"\0\0\0 garbage\n")
    seg.write_bytes(b"".join(lines) + b"\0" * 8192)  # and killed mid-window
    data = steadyrun.open_run(run.id)
    assert [v for _, v in data.column("train/loss")] == [float(i) for i in range(20)]
    assert data.history("train").to_pandas()["train/loss"].tolist() == [float(i) for i in range(20)]
    assert caches(run.dir) == []  # open: never cached
