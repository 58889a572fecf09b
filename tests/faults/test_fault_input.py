"""Hostile and bad input: fuzzed keys and values, cyclic and unserialisable configs, paths
that try to leave the run folder, and context files that are missing, corrupt or foreign.

Default mode never raises, and everything it accepted reads back equal, locally and in
W&B's transaction log. Strict mode rejects with a TypeError or ValueError naming the key.
"""

from __future__ import annotations

import dataclasses
import decimal
import fractions
import math
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fault_helpers import MEASURE, exactly_once, figures_of, local_column, same_value
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wandb_helpers import run_script, steadyrun_cli, wandb_log

import steadyrun

INT64_MIN, UINT64_MAX = -(2**63), 2**64 - 1


# ---------------------------------------------------------------------- the oracle
class Rejected:
    def __repr__(self) -> str:
        return "<rejected>"


REJECT = Rejected()


def key_ok(key: Any) -> bool:
    """DESIGN.md 3.6: non-empty str, no control characters or empty segments, <= 512
    characters, not starting with '_'."""
    return (type(key) is str and 0 < len(key) <= 512 and not key.startswith("_")
            and all(key.split("/")) and not any(ord(c) < 32 or c == "\x7f" for c in key))


def expected_value(value: Any) -> Any:
    """What the run must store for `value`, or REJECT: numbers only, ints in 64 bits."""
    if type(value) is bool:
        return value
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        kind = value.dtype.kind
        if kind in "iub":
            return expected_value(value.item())
        return float(value) if kind == "f" else REJECT
    if isinstance(value, int):
        value = int(value)
        return value if INT64_MIN <= value <= UINT64_MAX else REJECT
    if isinstance(value, float):
        return float(value)
    return REJECT


# ---------------------------------------------------------------------- strategies
KEYS = st.one_of(
    st.text(max_size=24),
    st.text(alphabet="/ab_", max_size=12),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x7f), max_size=12),
    st.text(min_size=500, max_size=530),
    st.sampled_from(["", "/", "//", "a//b", "a/", "/a", "_x", "a\x00b", "a\nb", "tab\tkey",
                     "del\x7f", "step", "a/step", "é/ü/名前", "😀/🚀", "x" * 512, "x" * 513,
                     "a.b", "a b", "-", "0", "val/loss"]),
    st.integers(), st.none(), st.tuples(st.text(max_size=3)),
)


class Weird:
    def __float__(self) -> float:
        return 1.0


_NP_INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]
_NP_FLOATS = [np.float16, np.float32, np.float64, np.longdouble]


def _np_int(draw_type: Any, value: int) -> Any:
    info = np.iinfo(draw_type)
    return draw_type(min(max(value, info.min), info.max))


def _np_float(draw_type: Any, value: float) -> Any:
    with np.errstate(over="ignore"):
        return draw_type(value)


SCALARS = st.one_of(
    st.booleans(), st.integers(), st.integers(min_value=2**62, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True), st.floats(width=32),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324, 2**63, 2**64 - 1,
                     2**64, -(2**63), -(2**63) - 1, 10**400]),
    st.builds(_np_int, st.sampled_from(_NP_INTS), st.integers()),
    st.builds(_np_float, st.sampled_from(_NP_FLOATS),
              st.floats(allow_nan=True, allow_infinity=True)),
    st.sampled_from([np.bool_(True), np.bool_(False), np.array(2.5), np.array(7),
                     np.complex64(1 + 2j), np.datetime64("2024-01-01"), np.str_("s"),
                     np.array([1.0]), np.float64("nan")]),
)
OTHERS = st.one_of(
    st.none(), st.text(max_size=5), st.binary(max_size=5), st.complex_numbers(),
    st.builds(object), st.builds(Weird), st.just(decimal.Decimal("1.5")),
    st.just(fractions.Fraction(1, 3)), st.lists(st.floats(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.floats(), max_size=2),
    st.just({"nested": {"deeper": 1.0}}), st.tuples(st.integers()), st.frozensets(st.integers()),
    st.just(threading.Lock()),
)
VALUES = st.one_of(SCALARS, SCALARS, OTHERS)
GOOD_KEYS = st.lists(st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1,
                             max_size=8), min_size=1, max_size=3).map("/".join).filter(key_ok)
METRICS = st.one_of(st.dictionaries(KEYS, VALUES, max_size=6),
                    st.dictionaries(GOOD_KEYS, SCALARS, min_size=1, max_size=4))

SETTINGS = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _expected_row(metrics: dict[Any, Any]) -> dict[str, Any]:
    row = {}
    for k, v in metrics.items():
        if key_ok(k):
            ev = expected_value(v)
            if ev is not REJECT:
                row[k] = ev
    return row


def _user_part(row: dict[str, Any], keys: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in keys if k in row}


def test_fuzzed_log_default_mode_never_raises_and_reads_back_equal(sr_root: Path,
                                                                     scorecard) -> None:
    run = steadyrun.init(mode="local")
    expected: list[dict[str, Any]] = []

    @SETTINGS
    @given(METRICS)
    def log_one(metrics: dict[Any, Any]) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run.log(metrics)  # never raises
        row = _expected_row(metrics)
        if row:
            expected.append(row)

    log_one()
    cyclic: dict[str, Any] = {"lr": 0.1, "nested": {"a": [1, 2]}}
    cyclic["self"] = cyclic
    cyclic["nested"]["back"] = cyclic["nested"]
    cyclic["lock"] = threading.Lock()
    cyclic["gen"] = (i for i in range(3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run.config.update(cyclic)  # cycles and unserialisable leaves: skipped, no raise
    run.finish()

    data = steadyrun.open_run(run.id)
    rows = data.rows
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected, strict=True):
        part = _user_part(got, want)
        assert part.keys() == want.keys() and all(
            same_value(part[k], want[k]) for k in want), (part, want)
        extra = {k for k in got if k not in want and k != "_x" and not k.endswith("step")}
        assert not extra, extra
    assert data.config["lr"] == 0.1 and data.config["nested"]["a"] == [1, 2]
    assert {e["key"] for e in data.events if e["type"] == "rejected"} >= {
        "config.self", "config.lock"}

    steadyrun_cli(sr_root, "--dir", str(sr_root), "sync", run.id, "--mode", "offline",
                  "--quiet", timeout=120)
    log = wandb_log(data.dir)
    assert len(log.history) == len(expected)
    for got, want in zip(log.history, expected, strict=True):
        part = _user_part(got, want)
        assert part.keys() == want.keys(), (part, want)
        for k, v in want.items():
            # W&B stores JSON: bools stay bools, every other number compares by value,
            # and an int of 2**63 or more becomes a float64 in W&B (measured; the local
            # log keeps it exact).
            w = part[k]
            if type(v) is int and v >= 2**63:
                v = float(v)
            assert same_value(w, v) or (not isinstance(v, bool) and isinstance(w, (int, float))
                                        and not isinstance(w, bool) and w == v), (k, w, v)
    assert log.config["lr"] == 0.1 and log.config["nested"]["a"] == [1, 2]
    scorecard("fuzzed keys and values (default mode)", rows_logged=len(expected),
              rows_local=len(rows), rows_wandb=len(log.history),
              examples=SETTINGS.max_examples, raised=0)


def test_fuzzed_log_strict_mode_rejects_naming_the_key(sr_root: Path, scorecard) -> None:
    run = steadyrun.init(mode="local", strict=True)
    counts = {"accepted": 0, "rejected": 0}

    @SETTINGS
    @given(METRICS)
    def log_one(metrics: dict[Any, Any]) -> None:
        bad = [k for k, v in metrics.items()
               if not key_ok(k) or expected_value(v) is REJECT]
        if not bad:
            run.log(metrics)
            counts["accepted"] += bool(metrics)  # an empty call writes no row
            return
        with pytest.raises((TypeError, ValueError)) as info:
            run.log(metrics)
        message = str(info.value)
        # A str key is shown as its repr; any other key as the repr of its repr.
        assert any(repr(k if isinstance(k, str) else repr(k)) in message for k in bad), (
            message, bad)
        counts["rejected"] += 1

    log_one()
    run.finish()
    assert counts["rejected"] > 50 and counts["accepted"] > 10, counts
    rows = steadyrun.open_run(run.id).rows
    assert len(rows) == counts["accepted"]  # a rejected call writes nothing at all
    scorecard("fuzzed keys and values (strict mode)", rows_logged=counts["accepted"],
              rows_local=len(rows), rows_wandb="n/a (local)",
              examples=SETTINGS.max_examples, rejections_naming_the_key=counts["rejected"])


@dataclasses.dataclass
class Node:
    name: str
    child: Any = None


def test_config_with_cycles_and_unserialisable_objects(sr_root: Path, scorecard) -> None:
    loop = Node("a")
    loop.child = Node("b", loop)
    listy: list[Any] = [1, 2]
    listy.append(listy)
    configs = [{"dc": loop}, {"l": listy}, {"lock": threading.Lock()},
               {"fn": lambda x: x}, {"gen": (i for i in range(2))}, {"big": 10**400},
               {"nan": math.nan}, {"obj": object()}, {1: "int key", (2, 3): "tuple key"}]
    run = steadyrun.init(mode="local")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for config in configs:
            run.config.update(config)  # never raises
    run.finish()
    strict = steadyrun.init(mode="local", strict=True)
    for config, key in [({"lock": threading.Lock()}, "lock"), ({"l": listy}, "l"),
                        ({"obj": object()}, "obj")]:
        with pytest.raises((TypeError, ValueError), match=key):
            strict.config.update(config)
    strict.finish()
    data = steadyrun.open_run(run.id)
    assert data.config["dc"]["name"] == "a" and data.config["big"] == str(10**400)
    rejected = [e for e in data.events if e["type"] == "rejected"]
    assert {"config.dc.child.child", "config.l[2]", "config.lock", "config.obj"} <= {
        e["key"] for e in rejected}, rejected
    scorecard("config with cycles and unserialisable objects", rows_logged="n/a",
              rows_local="n/a", rows_wandb="n/a (W&B config: see the fuzz row)",
              configs=len(configs), raised=0, rejected_entries=len(rejected))


# ---------------------------------------------------------------------- paths
def _files_holding(roots: list[Path], token: bytes) -> tuple[list[Path], int]:
    """Every regular file under `roots` whose bytes include `token`, and how many files
    were read; links are not followed (files/escape points at the secret, checked by
    itself)."""
    found, scanned = [], 0
    for root in roots:
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder, name)
                if not path.is_symlink():
                    scanned += 1
                    if token in path.read_bytes():
                        found.append(path)
    return found, scanned


def test_save_and_artifact_paths_never_leave_the_run_folder(sr_root: Path, tmp_path_factory,
                                                            scorecard) -> None:
    outside = tmp_path_factory.mktemp("outside")
    secret = outside / "secret.txt"
    secret.write_text("outside")
    src = tmp_path_factory.mktemp("src")
    report = src / "report.txt"
    # A token found nowhere else, so any copy of the report is found under any name.
    token = f"report {os.urandom(8).hex()}".encode()
    report.write_bytes(token)
    (src / "loop").symlink_to(src / "loop")
    run = steadyrun.init(mode="local")
    files = run.dir / "files"
    (files / "escape").symlink_to(secret)
    (files / "sub").mkdir()
    hostile = ["../x.txt", "../../x.txt", "sub/../../x.txt", str(outside / "abs.txt"),
               "escape", ".", "sub"]
    # Where each name would land if it were taken as given: run.dir/x.txt, the runs
    # folder's x.txt, outside/abs.txt, the secret (through the link), files/ and files/sub.
    landing = {os.path.normpath(files / name) for name in hostile}
    assert {str(run.dir / "x.txt"), str(run.dir.parent / "x.txt"),
            str(outside / "abs.txt")} <= landing
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name in hostile:
            assert run.save(report, name=name) is None, name  # refused, never raised
        assert run.save(src / "loop") is None  # a symlink loop is no file
        assert run.save(src / "missing") is None
        saved = run.save(report, name="sub/ok.txt")
    assert saved == files / "sub" / "ok.txt" and saved.read_bytes() == token
    # Warned once per source path (the rest counted), each refusal recorded.
    assert len([w for w in caught if "steadyrun" in str(w.message)]) >= 3
    # Written outside: no landing place holds a file it lacked, the secret is unchanged,
    # and the one copy of the report anywhere under the root or `outside` is the one the
    # run saved (the root holds runs/ and the run folder, where the '..' names point).
    assert secret.read_text() == "outside"
    assert (files / "escape").is_symlink()  # still the link: nothing replaced it
    new_files = sorted(p for p in landing if Path(p).is_file() and p != str(files / "escape"))
    copies, scanned = _files_holding([sr_root, outside], token)
    assert sorted(p.name for p in outside.iterdir()) == ["secret.txt"]
    written_outside = len(new_files) + len([p for p in copies if p != saved])
    assert not new_files and copies == [saved], (new_files, copies)

    # Checkpoints are recorded in place, never copied: a loop is skipped and a link that
    # leaves the checkpoint folder is refused, so the secret is not listed.
    ckpt = src / "ckpt"
    ckpt.mkdir()
    (ckpt / "weights.bin").write_bytes(b"w" * 100)
    (ckpt / "loop").symlink_to(ckpt)
    (ckpt / "out").symlink_to(outside)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = run.log_checkpoint(ckpt)
    assert info is not None and info["files"] == ["weights.bin"], info
    assert {s["path"]: s["why"].split(" (")[0] for s in info["skipped"]} == {
        "loop": "symlink loop", "out": "symlink escapes the checkpoint folder"}, info
    run.finish()
    assert steadyrun.open_run(run.id).files[-1]["path"] == "files/sub/ok.txt"
    assert _files_holding([sr_root, outside], token)[0] == [saved]  # finish() copied none
    # Hostile: the seven names, the source loop and the missing source, and the
    # checkpoint's loop and its link out.
    scorecard("save/checkpoint paths: '..', absolute, symlink loops, links out",
              rows_logged="n/a", rows_local="n/a", rows_wandb="n/a",
              hostile_paths=len(hostile) + 2 + 2, raised=0, written_outside=written_outside,
              landing_paths_checked=len(landing), files_scanned=scanned)


# ---------------------------------------------------------------------- context files
CONTEXTS = """
import os, subprocess, sys, time
t0 = time.monotonic()
import steadyrun

run = steadyrun.init(project="ctx")
print(f"RUN={run.id}", flush=True)
good = run.child_env()["STEADYRUN_CONTEXT"]
base = os.path.abspath("ctx")
os.makedirs(base, exist_ok=True)

def make(name, data=None, mode=0o600):
    path = os.path.join(base, name)
    if data is not None:
        with open(path, "wb") as fh:
            fh.write(data)
        os.chmod(path, mode)
    return path

cases = {
    "missing": os.path.join(base, "nope.json"),
    "corrupt": make("corrupt.json", b'{"run_id": "abc'),
    "not an object": make("list.json", b"[1, 2]"),
    "missing keys": make("keys.json", b'{"mode": "local"}'),
    "wrong types": make("types.json", b'{"run_id": 5, "dir": ["x"]}'),
    "relative dir": make("rel.json", b'{"run_id": "abcd1234", "dir": "runs/x"}'),
    "group-writable": make("gw.json", open(good, "rb").read(), 0o664),
    "directory": base,
    "char device": "/dev/zero",
    "huge": make("huge.json", b" " * 200_000),
}
fifo = os.path.join(base, "fifo")
os.mkfifo(fifo, 0o600)
cases["fifo"] = fifo
if os.geteuid() == 0:
    cases["other user"] = make("other.json", open(good, "rb").read())
    os.chown(cases["other user"], 65534, 65534)
CHILD = "import steadyrun; r = steadyrun.init(); r.log({'c/x': 1.0}); r.finish()"
i = 0
for label, path in cases.items():
    for _ in range(50):
        run.log({"train/loss": float(i)})
        i += 1
    env = {**os.environ, "STEADYRUN_CONTEXT": path}
    try:
        child = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                               text=True, timeout=30)
        last = (child.stderr.strip().splitlines() or [""])[-1]
        print(f"CASE={label}|{child.returncode}|{last}", flush=True)
    except subprocess.TimeoutExpired:
        print(f"CASE={label}|hang|", flush=True)
for _ in range(50):
    run.log({"train/loss": float(i)})
    i += 1
run.finish()
print(f"LOGGED={i}")
print(f"TOTAL={time.monotonic() - t0:.3f}")
""" + MEASURE


def test_bad_context_files_give_a_clear_error_never_crash_the_parent(tmp_path: Path,
                                                                     scorecard) -> None:
    done = run_script(tmp_path, CONTEXTS, timeout=180)
    cases = [line[5:].split("|", 2) for line in done.stdout.splitlines()
             if line.startswith("CASE=")]
    assert len(cases) >= 11, done.output
    for label, code, last in cases:
        assert code == "1", (label, code, last)  # the child fails, at once, never hangs
        assert last.startswith("steadyrun.log.context.ContextError: STEADYRUN_CONTEXT="), (
            label, last)
    assert "hang" not in done.stdout
    logged = int(done.value("LOGGED"))
    local = local_column(done.rdir, "train/loss")
    exactly_once(local, [float(i) for i in range(logged)])
    log = wandb_log(done.rdir)
    wb = [r["train/loss"] for r in log.history if "train/loss" in r]
    assert wb == local and log.exit_code == 0
    assert not any("c/x" in r for r in log.history)  # no child joined
    scorecard(f"STEADYRUN_CONTEXT missing/corrupt/foreign ({len(cases)} kinds)",
              rows_logged=logged, rows_local=len(local), rows_wandb=len(wb),
              **figures_of(done))


def test_context_file_of_another_user_is_refused(sr_root: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process: the error names the file and the reason (the script above runs it too)."""
    run = steadyrun.init(mode="local")
    path = Path(run.child_env()["STEADYRUN_CONTEXT"])
    other = tmp_path / "other.json"
    other.write_bytes(path.read_bytes())
    if os.geteuid() == 0:
        os.chown(other, 65534, 65534)
        reason = "another user"
    else:
        other.chmod(0o666)
        reason = "writable by others"
    monkeypatch.setenv("STEADYRUN_CONTEXT", str(other))
    with pytest.raises(steadyrun.ContextError, match=reason):
        steadyrun.init()
    monkeypatch.delenv("STEADYRUN_CONTEXT")
    run.log({"train/loss": 1.0})  # the parent is untouched
    run.finish()
    assert steadyrun.open_run(run.id).column("train/loss") == [(0, 1.0)]
