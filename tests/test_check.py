"""Regression rules, noise bands and `steadyrun check` (issue 14, parts 4 and 6).

Real runs: three baseline seeds tagged `base` (val/acc 0.80, 0.81, 0.79: mean 0.80,
std 0.01, n 3; val/loss = 1 - val/acc), a better run, a worse run within the seeds'
noise and a clearly worse one. The rules themselves are unit-tested on store/rules.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

import steadyrun
from steadyrun.cli.main import main
from steadyrun.store.rules import (
    DEFAULT_TOLERANCE,
    MIN_N,
    RuleError,
    Stats,
    curve_of,
    judge,
    parse_rule,
    parse_tolerance,
    rule_for,
    rules_of,
    stats_at,
    stats_of,
    value_at,
)


def train(final: float, *, tags=(), project="reg", goals=True, steps=10, **kwargs) -> str:
    """A finished local run whose val/acc climbs linearly to `final` (val/loss falls)."""
    run = steadyrun.init(mode="local", project=project, tags=list(tags), **kwargs)
    if goals:
        run.define_metric("val/acc", goal="maximize")
        run.define_metric("val/loss", goal="minimize")
    for s in range(1, steps + 1):
        acc = final * s / steps
        run.log({"val/acc": acc, "val/loss": 1 - acc}, step=s)
    run.finish()
    return run.id


@pytest.fixture
def runs(sr_root: Path) -> dict[str, object]:
    base = [train(f, tags=["base"]) for f in (0.80, 0.81, 0.79)]
    return {"base": base, "better": train(0.83), "noise": train(0.785), "worse": train(0.70)}


def check(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["check", *args])
    out, err = capsys.readouterr()
    return code, out, err


def table_row(out: str, key: str) -> list[str]:
    (line,) = [ln for ln in out.splitlines() if ln.startswith(f"| `{key}`")]
    return [c.strip() for c in line.strip("|").split("|")]


# ---------------------------------------------------------------------- rules (unit)
def test_tolerances_parse_relative_absolute_and_signed():
    t = parse_tolerance("-1%")
    assert (t.amount, t.relative, t.sign) == (0.01, True, -1)
    t = parse_tolerance("+0.02")
    assert (t.amount, t.relative, t.sign) == (0.02, False, 1)
    assert parse_tolerance(" 2.5 % ").amount == pytest.approx(0.025)
    assert parse_tolerance("1e-3").amount == 0.001
    assert parse_tolerance(-0.5) == parse_tolerance("-0.5")
    assert parse_tolerance("-1%").margin(-0.8) == pytest.approx(0.008)  # of the magnitude
    assert parse_tolerance("+0.02").margin(100.0) == 0.02
    assert DEFAULT_TOLERANCE == "1%"


@pytest.mark.parametrize("bad", ["", "abc", "1%%", "--1%", "1 2", "%", "nan", "inf", None,
                                 True, float("nan"), [1]])
def test_bad_tolerances_are_clear_errors(bad):
    with pytest.raises(RuleError, match="tolerance"):
        parse_tolerance(bad)


def test_rules_parse_in_the_command_line_grammar():
    r = parse_rule("eval/acc>=-0.5%")
    assert (r.key, r.goal, r.tolerance.amount, r.tolerance.relative) == ("eval/acc", "max",
                                                                        0.005, True)
    assert r.text == "eval/acc>=-0.5%"
    r = parse_rule("eval/loss <= +0.02")
    assert (r.key, r.goal, r.tolerance.relative) == ("eval/loss", "min", False)
    assert r.text == "eval/loss<=+0.02"
    assert parse_rule("eval/acc>=0.5%").text == "eval/acc>=-0.5%"  # unsigned: the op says
    assert parse_rule("eval/acc=-1%").goal == "max"
    assert parse_rule("eval/loss=+1%").goal == "min"
    bare = parse_rule("eval/acc")
    assert bare.goal is None and bare.default and bare.tolerance.amount == 0.01
    assert bare.with_goal("maximize").text == "eval/acc>=-1%"
    assert parse_rule(parse_rule("a/b<=+3%").text) == parse_rule("a/b<=+3%")


@pytest.mark.parametrize(("text", "says"), [
    ("eval/acc>=+1%", "wrong way"),
    ("eval/loss<=-1%", "wrong way"),
    ("eval/acc>=", "no tolerance"),
    (">=-1%", "cannot read the rule"),
    ("eval/acc>=-x%", "cannot read the tolerance"),
    ("eval/acc<-1%", "cannot read"),
    ("", "cannot read the rule"),
])
def test_bad_rules_are_clear_errors(text, says):
    with pytest.raises(RuleError, match=says):
        parse_rule(text)


def test_init_rule_mappings_take_their_direction_from_the_sign_or_the_goal():
    acc, loss = rules_of({"val/acc": "-1%", "val/loss": "+0.02"})
    assert (acc.goal, loss.goal) == ("max", "min")
    assert rule_for("val/acc", "1%", goal="maximize").text == "val/acc>=-1%"
    with pytest.raises(RuleError, match="up or down"):
        rule_for("val/acc", "1%").with_goal(None)
    with pytest.raises(RuleError, match="wrong way"):
        rule_for("val/acc", "+1%", goal="maximize")
    with pytest.raises(RuleError, match="regression"):
        rules_of({"val/acc": "lots"})
    with pytest.raises(RuleError, match="mapping"):
        rules_of(3)


def test_noise_band_decides_only_beyond_the_tolerance():
    base = stats_of([0.80, 0.81, 0.79])
    assert (base.mean, base.n) == (pytest.approx(0.80), 3)
    assert base.std == pytest.approx(0.01)
    acc = parse_rule("val/acc>=-1%")
    within = judge(0.785, base, acc)  # beyond -1% (0.792), inside mean - 2 std (0.78)
    assert within.worse and not within.regressed and within.word == "worse, within noise"
    assert within.limit == pytest.approx(0.792) and within.band == pytest.approx(0.78)
    assert judge(0.70, base, acc).regressed
    assert judge(0.795, base, acc).word == "ok"  # within the tolerance
    assert judge(0.83, base, acc).word == "better"
    assert judge(0.785, base, acc, k=1.0).regressed  # a narrower band
    loss = parse_rule("val/loss<=+1%")
    lb = stats_of([0.20, 0.19, 0.21])
    assert not judge(0.215, lb, loss).regressed and judge(0.215, lb, loss).worse
    assert judge(0.30, lb, loss).regressed
    assert judge(math.nan, base, acc).regressed  # a NaN is never fine
    assert judge(math.nan, lb, loss).regressed


def test_below_min_n_the_std_is_not_trusted_and_the_rule_alone_decides():
    assert MIN_N == 3
    two = stats_of([0.80, 0.81])
    v = judge(0.785, two, parse_rule("val/acc>=-1%"))
    assert v.band is None and v.regressed
    one = stats_of([0.80, float("nan")])  # non-finite baseline values are left out
    assert one == Stats(0.80, None, 1)
    assert judge(0.80, one, parse_rule("val/acc>=-1%")).word == "ok"
    assert stats_of([float("inf")]) is None


def test_curves_interpolate_between_neighbours_and_never_extrapolate():
    steps, values = curve_of([(0, 0.0), (10, 1.0), (10, 2.0), (20, float("nan")), (30, 4.0)])
    assert (steps, values) == ([0.0, 10.0, 30.0], [0.0, 2.0, 4.0])  # a repeat keeps its last
    assert value_at(steps, values, 10) == 2.0
    assert value_at(steps, values, 20) == 3.0
    assert value_at(steps, values, 31) is None and value_at(steps, values, -1) is None
    s = stats_at([(steps, values), ([0.0, 10.0], [0.0, 4.0])], 10)
    assert (s.mean, s.n) == (3.0, 2)
    assert stats_at([(steps, values), ([0.0, 10.0], [0.0, 4.0])], 20).n == 1
    big = curve_of(((i, float(i)) for i in range(100_000)), max_points=100)
    assert len(big[0]) == 100 and big[0][0] == 0 and big[0][-1] == 99_999


# ---------------------------------------------------------------------- steadyrun check
def test_check_exit_codes_and_tables(runs, capsys):
    code, out, err = check(capsys, runs["better"], "--baseline", "tag:base")
    assert code == 0 and not err
    assert out.startswith(f"### steadyrun check: `{runs['better']}` vs baseline `tag:base`")
    assert "| metric | run | baseline mean ± std (n) | delta | rule | verdict |" in out
    row = table_row(out, "val/acc")
    assert row == ["`val/acc`", "0.83 (best)", "0.8 ± 0.01 (3)", "+0.03 (+3.75%)",
                   "`val/acc>=-1% (default)`", "better"]
    assert "**No regression**" in out

    code, out, _ = check(capsys, runs["noise"], "--baseline", "tag:base")
    assert code == 0  # worse than 1 %, but within the seeds' noise
    assert table_row(out, "val/acc")[-1] == "worse, within noise"
    assert table_row(out, "val/loss")[-1] == "worse, within noise"

    code, out, _ = check(capsys, runs["worse"], "--baseline", "tag:base")
    assert code == 1
    assert table_row(out, "val/acc")[-1] == "**regressed**"
    assert table_row(out, "val/acc")[3] == "-0.1 (-12.50%)"
    assert table_row(out, "val/loss")[-1] == "**regressed**"
    assert "**2 regressions**" in out

    code, out, _ = check(capsys, runs["noise"], "--baseline", "tag:base", "--k", "0.5")
    assert code == 1  # a narrower band: now outside it

    # Two seeds: their std is not trusted, the rule alone decides.
    code, out, _ = check(capsys, runs["noise"], "--baseline", runs["base"][0])
    assert code == 1 and "(1)" in table_row(out, "val/acc")[2]


def test_check_rules_and_json(runs, capsys):
    code, out, _ = check(capsys, runs["worse"], "--baseline", "tag:base", "--rule",
                         "val/acc>=-20%")
    assert code == 0  # only the rules given are checked
    assert table_row(out, "val/acc")[-1] == "ok"
    assert "val/loss" not in out
    code, out, _ = check(capsys, runs["worse"], "--baseline", "tag:base", "--rule",
                         "val/acc>=-20%", "--rule", "val/loss<=+0.05", "--json")
    data = orjson.loads(out)
    assert code == 1 and data["regressed"] is True
    assert data["baseline"] == {"ref": "tag:base", "runs": runs["base"]}
    acc, loss = data["metrics"]
    assert (acc["key"], acc["verdict"], acc["rule"]) == ("val/acc", "ok", "val/acc>=-20%")
    assert (loss["key"], loss["verdict"], loss["source"]) == ("val/loss", "regressed", "best")
    assert loss["baseline"]["n"] == 3 and loss["baseline"]["std"] == pytest.approx(0.01)
    assert loss["band"] == pytest.approx(0.22) and loss["limit"] == pytest.approx(0.25)


def test_check_uses_the_baseline_and_rules_kept_in_run_json(runs, capsys):
    rid = train(0.70, baseline="tag:base", regression={"val/acc": "-20%"})
    stored = steadyrun.open_run(rid).manifest["baseline"]
    assert stored == {"ref": "tag:base", "runs": runs["base"], "rules": ["val/acc>=-20%"],
                      "k": 2.0}
    code, out, _ = check(capsys, rid)
    assert code == 1  # val/acc holds its stored rule; val/loss fails the default 1 %
    assert table_row(out, "val/acc")[-2:] == ["`val/acc>=-20%`", "ok"]
    assert table_row(out, "val/loss")[-1] == "**regressed**"
    code, out, _ = check(capsys, rid, "--rule", "val/acc")  # a bare key: 1 % and its goal
    assert code == 1 and table_row(out, "val/acc")[-2] == "`val/acc>=-1% (default)`"


def test_check_that_cannot_be_made_exits_2_and_names_what_is_missing(runs, capsys, sr_root):
    cases = [
        ([runs["worse"]], f"run {runs['worse']} has no baseline"),
        (["nope"], "no run 'nope'"),
        ([runs["worse"], "--baseline", "tag:nothing"], "no finished run with tag 'nothing'"),
        ([runs["worse"], "--baseline", "tag:base", "--rule", "val/f1>=-1%"],
         f"val/f1: run {runs['worse']} has no value of it"),
        ([runs["worse"], "--baseline", "tag:base", "--rule", "val/acc>=+1%"], "wrong way"),
        ([runs["worse"], "--baseline", "tag:base", "--rule", "val/acc>="], "no tolerance"),
        ([runs["worse"], "--baseline", "tag:base", "--k", "-1"], "k (the noise band"),
    ]
    for args, says in cases:
        code, out, err = check(capsys, *args)
        assert code == 2, (args, out, err)
        assert out == ""
        assert err.count("\n") == 1 and err.startswith("steadyrun check: cannot check: ")
        assert says in err, (args, err)
    # A metric only the run has, as a goal of its own: the baseline side lacks it.
    run = steadyrun.init(mode="local", project="reg")
    run.define_metric("val/f1", goal="maximize")
    run.log({"val/f1": 0.5, "val/acc": 0.8}, step=1)
    run.finish()
    code, _, err = check(capsys, run.id, "--baseline", "tag:base")
    assert code == 2 and f"val/f1: baseline run {runs['base'][0]} has no value of it" in err
    # A run with no goal metric and no rule: nothing to check.
    plain = train(0.8, goals=False)
    code, _, err = check(capsys, plain, "--baseline", runs["base"][0])
    assert code == 2 and "nothing to check" in err


def test_a_stored_baseline_that_no_longer_exists_exits_2(runs, capsys, sr_root):
    rid = train(0.70, baseline="tag:base")
    shutil.rmtree(sr_root / "runs" / runs["base"][1])
    code, out, err = check(capsys, rid)
    assert code == 2 and out == ""
    assert f"baseline run {runs['base'][1]}" in err and "no longer exists" in err
    # Asked for by name: the same, in one line.
    code, _, err = check(capsys, rid, "--baseline", runs["base"][1])
    assert code == 2 and f"no run '{runs['base'][1]}'" in err


def test_check_from_the_shell_never_prints_a_traceback(runs, sr_root):
    """The real command line: exit codes and one line on stderr, no traceback."""
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "steadyrun", "check", *args],
                              capture_output=True, text=True, timeout=60, cwd=sr_root)

    ok = cli(runs["better"], "--baseline", "tag:base")
    assert ok.returncode == 0 and "| `val/acc` |" in ok.stdout
    (sr_root / "runs" / runs["noise"] / "run.json").write_text("{not json")
    for args in ([runs["worse"]], [runs["noise"], "--baseline", "gone"]):
        proc = cli(*args)
        assert proc.returncode == 2, proc
        assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
