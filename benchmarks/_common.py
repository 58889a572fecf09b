"""Shared helpers of the benchmark scripts: arguments, isolated environments, results.

Every script measures steadyrun against a baseline in the same run, because these
machines are noisy (2 cores, shared): figures are medians and ratios, never one lone
absolute time. Each system is timed alone, in a fresh process of its own, the systems
alternating over repetitions: a peer timed while steadyrun's writer thread or sidecar
competes for the CPU is not a fair baseline (bench_peers.py's `measure` runs such a
child and waits until every process it started has exited). A script writes its result rows as JSON (`--json PATH`) for
`run_all.py`, and prints them as a small table when run by hand.

A result row:
    id         "a1", "b1", ...: the letter is the issue's section
    benchmark  what is measured, in words
    steadyrun  the steadyrun figure, formatted (a string)
    baseline   the baseline figure, formatted, naming the baseline
    ratio      a formatted ratio saying which way it goes, or "—"
    target     the issue's target, or "—" (an informational row)
    met        True / False, or None (no target, or skipped)
    note       how it was measured, and anything a reader should know
    data       raw numbers (medians, samples) for results.json
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from steadyrun.testing import wandb_env  # plain stdlib: loads nothing a benchmark measures

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# Every measured output (tables, raw numbers, curves) goes here, in one folder beside
# the scripts; run_all.py names the same folder for its own default.
RESULTS = HERE / "results"
PY = sys.executable

# Variables of the caller that would change what steadyrun or wandb do in a benchmark.


# ---------------------------------------------------------------------- arguments
def parse_args(doc: str | None, extra: Callable[[argparse.ArgumentParser], None] | None = None
               ) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(doc or "").strip().splitlines()[0] if doc else None)
    p.add_argument("--quick", action="store_true", help="a fast smoke variant (smaller sizes)")
    p.add_argument("--smoke", action="store_true",
                   help="the test suite's check that every row is written: --quick with one "
                        "repetition and the smallest sizes (figures mean nothing)")
    p.add_argument("--json", type=Path, default=None, help="write the result rows here")
    p.add_argument("--out", type=Path, default=RESULTS,
                   help="folder for side outputs (CSV, PNG); default: benchmarks/results/")
    p.add_argument("--workdir", type=Path, default=None,
                   help="scratch folder for runs (default: a fresh temporary folder)")
    if extra is not None:
        extra(p)
    args = p.parse_args()
    args.quick = args.quick or args.smoke
    return args


def workdir(args: argparse.Namespace, name: str) -> Path:
    """A fresh scratch folder; big runs are written here and deleted at the end."""
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=args.workdir))
    return Path(tempfile.mkdtemp(prefix=f"steadyrun-bench-{name}-"))


# ---------------------------------------------------------------------- environments
def bench_env(base: Path, **extra: str | None) -> dict[str, str]:
    """The tests' private W&B environment (`steadyrun.testing.wandb_env`), plus W&B
    offline runs under `base` and W&B kept silent."""
    env = wandb_env(base, WANDB_SILENT="true", WANDB_CONSOLE="off",
                    WANDB_DIR=str(base / "wandb-runs"), **extra)
    (base / "wandb-runs").mkdir(parents=True, exist_ok=True)
    return env


def child_json(cmd: list[str], env: dict[str, str], timeout: float = 300) -> dict[str, Any]:
    """Run a measuring child; its last stdout line is its JSON result."""
    import json
    import subprocess

    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def use_env(env: dict[str, str]) -> None:
    """Make `env` this process's environment (for in-process steadyrun and wandb)."""
    for key in list(os.environ):
        if key not in env:
            del os.environ[key]
    os.environ.update(env)


def wandb_settings() -> Any:
    """Raw wandb, offline, with everything that costs time and is not logging turned off.

    The same settings the steadyrun sidecar gives its own wandb run, so that the
    baseline is wandb at its fastest, not wandb slowed by system stats or git probes.
    """
    import wandb

    return wandb.Settings(
        mode="offline", silent=True, console="off", save_code=False, disable_code=True,
        disable_git=True, x_disable_meta=True, x_disable_stats=True,
        x_save_requirements=False, disable_job_creation=True)


def wandb_init(**kwargs: Any) -> Any:
    import wandb

    kwargs.setdefault("project", "steadyrun-bench")
    return wandb.init(settings=wandb_settings(), **kwargs)


# ---------------------------------------------------------------------- timing
def median(xs: Iterable[float]) -> float:
    return statistics.median(list(xs))


def quantiles(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    if not xs:
        return {}
    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
    return {"min": xs[0], "p25": q[0], "median": q[1], "p75": q[2], "max": xs[-1], "n": len(xs)}


def now() -> float:
    return time.perf_counter()


def load_note() -> str:
    """The machine's load: these figures are only comparable within one run."""
    try:
        one, five, _ = os.getloadavg()
        return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} CPUs"
    except OSError:
        return f"{os.cpu_count()} CPUs"


# ---------------------------------------------------------------------- formatting
def spread(xs: list[float], fmt: Callable[[float], str]) -> str:
    """'median (min–max)' of repetitions, each formatted by `fmt` (the range's low end
    without its unit): what the docs quote, never the best run."""
    if not xs:
        return "—"
    if len(xs) == 1:
        return fmt(xs[0])
    return f"{fmt(median(xs))} ({fmt(min(xs)).split()[0]}–{fmt(max(xs))})"


def fmt_us(x: float | None) -> str:
    if x is None:
        return "—"
    if x < 10:
        return f"{x:.2f} µs"
    if x < 100:
        return f"{x:.1f} µs"
    return f"{x:,.0f} µs"


def fmt_ms(x: float | None) -> str:
    if x is None:
        return "—"
    return f"{x:.1f} ms" if x < 100 else f"{x:,.0f} ms"


def fmt_s(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f} s"


def fmt_x(x: float | None, how: str = "") -> str:
    if x is None:
        return "—"
    num = f"{x:.0f}×" if x >= 10 else f"{x:.1f}×" if x >= 1 else f"{x:.2f}×"
    return f"{num} {how}".strip()


def fmt_rate(x: float | None, unit: str = "rows/s") -> str:
    return "—" if x is None else f"{x:,.0f} {unit}"


def fmt_mb(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f} MB"


def row(id: str, benchmark: str, steadyrun: str, baseline: str, ratio: str = "—",
        target: str = "—", met: bool | None = None, note: str = "",
        **data: Any) -> dict[str, Any]:
    return {"id": id, "benchmark": benchmark, "steadyrun": steadyrun, "baseline": baseline,
            "ratio": ratio, "target": target, "met": met, "note": note, "data": data}


def skip_without(module: str, args: argparse.Namespace, ids: dict[str, str],
                 started: float) -> bool:
    """When `module` cannot be imported, emit each row as skipped and return True."""
    import importlib.util

    if importlib.util.find_spec(module) is not None:
        return False
    emit(args, [row(rid, name, f"skipped: {module} is not installed", "—",
                    note=f"pip install {module} (the dev extra has it) to run this benchmark")
                for rid, name in ids.items()], started)
    return True


def emit(args: argparse.Namespace, rows: list[dict[str, Any]], started: float,
         load: str | None = None, cleanup: Path | None = None) -> None:
    """Write the rows for run_all.py and print them for a person; then remove `cleanup`
    (the script's work folder: segments of a million rows are gigabytes)."""
    elapsed = time.perf_counter() - started
    for r in rows:
        r.setdefault("data", {})["script_seconds"] = round(elapsed, 2)
        if load is not None:
            r["data"]["load"] = load
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_bytes(orjson.dumps(rows, option=orjson.OPT_INDENT_2
                                           | orjson.OPT_SERIALIZE_NUMPY, default=str))
    for r in rows:
        met = {True: "yes", False: "NO", None: "—"}[r["met"]]
        print(f"[{r['id']}] {r['benchmark']}\n    steadyrun: {r['steadyrun']}   baseline: "
              f"{r['baseline']}   ratio: {r['ratio']}   target: {r['target']}   met: {met}")
        if r["note"]:
            print(f"    {r['note']}")
    print(f"({elapsed:.1f} s; {load_note()})")
    sys.stdout.flush()
    if cleanup is not None:
        import shutil

        shutil.rmtree(cleanup, ignore_errors=True)
