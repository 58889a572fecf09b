"""Run the fault suite with measurements on and render docs/reliability.md's scorecard.

    .venv/bin/python tests/faults/make_scorecard.py            # the default suite (~4 min)
    .venv/bin/python tests/faults/make_scorecard.py --soak     # + the full-size W&B soaks
    .venv/bin/python tests/faults/make_scorecard.py --render   # re-render, no test run

The suite writes one JSON line per case to the file named by STEADYRUN_SCORECARD. One
run of this script is the whole scorecard: benchmarks/results/scorecard.json holds the
rows of that run and nothing older, each stamped with the commit and date it was
measured at, so a case that stopped running, or a soak that was not run this time,
leaves no stale row behind. When pytest fails nothing is written and the script exits
non-zero: a failing case must never keep an old passing row. The script also writes
the 1M-row RSS curve to benchmarks/results/rss_1m_rows.csv, puts
benchmarks/raw_wandb_faults.py's measurements of raw wandb
(benchmarks/results/raw_wandb_faults.json) beside each row, and replaces the table
between the scorecard markers of docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
SCORECARD = RESULTS / "scorecard.json"
RAW = RESULTS / "raw_wandb_faults.json"
RSS_CSV = RESULTS / "rss_1m_rows.csv"
DOC = REPO / "docs" / "reliability.md"
START, END = "<!-- scorecard:start -->", "<!-- scorecard:end -->"
RSS_START, RSS_END = "<!-- rss:start -->", "<!-- rss:end -->"

# Which raw-wandb measurement sits beside a case (by the start of the case's name).
RAW_FOR = [
    ("W&B refused", "refused"), ("W&B silent", "hang"), ("W&B http500", "http500"),
    ("W&B slow", "slow"), ("sidecar killed", "kill_core"),
    ("training + sidecar killed", "sigkill_training"), ("training SIGKILLed", "sigkill_training"),
    ("SIGKILL right after", "sigkill_training"),
    ("disk full", "disk_full"), ("read-only", "read_only"), ("16 threads", "threads"),
    ("4 processes", "processes"), ("1,000,000 rows", "throughput"), ("burst", "throughput"),
    ("fuzzed", "bad_input"), ("config with cycles", "config_cycle"),
    ("save/checkpoint", "save_escape"), ("planted secrets", "secrets"),
]
NOT_MEASURED = {
    "W&B stand-in down": "not measurable without a real W&B server: against a stand-in, "
                        "`wandb.init` never completes (rows above)",
    "run.json corrupt": "no equivalent: wandb keeps no run manifest",
    "STEADYRUN_CONTEXT": "no equivalent: wandb has no pipeline context file",
    "fsync stalled": "not measured: wandb's writer is wandb-core (Go), whose fsync a "
                     "Python script cannot stall",
}
ORDER = ["W&B refused", "W&B silent", "W&B http500", "W&B slow", "W&B stand-in",
         "sidecar killed mid", "sidecar killed during", "training + sidecar",
         "training SIGKILLed", "SIGKILL right after", "fsync stalled", "disk full", "read-only run folder (at init, default",
         "read-only run folder (at init, strict", "read-only run folder (mid", "run.json",
         "16 threads", "4 processes", "1,000,000", "burst", "fuzzed keys and values (default",
         "fuzzed keys and values (strict", "config with", "save/", "STEADYRUN_CONTEXT",
         "planted secrets", "dependency audit"]
STANDARD = ("case", "test", "rows_logged", "rows_local", "rows_wandb", "time_to_end_s",
            "peak_mb", "wandb_done_s", "commit", "date")


def measured_at(repo: Path = REPO) -> dict[str, str]:
    """The commit the figures belong to ("+dirty" when the tree has changes) and today."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
        return proc.stdout.strip() if proc.returncode == 0 else ""

    commit = git("rev-parse", "--short=7", "HEAD") or "unknown"
    # The measured outputs (raw wandb's figures, `make scorecard` writes them first, and
    # this table) do not make the code dirty.
    if git("status", "--porcelain", "--untracked-files=no", "--", ".",
           ":!benchmarks/results", ":!docs/reliability.md"):
        commit += "+dirty"
    return {"commit": commit, "date": time.strftime("%Y-%m-%d")}


def run_suite(soak: bool, tests: list[str], stamp: dict[str, str],
              jobs: int = 2) -> list[dict[str, Any]]:
    """The rows of one run of the suite, each stamped; SystemExit when pytest fails."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "scorecard.jsonl"
        rss = Path(tmp) / RSS_CSV.name  # kept only when the whole suite passes
        env = {**os.environ, "STEADYRUN_SCORECARD": str(out), "STEADYRUN_RSS_CSV": str(rss)}
        cmd = [sys.executable, "-m", "pytest", "-q", "-n", str(jobs), "-p", "no:cacheprovider",
               *tests]
        if soak:
            cmd += ["-m", "soak or not soak", "--timeout", "3600"]
        t0 = time.monotonic()
        proc = subprocess.run(cmd, cwd=REPO, env=env)
        print(f"fault suite: exit {proc.returncode} in {time.monotonic() - t0:.0f}s")
        if proc.returncode != 0:
            # A case that fails now must not keep the row it had when it passed.
            raise SystemExit(f"make_scorecard: pytest failed (exit {proc.returncode}); "
                             "the scorecard is left as it was")
        rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
        if rss.exists():
            RSS_CSV.parent.mkdir(parents=True, exist_ok=True)
            RSS_CSV.write_bytes(rss.read_bytes())
    if not rows:
        raise SystemExit("make_scorecard: the suite ran but recorded no figures")
    return [{**row, **stamp} for row in rows]


def audit(stamp: dict[str, str]) -> dict[str, Any]:
    """`pip-audit` over the environment, when it is installed (see `make audit`)."""
    exe = Path(sys.executable).with_name("pip-audit")
    if not exe.exists():
        return {"case": "dependency audit (pip-audit)", "test": "make audit",
                "outcome": "pip-audit not installed: run `make audit`", "rows_logged": "n/a",
                "rows_local": "n/a", "rows_wandb": "n/a", **stamp}
    t0 = time.monotonic()
    proc = subprocess.run([str(exe), "--strict", "-l", "--progress-spinner", "off"],
                          capture_output=True, text=True, timeout=600)
    text = (proc.stdout + proc.stderr).strip().splitlines()
    last = (text or [""])[-1].replace("ERROR:pip_audit._cli:", "")[:160]
    outcome = (f"exit {proc.returncode}: " + ("no known vulnerabilities" if proc.returncode == 0
               else f"the vulnerability service is unreachable from this machine, so "
                    f"--strict stops at the first dependency it cannot audit ({last})"
               if "could not be audited" in last else last))
    return {"case": "dependency audit (pip-audit --strict)", "test": "make audit",
            "rows_logged": "n/a", "rows_local": "n/a", "rows_wandb": "n/a",
            "time_to_end_s": round(time.monotonic() - t0, 1), "outcome": outcome, **stamp}


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _rank(case: str) -> int:
    return next((i for i, prefix in enumerate(ORDER) if case.startswith(prefix)), len(ORDER))


def _raw_text(case: str, raw: dict[str, Any]) -> str:
    for prefix, text in NOT_MEASURED.items():
        if case.startswith(prefix):
            return text
    name = next((r for p, r in RAW_FOR if case.startswith(p)), None)
    res = raw.get(name) if name else None
    if not res:
        return "not measured"
    if name == "throughput":  # no buffer: every call costs W&B's ingest in the training thread
        rps = res["rows_per_s"]
        calls = 100_000 if case.startswith("burst") else 1_000_000
        return (f"no buffer: each `log()` costs {1000 / rps:.2f} ms of the training thread "
                f"({rps:,} rows/s measured over 20,000 rows), so {calls:,} calls take "
                f"{calls / rps:,.0f} s; RSS +{res['rss_growth_mb']} MB [`{name}`]")
    outcome = str(res.get("outcome", "")).splitlines()[0]
    if len(outcome) > 110:
        outcome = outcome[:110].rsplit(" ", 1)[0] + " …"
    bits = []
    if "init_s" in res:
        bits.append(f"`wandb.init` blocked {res['init_s']:.1f} s (init_timeout="
                    f"{raw.get('_init_timeout', 10)}; 90 s by default)")
    if res.get("rows_wandb") is not None and res.get("rows_logged"):
        bits.append(f"rows in its log: {res['rows_wandb']:,} of {res['rows_logged']:,}")
    if "rows_per_s" in res:
        bits.append(f"{res['rows_per_s']:,} rows/s, RSS +{res['rss_growth_mb']} MB over 20k")
    text = "; ".join([outcome, *bits]) + f" [`{name}`]"
    if name == "secrets" and raw.get("ports_and_modes"):
        text += f"; {raw['ports_and_modes']['outcome']} [`ports_and_modes`]"
    return text


def render(rows: list[dict[str, Any]], raw: dict[str, Any]) -> str:
    lines = ["| Case | Rows logged / found locally / found in W&B | Time to end (s): "
             "training / W&B done | Peak RSS of training (MB) | Other figures | Raw `wandb` "
             "in the same case, measured | Test |",
             "|---|---|---|---|---|---|---|"]
    for row in sorted(rows, key=lambda r: (_rank(r["case"]), r["case"], r.get("test", ""))):
        other = "; ".join(f"{k.replace('_', ' ')}: {_fmt(v)}" for k, v in row.items()
                          if k not in STANDARD)
        rows_col = " / ".join(_fmt(row.get(k)) for k in ("rows_logged", "rows_local",
                                                            "rows_wandb"))
        test = row.get("test", "").replace("tests/faults/", "")
        ends = _fmt(row.get("time_to_end_s"))
        if row.get("wandb_done_s") is not None:
            ends += f" / {_fmt(row['wandb_done_s'])}"
        lines.append(f"| {row['case']} | {rows_col} | {ends} | "
                     f"{_fmt(row.get('peak_mb'))} | {other or '—'} | "
                     f"{_raw_text(row['case'], raw)} | `{test}` |")
    return "\n".join(lines)


def _replace(doc: str, start: str, end: str, body: str) -> str:
    head, found, rest = doc.partition(start)
    if not found:
        return doc
    _, _, tail = rest.partition(end)
    return f"{head}{start}\n{body}\n{end}{tail}"


def rss_table(path: Path) -> str:
    """The RSS curve of the million-row run, one column per 100,000 rows."""
    import csv

    with path.open() as fh:
        points = [r for r in csv.DictReader(fh) if int(r["rows"]) % 100_000 == 0]
    head = "| rows | " + " | ".join(f"{int(r['rows']) // 1000}k" if int(r["rows"]) < 10**6
                                     else "1M" for r in points) + " |"
    return "\n".join([
        head, "|---" * (len(points) + 1) + "|",
        "| RSS (MB), default bound 100,000 | " + " | ".join(r["rss_mb"] for r in points)
        + " |",
        "| buffered records | " + " | ".join(f"{int(r['buffered_records']):,}"
                                           for r in points) + " |",
        "| RSS (MB), buffer bound 10,000 | " + " | ".join(r.get("rss_mb_bound_10k") or "—"
                                                        for r in points) + " |"])


def header(rows: list[dict[str, Any]], raw_doc: dict[str, Any] | None = None) -> str:
    """One line naming the commit(s) and date(s) the rows were measured at (and when raw
    wandb's figures beside them were)."""
    from collections import Counter

    stamps = Counter((r.get("commit", "unknown"), r.get("date", "unknown")) for r in rows)
    said = "; ".join(f"{n} row{'s' * (n != 1)} at commit `{c}` on {d}" for (c, d), n in sorted(
        stamps.items(), key=lambda item: -item[1]))
    line = f"Measured by `tests/faults/make_scorecard.py`: {said}."
    dates = sorted({c.get("measured", "an earlier date") for c in
                    (raw_doc or {}).get("cases", {}).values()})
    if dates:
        line += (f" Raw `wandb` {raw_doc.get('wandb', '?')} measured by "
                 f"`benchmarks/raw_wandb_faults.py` on {', '.join(dates)}.")
    return line


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--soak", action="store_true", help="include the full-size soak variants")
    p.add_argument("--render", action="store_true", help="only re-render the saved figures")
    p.add_argument("--no-audit", action="store_true")
    p.add_argument("--audit-only", action="store_true",
                   help="measure only the dependency audit, keeping the saved rows (the "
                        "audit row carries its own commit and date)")
    p.add_argument("--tests", nargs="+", default=[str(REPO / "tests" / "faults")],
                   help=argparse.SUPPRESS)  # the tool's own test points it at a tiny suite
    p.add_argument("--jobs", type=int, default=2, help=argparse.SUPPRESS)
    p.add_argument("--results", type=Path, default=SCORECARD, help=argparse.SUPPRESS)
    p.add_argument("--doc", type=Path, default=DOC, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.render or args.audit_only:
        rows = json.loads(args.results.read_text())
        if args.audit_only:
            rows = [r for r in rows if not r["case"].startswith("dependency audit")]
            rows.append(audit(measured_at()))
    else:
        stamp = measured_at()
        rows = run_suite(args.soak, args.tests, stamp, args.jobs)
        if not args.no_audit:
            rows.append(audit(stamp))
    if not args.render:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        rows.sort(key=lambda r: (r["case"], r.get("test", "")))
        args.results.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    raw_doc = json.loads(RAW.read_text()) if RAW.exists() else {"cases": {}}
    raw = {**raw_doc.get("cases", {}), "_init_timeout": raw_doc.get("init_timeout_s", 10)}
    table = header(rows, raw_doc) + "\n\n" + render(rows, raw)
    doc = _replace(args.doc.read_text(), START, END, table)
    if RSS_CSV.exists() and args.doc == DOC:
        doc = _replace(doc, RSS_START, RSS_END, rss_table(RSS_CSV))
    args.doc.write_text(doc)
    print(f"wrote {args.doc} ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
