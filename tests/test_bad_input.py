"""Bad input (DESIGN.md section 2): skipped with one warning and a `rejected` event by
default, raised as TypeError/ValueError when strict. NaN and inf are values, not errors."""

from __future__ import annotations

import decimal
import inspect
import math
import re
import warnings

import numpy as np
import pytest

import steadyrun
from steadyrun import SteadyrunWarning


def _next_line() -> int:
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno + 1


def _steadyrun_warnings(record) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, SteadyrunWarning)]


def _rejected(data: steadyrun.RunData) -> list[dict]:
    return [e for e in data.events if e["type"] == "rejected"]


BAD_VALUES = [
    pytest.param("text", "str", id="str"),
    pytest.param(None, "NoneType", id="None"),
    pytest.param(object(), "object", id="object"),
    pytest.param([1.0, 2.0], "list", id="list"),
    pytest.param({"a": 1.0}, "dict", id="dict"),
    pytest.param(b"1", "bytes", id="bytes"),
    pytest.param(1 + 2j, "complex", id="complex"),
    pytest.param(decimal.Decimal("1.5"), "Decimal", id="Decimal"),
    pytest.param(np.zeros(3), "ndarray", id="ndarray-3"),
    pytest.param(2**64, "int", id="int-2**64"),
    pytest.param(-(2**63) - 1, "int", id="int-below-int64"),
]


@pytest.mark.parametrize("value, type_name", BAD_VALUES)
def test_bad_value_is_skipped_warned_once_and_recorded_once(new_run, value, type_name):
    run = new_run()
    with pytest.warns(SteadyrunWarning) as record:
        line = _next_line()
        run.log({"good": 1.0, "bad": value, "also/good": 2})
    messages = _steadyrun_warnings(record)
    assert len(messages) == 1
    assert "'bad'" in messages[0] and f"({type_name})" in messages[0]
    assert f"{__file__}:{line}" in messages[0]

    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        run.log({"good": 3.0, "bad": value})
    assert _steadyrun_warnings(again) == []
    run.finish()

    data = steadyrun.open_run(run.id)
    assert [r["good"] for r in data.rows] == [1.0, 3.0]
    assert data.rows[0]["also/good"] == 2
    assert all("bad" not in r for r in data.rows)
    rejected = _rejected(data)
    assert len(rejected) == 1
    assert rejected[0]["key"] == "bad" and rejected[0]["value_type"] == type_name
    assert rejected[0]["site"] == f"{__file__}:{line}"
    assert any(a["type"] == "rejected" and a["key"] == "bad" for a in data.anomalies)


def test_repeated_rejections_are_counted_at_finish(new_run):
    run = new_run()
    with pytest.warns(SteadyrunWarning):
        for i in range(5):
            run.log({"name": "resnet", "i": i})
    run.finish()

    data = steadyrun.open_run(run.id)
    assert len(_rejected(data)) == 1
    counts = [(e["key"], e["count"]) for e in data.events if e["type"] == "rejected_count"]
    assert counts == [("name", 5)]


BAD_KEYS = [
    pytest.param("", "''", id="empty"),
    pytest.param("/", "'/'", id="slash"),
    pytest.param("_private", "'_private'", id="underscore"),
    pytest.param("_step", "'_step'", id="_step"),
    pytest.param("a\x00b", r"'a\x00b'", id="nul"),
    pytest.param("a\nb", r"'a\nb'", id="newline"),
    pytest.param("a\tb", r"'a\tb'", id="tab"),
    pytest.param("a\x7fb", r"'a\x7fb'", id="del"),
    pytest.param("a//b", "'a//b'", id="double-slash"),
    pytest.param("a/", "'a/'", id="trailing-slash"),
    pytest.param("k" * 513, "'" + "k" * 513 + "'", id="too-long"),
    pytest.param(3, "'3'", id="int"),
    pytest.param(None, "'None'", id="None"),
    pytest.param(1.5, "'1.5'", id="float"),
    pytest.param(("a", 1), "\"('a', 1)\"", id="tuple"),
    pytest.param(b"k", "\"b'k'\"", id="bytes"),
]


@pytest.mark.parametrize("key, shown", BAD_KEYS)
def test_bad_key_is_skipped_warned_once_and_recorded_once(new_run, key, shown):
    run = new_run()
    with pytest.warns(SteadyrunWarning) as record:
        line = _next_line()
        run.log({"good": 1.0, key: 2.0})
    messages = _steadyrun_warnings(record)
    assert len(messages) == 1
    assert f"skipped {shown}" in messages[0]
    assert f"{__file__}:{line}" in messages[0]

    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        run.log({key: 3.0, "good": 4.0})
    assert _steadyrun_warnings(again) == []
    run.finish()

    data = steadyrun.open_run(run.id)
    assert [r["good"] for r in data.rows] == [1.0, 4.0]
    assert all(set(r) == {"good", "step", "_x"} for r in data.rows)
    rejected = _rejected(data)
    assert len(rejected) == 1
    label = key if isinstance(key, str) else repr(key)
    assert rejected[0]["key"] == label[:500]


def test_each_bad_key_of_one_call_warns(new_run):
    run = new_run()
    with pytest.warns(SteadyrunWarning) as record:
        run.log({"a": "x", "b": None, "_c": 1, "ok": 1})
    messages = _steadyrun_warnings(record)
    assert len(messages) == 3
    assert ["'a'" in messages[0], "'b'" in messages[1], "'_c'" in messages[2]] == [True] * 3
    run.finish()

    data = steadyrun.open_run(run.id)
    assert sorted(e["key"] for e in _rejected(data)) == ["_c", "a", "b"]
    assert data.rows[0]["ok"] == 1


@pytest.mark.parametrize("metrics", [None, [("a", 1.0)], "loss", 1.0])
def test_log_of_a_non_mapping_is_rejected_not_raised(new_run, metrics):
    run = new_run()
    with pytest.warns(SteadyrunWarning, match="mapping"):
        run.log(metrics)
    run.log({"a": 1.0})
    run.finish()

    data = steadyrun.open_run(run.id)
    assert len(data.rows) == 1
    assert len(_rejected(data)) == 1


def test_bad_value_on_a_known_key_set_is_still_rejected(new_run):
    """Once a key set is on the fast path, a non-number for it still takes the checks."""
    run = new_run()
    for i in range(3):
        run.log({"a": float(i), "b": i})
    with pytest.warns(SteadyrunWarning, match="'a' \\(str\\)"):
        run.log({"a": "oops", "b": 3})
    run.finish()

    data = steadyrun.open_run(run.id)
    assert [r.get("a") for r in data.rows] == [0.0, 1.0, 2.0, None]
    assert [r["b"] for r in data.rows] == [0, 1, 2, 3]
    assert [e["key"] for e in _rejected(data)] == ["a"]


@pytest.mark.parametrize("big", [2**64, 2**80, -(2**63) - 1])
def test_int_beyond_64_bits_on_a_known_key_set_is_rejected_and_recorded(new_run, big):
    run = new_run()
    run.log({"n": 1, "m": 1})
    run.log({"n": 2, "m": 2})
    run.log({"n": big, "m": 3})
    run.log({"n": 4, "m": 4})
    run.finish()

    data = steadyrun.open_run(run.id)
    assert [r["m"] for r in data.rows] == [1, 2, 3, 4]
    assert [r.get("n") for r in data.rows] == [1, 2, None, 4]
    assert [r["step"] for r in data.rows] == [0, 1, 2, 3]
    rejected = _rejected(data)
    assert len(rejected) == 1 and rejected[0]["key"] == "n"
    assert "64 bits" in rejected[0]["reason"]


# ---------------------------------------------------------------------- strict

STRICT_CASES = [
    pytest.param({"k": "text"}, TypeError, "k", id="str"),
    pytest.param({"k": None}, TypeError, "k", id="None"),
    pytest.param({"k": object()}, TypeError, "k", id="object"),
    pytest.param({"k": [1]}, TypeError, "k", id="list"),
    pytest.param({"k": {"a": 1}}, TypeError, "k", id="dict"),
    pytest.param({"k": np.ones(3)}, TypeError, "k", id="ndarray"),
    pytest.param({"k": 2**64}, ValueError, "k", id="int-2**64"),
    pytest.param({"": 1.0}, ValueError, "", id="empty-key"),
    pytest.param({"_k": 1.0}, ValueError, "_k", id="underscore-key"),
    pytest.param({"a\nb": 1.0}, ValueError, "a\nb", id="control-key"),
    pytest.param({3: 1.0}, TypeError, "3", id="int-key"),
    pytest.param({None: 1.0}, TypeError, "None", id="None-key"),
]


@pytest.mark.parametrize("metrics, exc, key", STRICT_CASES)
def test_strict_argument_raises_naming_the_key(new_run, metrics, exc, key):
    run = new_run(strict=True)
    with pytest.raises(exc, match=re.escape(repr(key))):
        run.log({"good": 1.0, **metrics})
    run.log({"good": 2.0})
    run.finish()

    assert [r["good"] for r in steadyrun.open_run(run.id).rows] == [2.0]


@pytest.mark.parametrize("env_value", ["1", "true"])
@pytest.mark.parametrize("metrics, exc, key", STRICT_CASES[:1] + STRICT_CASES[6:8])
def test_strict_environment_variable_raises(new_run, monkeypatch, env_value, metrics, exc, key):
    monkeypatch.setenv("STEADYRUN_STRICT", env_value)
    run = new_run()
    with pytest.raises(exc, match=re.escape(repr(key))):
        run.log(metrics)


def test_strict_argument_false_beats_the_environment(new_run, monkeypatch):
    monkeypatch.setenv("STEADYRUN_STRICT", "1")
    run = new_run(strict=False)
    with pytest.warns(SteadyrunWarning):
        run.log({"k": "text"})
    run.finish()
    assert len(_rejected(steadyrun.open_run(run.id))) == 1


def test_strict_raises_for_a_big_int_on_a_known_key_set(new_run):
    run = new_run(strict=True)
    run.log({"n": 1})
    run.log({"n": 2})
    with pytest.raises(ValueError, match="'n'.*64 bits"):
        run.log({"n": 2**64})
    run.finish()
    assert [r["n"] for r in steadyrun.open_run(run.id).rows] == [1, 2]


def test_strict_summary_and_config_raise(new_run):
    run = new_run(strict=True)
    with pytest.raises(TypeError, match="'s'"):
        run.summary.update({"s": [1, 2]})
    with pytest.raises(TypeError, match="config.obj"):
        run.config.update({"obj": object()})


def test_strict_keeps_nonfinite_values(new_run):
    run = new_run(strict=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SteadyrunWarning)
        run.log({"a": math.nan, "b": math.inf})
    run.finish()
    row = steadyrun.open_run(run.id).rows[0]
    assert math.isnan(row["a"]) and row["b"] == math.inf


# ---------------------------------------------------------------------- values that are fine

@pytest.mark.parametrize("repeat", [1, 3], ids=["first-call", "fast-path"])
def test_nan_and_inf_are_kept_as_floats_and_flagged(new_run, repeat):
    run = new_run()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SteadyrunWarning)
        for _ in range(repeat):
            run.log({"a": math.nan, "b": math.inf, "c": -math.inf, "d": 1.5})
    run.finish()

    data = steadyrun.open_run(run.id)
    assert len(data.rows) == repeat
    for row in data.rows:
        assert type(row["a"]) is float and math.isnan(row["a"])
        assert type(row["b"]) is float and math.isinf(row["b"]) and row["b"] > 0
        assert type(row["c"]) is float and math.isinf(row["c"]) and row["c"] < 0
        assert row["d"] == 1.5
    flagged = [(a["key"], a["value"], a["x"]) for a in data.anomalies if a["type"] == "nonfinite"]
    expected = [(k, tag, x) for x in range(repeat)
                for k, tag in (("a", "nan"), ("b", "inf"), ("c", "-inf"))]
    assert sorted(flagged) == sorted(expected)
    assert _rejected(data) == []


def test_nonfinite_numpy_and_torch_scalars_are_kept(new_run):
    torch = pytest.importorskip("torch")
    run = new_run()
    run.log({"np": np.float32("nan"), "t": torch.tensor(float("-inf"))})
    run.finish()
    row = steadyrun.open_run(run.id).rows[0]
    assert math.isnan(row["np"]) and row["t"] == -math.inf


def test_numpy_scalars_are_numbers(new_run):
    run = new_run()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SteadyrunWarning)
        run.log({"f32": np.float32(0.5), "f64": np.float64(0.25), "f16": np.float16(2.0),
                 "i64": np.int64(-7), "i32": np.int32(9), "u8": np.uint8(255),
                 "u64": np.uint64(2**64 - 1), "b": np.bool_(True), "b0": np.bool_(False),
                 "zero_d": np.array(3.5)})
    run.finish()

    row = steadyrun.open_run(run.id).rows[0]
    expected = {"f32": 0.5, "f64": 0.25, "f16": 2.0, "i64": -7, "i32": 9, "u8": 255,
                "u64": 2**64 - 1, "b": True, "b0": False, "zero_d": 3.5}
    for key, value in expected.items():
        assert row[key] == value and type(row[key]) is type(value), key


def test_numpy_array_with_shape_is_rejected(new_run):
    run = new_run()
    with pytest.warns(SteadyrunWarning, match=r"'arr' \(ndarray\).*shape \(3,\)"):
        run.log({"arr": np.arange(3), "ok": 1})
    run.finish()
    data = steadyrun.open_run(run.id)
    assert "arr" not in data.rows[0] and data.rows[0]["ok"] == 1
    assert [e["key"] for e in _rejected(data)] == ["arr"]


def test_zero_d_torch_tensors_are_numbers(new_run):
    torch = pytest.importorskip("torch")
    run = new_run()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SteadyrunWarning)
        run.log({"f": torch.tensor(0.25), "i": torch.tensor(7), "b": torch.tensor(True),
                 "grad": torch.tensor(1.5, requires_grad=True) * 2,
                 "half": torch.tensor(0.5, dtype=torch.float16)})
    run.finish()

    row = steadyrun.open_run(run.id).rows[0]
    expected = {"f": 0.25, "i": 7, "b": True, "grad": 3.0, "half": 0.5}
    for key, value in expected.items():
        assert row[key] == value and type(row[key]) is type(value), key


def test_torch_tensor_with_shape_is_rejected(new_run):
    torch = pytest.importorskip("torch")
    run = new_run()
    with pytest.warns(SteadyrunWarning, match=r"'t' \(Tensor\)"):
        run.log({"t": torch.zeros(3), "ok": 1})
    run.finish()
    data = steadyrun.open_run(run.id)
    assert "t" not in data.rows[0]
    assert [e["value_type"] for e in _rejected(data)] == ["Tensor"]


def test_bools_are_accepted(new_run):
    run = new_run()
    with warnings.catch_warnings():
        warnings.simplefilter("error", SteadyrunWarning)
        run.log({"yes": True, "no": False})
        run.log({"yes": False, "no": True})
    run.finish()
    rows = steadyrun.open_run(run.id).rows
    assert [(r["yes"], r["no"]) for r in rows] == [(True, False), (False, True)]
    assert all(type(r["yes"]) is bool for r in rows)


def test_every_distinct_bad_step_is_warned_and_recorded(new_run):
    """`step=1.5` then `step=2**70` then `step="7"`: three problems, three warnings and
    three `rejected` events (only the first was, before); a repeat is counted."""
    run = new_run()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run.log({"a": 1.0}, step=1.5)
        run.log({"a": 2.0}, step=2**70)
        run.log({"a": 3.0}, step="7")
        run.log({"a": 4.0}, step=2.5)  # the same problem as 1.5: counted, not warned
        run.log([1, 2])
        run.log(None)
    warned = _steadyrun_warnings(caught)
    assert len(warned) == 5, warned
    run.finish()
    data = steadyrun.open_run(run.id)
    rejected = [(e["key"], e["value_type"]) for e in _rejected(data)]
    assert rejected == [("step=", "float"), ("step=", "int"), ("step=", "str"),
                        ("<metrics>", "list"), ("<metrics>", "NoneType")]
    counts = [(e["key"], e["value_type"], e["count"]) for e in data.events
              if e["type"] == "rejected_count"]
    assert counts == [("step=", "float", 2)]
    assert [r["a"] for r in data.rows] == [1.0, 2.0, 3.0, 4.0]  # at the global step
