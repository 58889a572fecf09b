"""Run every benchmark, each in its own fresh process, and write the results table.

    .venv/bin/python benchmarks/run_all.py            # the full suite (`make bench`)
    .venv/bin/python benchmarks/run_all.py --quick    # a fast smoke variant
    .venv/bin/python benchmarks/run_all.py --only a,f # some sections only
    .venv/bin/python benchmarks/run_all.py --only a,p --merge  # re-measure a and p, keep the rest

Writes results.md (a Markdown table: benchmark, steadyrun figure, baseline figure,
ratio, target, met?) and results.json (the same rows with their raw numbers, and the
machine they ran on) into --out (default: benchmarks/results/, where every measured
output of benchmarks/ and of the fault scorecard lives). A full run of every section into
the default folder also refreshes the table between README.md's `bench:start` and
`bench:end` markers (the rows with a target, and the throughputs). A script that fails or times
out still gets its rows in the table, marked as failed, and makes the exit code 1.

Every figure is compared with its baseline inside the same run of the same script, each
system timed alone in its own fresh process: these machines are noisy, so read the
ratios and the medians, and compare absolute numbers only between rows of one results
file. `--only` writes its results.md with those sections alone: give it another --out
to keep the full table. Section p (bench_peers.py) needs the `bench` extra's peers.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"  # the default --out of every script (_common.RESULTS)

# (script, section, row ids it writes, full-run timeout in seconds), in run order.
SCRIPTS: list[tuple[str, str, list[str], int]] = [
    ("bench_startup.py", "d", ["d1", "d2", "d3"], 300),
    ("bench_log.py", "a", ["a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8"], 400),
    ("bench_loop.py", "b", ["b1", "b2", "b3", "b4"], 900),
    ("bench_throughput.py", "c", ["c1", "c2", "e2"], 600),
    ("bench_memory.py", "e", ["e1"], 900),
    ("bench_reader.py", "f", ["f1", "f2", "f3", "f4", "f5", "f6"], 1500),
    ("bench_deferred.py", "g", ["g1", "g2", "g3"], 300),
    # Every peer alone in its own fresh process, alternating: about 6 min in full.
    ("bench_peers.py", "p", [f"p{i}" for i in range(1, 9)], 720),
    # The dashboard and the report, and Trackio's dashboard: about 5 min in full.
    ("bench_ui.py", "u", ["u1", "u2", "u3", "u4"], 900),
    # 1,000 small runs written (about 15 s to 1 min), then leaderboard and compare timed.
    ("bench_compare.py", "l", ["l1", "l2", "l3"], 900),
    # A 1 M-row W&B run written by raw wandb.log (about 6 min on 2 cores), then
    # `steadyrun import` and `steadyrun doctor` timed on it.
    ("bench_wandb_import.py", "w", ["w1", "w2"], 1800),
    # A print-heavy loop (10,000 lines/s) with the console captured and without.
    ("bench_console.py", "k", ["k1", "k2", "k3"], 600),
]
# The peers of section p (the `bench` extra), named with their versions.
PEERS = ("trackio", "tensorboardX", "mlflow", "dvclive")
ROW_ORDER = sorted((rid for _, _, ids, _ in SCRIPTS for rid in ids),
                   key=lambda rid: (rid[0], int(rid[1:])))
SECTIONS = {
    "a": "(a) run.log on the training thread",
    "b": "(b) a real training loop",
    "c": "(c) throughput",
    "d": "(d) import and init",
    "e": "(e) memory",
    "f": "(f) reader",
    "g": "(g) deferred tensors",
    "p": "(p) peers, each alone in its own process",
    "u": "(u) the dashboard (`steadyrun ui`), the report, and Trackio's dashboard",
    "l": "(l) deciding with runs: `steadyrun leaderboard` and `compare` over many runs",
    "w": "(w) reading a big W&B run: `steadyrun import` and `steadyrun doctor`",
    "k": "(k) console capture on a print-heavy loop",
}


def machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "cpus": os.cpu_count(), "python": platform.python_version(),
                            "platform": platform.platform()}
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    for mod in ("steadyrun", "wandb", "torch", "orjson", *PEERS):
        try:
            from importlib.metadata import version

            info[mod] = version(mod)
        except Exception:
            info[mod] = None
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                              capture_output=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "src"], cwd=REPO,
                               text=True, capture_output=True, timeout=10).stdout.strip()
        info["commit"] = head + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        info["commit"] = None
    return info


def loadavg() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_script(script: str, ids: list[str], timeout: int, args: argparse.Namespace,
               scratch: Path) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    out_json = scratch / f"{script}.json"
    cmd = [sys.executable, str(HERE / script), "--json", str(out_json), "--out", str(args.out),
           "--workdir", str(scratch / "work")]
    flag = "--smoke" if args.smoke else "--quick" if args.quick else ""
    if flag:
        cmd.append(flag)
    print(f"== {script}{' ' + flag if flag else ''}", flush=True)
    t0 = time.perf_counter()
    load0 = loadavg()
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True,
                              timeout=timeout)
        code, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code = "timeout"
        output = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) \
            else (exc.stdout or "")
    seconds = time.perf_counter() - t0
    status = {"script": script, "seconds": round(seconds, 1), "returncode": code,
              "load_before": load0, "load_after": loadavg()}
    rows: list[dict[str, Any]] = []
    if code == 0 and out_json.exists():
        rows = orjson.loads(out_json.read_bytes())
    else:
        status["output_tail"] = output[-4000:]
        print(output[-4000:], file=sys.stderr)
    got = {r["id"] for r in rows}
    for rid in ids:
        if rid not in got:
            rows.append({"id": rid, "benchmark": f"{script}: no result", "steadyrun": "FAILED",
                         "baseline": "—", "ratio": "—", "target": "—", "met": None,
                         "note": f"{script} exited with {code}; see results.json", "data": {},
                         "failed": True})
    for r in rows:
        print(f"   [{r['id']}] {r['steadyrun']} | {r['baseline']} | {r['ratio']}", flush=True)
    print(f"   ({seconds:.0f} s)", flush=True)
    return rows, status


def kept_rows(path: Path, fresh: set[str]) -> list[dict[str, Any]]:
    """The rows of an earlier results.json that this run did not measure again."""
    try:
        old = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return []
    meta = old.get("meta", {})
    at = {"commit": meta.get("machine", {}).get("commit"), "date": meta.get("date"),
          "load": meta.get("load_range")}
    return [{**r, "at": r.get("at") or at} for r in old.get("rows", [])
            if r.get("id") not in fresh]


def measured_at(rows: list[dict[str, Any]]) -> str:
    """'a, p: 1234abc (date, load); ...': which rows were measured when."""
    groups: dict[tuple[Any, Any, Any], list[str]] = {}
    for r in rows:
        at = r.get("at") or {}
        groups.setdefault((at.get("commit"), at.get("date"), at.get("load")), []).append(r["id"])
    parts = []
    for (commit, date, load), ids in groups.items():
        sections = sorted({i[0] for i in ids})
        parts.append(f"section{'s' if len(sections) > 1 else ''} {', '.join(sections)} at "
                     f"{commit} ({date}, load {load})")
    return "; ".join(parts)


def cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    m = meta["machine"]
    lines = [
        "# steadyrun benchmarks",
        "",
        f"Written by `benchmarks/run_all.py{' --quick' if meta['quick'] else ''}` on "
        f"{meta['date']} in {meta['seconds']:.0f} s"
        + (" (QUICK smoke variant: small sizes, not the figures to quote)" if meta["quick"]
           else "") + ".",
        f"Machine: {m.get('cpu')}, {m.get('cpus')} CPUs, {m.get('memory_gb', '?')} GiB; "
        f"Python {m.get('python')}, steadyrun {m.get('steadyrun')} ({m.get('commit')}), "
        f"wandb {m.get('wandb')}, torch {m.get('torch')}, orjson {m.get('orjson')}"
        + "".join(f", {p} {m[p]}" for p in PEERS if m.get(p)) + ".",
        f"Load average during the run: {meta['load_range']} (on {m.get('cpus')} CPUs). "
        f"Measured: {meta['measured_at']}. "
        "Every figure is a median, measured against its baseline in the same run of the "
        "same script; compare ratios, not absolute times across machines or runs.",
        "",
        "| benchmark | steadyrun | baseline | ratio | target | met? |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        met = {True: "yes", False: "**no**", None: "—"}[r.get("met")]
        lines.append(f"| {cell(r['id'])}. {cell(r['benchmark'])} | {cell(r['steadyrun'])} | "
                     f"{cell(r['baseline'])} | {cell(r['ratio'])} | {cell(r['target'])} | "
                     f"{met} |")
    lines += ["", "## How each row was measured", ""]
    for r in rows:
        if r.get("note"):
            lines.append(f"- **{r['id']}**: {r['note']}")
    lines += ["", "Sections: " + "; ".join(f"{k} = {v}" for k, v in SECTIONS.items()) + ".",
              "Scripts: `benchmarks/bench_*.py`, each runnable alone (`--quick` for a smoke "
              "run); the raw numbers are in results.json. docs/performance.md explains the "
              "cost model behind them.", ""]
    return "\n".join(lines)


# Quoted beside the rows that have a target: the throughputs, and the peer table.
README_ROWS = ("c1", "c2", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "u4")
MARK_START, MARK_END = "<!-- bench:start -->", "<!-- bench:end -->"


def update_readme(rows: list[dict[str, Any]], meta: dict[str, Any],
                  readme: Path = REPO / "README.md") -> bool:
    """Replace the README's table between its bench markers; False when it has none."""
    try:
        text = readme.read_text()
    except OSError:
        return False
    start, end = text.find(MARK_START), text.find(MARK_END)
    if start < 0 or end < start:
        return False
    m = meta["machine"]
    lines = [f"{m.get('cpus')} CPUs ({m.get('cpu')}); measured: {meta['measured_at']}; "
             f"every row of it in "
             "[benchmarks/results/results.md](benchmarks/results/results.md).", "",
             "| benchmark | steadyrun | baseline | ratio | target | met? |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        if r.get("target", "—") == "—" and r["id"] not in README_ROWS:
            continue
        met = {True: "yes", False: "**no**", None: "—"}[r.get("met")]
        lines.append(f"| {cell(r['id'])}. {cell(r['benchmark'])} | {cell(r['steadyrun'])} | "
                     f"{cell(r['baseline'])} | {cell(r['ratio'])} | {cell(r['target'])} | "
                     f"{met} |")
    block = MARK_START + "\n" + "\n".join(lines) + "\n"
    readme.write_text(text[:start] + block + text[end:])
    return True


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    p.add_argument("--smoke", action="store_true",
                   help="the test suite's run: --quick, one repetition, smallest sizes")
    p.add_argument("--out", type=Path, default=RESULTS,
                   help="where results.md/json and the scripts' side outputs go")
    p.add_argument("--only", default="", help="comma-separated sections, e.g. a,f")
    p.add_argument("--merge", action="store_true",
                   help="with --only: keep the other sections' rows of the existing "
                        "results.json (each row names the commit it was measured at)")
    args = p.parse_args()
    args.quick = args.quick or args.smoke
    args.out = args.out.resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    started = time.perf_counter()
    date = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    loads = [loadavg()]
    all_rows: list[dict[str, Any]] = []
    statuses: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="steadyrun-bench-") as tmp:
        for script, section, ids, timeout in SCRIPTS:
            if only and section not in only and not any(i[0] in only for i in ids):
                continue
            rows, status = run_script(script, ids, timeout, args, Path(tmp))
            all_rows += rows
            statuses.append(status)
            loads.append(status["load_after"])
    ones = [x[0] for x in loads if x]
    meta = {"date": date, "quick": args.quick, "seconds": time.perf_counter() - started,
            "machine": machine(), "scripts": statuses,
            "load_range": f"{min(ones):.1f}–{max(ones):.1f}" if ones else "unknown"}
    for r in all_rows:
        r["at"] = {"commit": meta["machine"].get("commit"), "date": date,
                   "load": meta["load_range"]}
    if args.merge and only:
        all_rows += kept_rows(args.out / "results.json", {r["id"] for r in all_rows})
    order = {rid: i for i, rid in enumerate(ROW_ORDER)}
    all_rows.sort(key=lambda r: order.get(r["id"], len(order)))
    meta["measured_at"] = measured_at(all_rows)
    (args.out / "results.md").write_text(markdown(all_rows, meta))
    (args.out / "results.json").write_bytes(orjson.dumps(
        {"meta": meta, "rows": all_rows}, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY,
        default=str))
    failed = [s["script"] for s in statuses if s["returncode"] != 0]
    whole = not only or args.merge
    if not args.quick and whole and args.out == RESULTS and update_readme(all_rows, meta):
        print("refreshed the table in README.md")
    print(f"wrote {args.out / 'results.md'} and results.json in {meta['seconds']:.0f} s"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
