"""(u) The dashboard: first paint of a 1 M-row run, the runs table, the report, Trackio.

The data, written by this benchmark in fresh child processes: a run of 1 M rows (quick:
50 k) of 10 keys (train/loss, train/acc, ... the same values for every system), logged
by `run.log` in local mode; 100 small runs (quick: 20) of 100 rows x 5 keys each, for
the runs table. The generated runs are kept for the whole invocation (one temp folder)
and deleted at its end.

  u1  first paint: headless chromium (Debian's, through playwright; a tall 1400x4000
      viewport, so that every chart is on screen) opens `#charts?runs=<id>` on a fresh
      `steadyrun ui` process and waits until every `.chart` has `data-points` set
      (each chart drawn with its points). Timed from the request of the page: the
      server was started before and has printed its URL. Each load in a fresh browser
      context (no HTTP cache) and a fresh server process. Warm: the columnar cache
      of the run is in place (written by an unmeasured first load) and the segment is
      in the OS page cache, as for any run looked at twice; cold, once: the cache
      deleted first, so the load parses the segment and writes it again
  u2  the runs table with 100 runs: GET /api/runs on a fresh server (the first answer,
      which scans every run, and a second one), and the browser opening `#runs` until
      its table shows every run
  u3  `steadyrun report <id> -o report.html` on the 1 M-row run, as a user runs it (a
      fresh process, the columnar cache in place): wall time and the file's size
  u4  Trackio's dashboard on the same data: the 1 M rows x 10 keys written into a
      Trackio project (its local SQLite database) by Trackio's own writer,
      `SQLiteStorage.bulk_log` (what its logging thread calls; `trackio.log` a million
      times would take minutes more), in batches of 50,000 rows; then `trackio.show()`
      in a fresh process and the same browser, viewport and clock until its 10 line
      charts have drawn (a canvas each). No network: HF_HUB_OFFLINE, no analytics

Medians over repetitions with their range (min-max): u1 and u2 5 (quick 2), u3 3
(quick 2), u4 3, or 2 when one load takes over 20 s. Servers are stopped (SIGTERM) and
waited for between loads: nothing of one load competes with the next. Chromium missing:
the browser figures say so and the others are still measured.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from _common import (
    PY,
    bench_env,
    child_json,
    emit,
    fmt_ms,
    fmt_s,
    fmt_x,
    load_note,
    median,
    now,
    parse_args,
    row,
    spread,
    workdir,
)

KEYS = ["loss", "acc", "lr", "grad_norm", "momentum", "wd", "tokens", "mfu", "clip", "x9"]
# Row i of the big run, the same for steadyrun and Trackio.
ROW_EXPR = ('{"train/loss": 1.0 / (i + 1), "train/acc": 0.5 + (i % 7) * 0.01, '
            '"train/lr": 3e-4, "train/grad_norm": 1.25 + (i % 13) * 0.1, '
            '"train/momentum": 0.9, "train/wd": 0.01, "train/tokens": 4096.0 * i, '
            '"train/mfu": 0.41, "train/clip": 1.0, "train/x9": float(i % 100)}')

WRITE_BIG = textwrap.dedent(f'''
    import json, sys, time
    import steadyrun
    n = int(sys.argv[1])
    t0 = time.perf_counter()
    run = steadyrun.init(mode="local", project="bench", name="bench-ui-big")
    log = run.log
    for i in range(n):
        log({ROW_EXPR})
    run.finish()
    print(json.dumps({{"id": run.id, "dir": str(run.dir), "s": time.perf_counter() - t0}}))
''')

WRITE_MANY = textwrap.dedent('''
    import json, sys, time
    import steadyrun
    n = int(sys.argv[1])
    t0 = time.perf_counter()
    for r in range(n):
        run = steadyrun.init(mode="local", project=f"p{r % 4}", name=f"run-{r:03d}",
                             group=f"g{r % 7}", tags=[f"t{r % 3}"], config={"lr": r * 1e-4})
        for i in range(100):
            run.log({"loss": 1.0 / (i + 1), "acc": i / 100, "lr": r * 1e-4,
                     "val/loss": 0.5, "val/acc": 0.7})
        run.finish()
    print(json.dumps({"runs": n, "s": time.perf_counter() - t0}))
''')

WRITE_TRACKIO = textwrap.dedent(f'''
    import json, sys, time
    from datetime import datetime, timezone
    n, project = int(sys.argv[1]), sys.argv[2]
    t0 = time.perf_counter()
    import trackio
    from trackio.sqlite_storage import SQLiteStorage
    run = trackio.init(project=project, name="bench-ui-big", auto_log_gpu=False,
                       auto_log_cpu=False, embed=False)
    trackio.finish()
    batch = 50_000
    for s in range(0, n, batch):
        e = min(n, s + batch)
        stamp = datetime.now(timezone.utc).isoformat()
        SQLiteStorage.bulk_log(project, "bench-ui-big", [{ROW_EXPR} for i in range(s, e)],
                               steps=list(range(s, e)), timestamps=[stamp] * (e - s),
                               run_id=getattr(run, "id", None))
    print(json.dumps({{"s": time.perf_counter() - t0}}))
''')

SHOW_TRACKIO = textwrap.dedent('''
    import signal, sys, threading, time
    t0 = time.perf_counter()
    import trackio
    app, url, _, _ = trackio.show(project=sys.argv[1], open_browser=False,
                                  block_thread=False)
    print("URL " + url + " " + str(time.perf_counter() - t0), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    try:
        app.close()
    except Exception:
        pass
''')

CHARTS_DRAWN = """() => { const c = document.querySelectorAll('.chart');
  return c.length > 0 && [...c].every((e) => e.dataset.points !== undefined); }"""
TRACKIO_DRAWN = "() => document.querySelectorAll('.plot canvas').length >= 10"
VIEWPORT = {"width": 1400, "height": 4000}


# ---------------------------------------------------------------------- servers
@contextlib.contextmanager
def server(cmd: list[str], env: dict[str, str], pattern: str,
           timeout: float = 120) -> Iterator[tuple[str, float]]:
    """A server process, from its spawn until it printed its URL; (url, seconds to it).
    Stopped with SIGTERM and waited for (its whole process group) when the block ends."""
    log = Path(env.get("STEADYRUN_DIR", ".")).parent / "server-stderr.log"
    with open(log, "wb") as err:
        t0 = now()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)
    try:
        assert proc.stdout is not None
        deadline = t0 + timeout
        url = None
        while now() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(pattern, line)
            if m:
                url = m.group(1)
                break
        if url is None:
            raise RuntimeError(f"{cmd[:4]}: no URL; stderr:\n{log.read_text()[-3000:]}")
        # whatever it prints later must not fill the pipe and stop it
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield url, now() - t0
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        time.sleep(0.2)  # its last threads and sockets gone before the next load


def ui_server(root: Path, env: dict[str, str]) -> Any:
    return server([PY, "-m", "steadyrun", "ui", "--dir", str(root), "--port", "0"], env,
                  r"(http://\S+)")


def fetch(url: str) -> tuple[float, int]:
    t0 = now()
    with urllib.request.urlopen(url, timeout=300) as res:
        body = res.read()
    return now() - t0, len(body)


# ---------------------------------------------------------------------- the browser
def chromium_path() -> str | None:
    for cand in (os.environ.get("CHROMIUM"), shutil.which("chromium"),
                 shutil.which("chromium-browser"), "/usr/bin/chromium"):
        if cand and Path(cand).exists():
            return cand
    return None


class Browser:
    """One headless chromium for every load, each load in a fresh context."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=chromium_path())
        self.load("data:text/html,<p>warm-up</p>", "() => true", 10)  # unmeasured

    def load(self, url: str, done_js: str, timeout_s: float,
             watch: str | None = None) -> dict[str, Any]:
        """Seconds from the request of `url` until `done_js` holds (None: not within
        timeout_s); with `watch`, when the first response whose URL holds it arrived."""
        ctx = self.browser.new_context(viewport=VIEWPORT)
        page = ctx.new_page()
        seen: dict[str, float] = {}
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        t0 = now()
        if watch:
            page.on("requestfinished", lambda r: seen.setdefault("api", now() - t0)
                    if watch in r.url else None)
        out: dict[str, Any] = {"s": None, "errors": errors}
        try:
            page.goto(url)
            page.wait_for_function(done_js, timeout=timeout_s * 1e3)
            out["s"] = now() - t0
        except Exception as exc:  # a timeout: the row says so
            out["timeout"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        out["api_s"] = seen.get("api")
        out["charts"] = page.evaluate(
            "() => [document.querySelectorAll('.chart').length, "
            "[...document.querySelectorAll('.chart')].map((e) => +e.dataset.points || 0)"
            ".reduce((a, b) => a + b, 0), document.querySelectorAll('#runs-table tbody tr')"
            ".length, document.querySelectorAll('.plot canvas').length]")
        ctx.close()
        return out

    def close(self) -> None:
        self.browser.close()
        self._pw.stop()



def secs(x: float) -> str:
    return fmt_s(x) if x >= 1 else fmt_ms(x * 1e3)


# ---------------------------------------------------------------------- rows
def first_paint(browser: Browser | None, root: Path, rid: str, rdir: Path,
                env: dict[str, str], reps: int) -> dict[str, Any]:
    out: dict[str, Any] = {"warm": [], "cold": None, "start_s": [], "loads": []}
    if browser is None:
        return out
    url_tail = f"#charts?runs={rid}"
    with ui_server(root, env) as (url, _):  # unmeasured: writes the columnar cache
        first = browser.load(url + url_tail, CHARTS_DRAWN, 300)
    out["first_load"] = first
    for _ in range(reps):
        with ui_server(root, env) as (url, started):
            res = browser.load(url + url_tail, CHARTS_DRAWN, 120)
        out["loads"].append(res)
        out["start_s"].append(started)
        if res["s"] is None or res["errors"]:
            raise RuntimeError(f"u1: the page did not draw: {res}")
        out["warm"].append(res["s"])
    shutil.rmtree(rdir / "cache", ignore_errors=True)
    with ui_server(root, env) as (url, _):
        res = browser.load(url + url_tail, CHARTS_DRAWN, 300)
    out["cold"] = res["s"]
    out["cold_load"] = res
    return out


def runs_table(browser: Browser | None, root: Path, env: dict[str, str], n_runs: int,
               reps: int) -> dict[str, Any]:
    out: dict[str, Any] = {"api_first": [], "api_warm": [], "browser": [], "bytes": None}
    for _ in range(reps):
        with ui_server(root, env) as (url, _):
            first, size = fetch(url + "api/runs")
            warm, _ = fetch(url + "api/runs")
        out["api_first"].append(first)
        out["api_warm"].append(warm)
        out["bytes"] = size
    if browser is not None:
        done = f"() => document.querySelectorAll('#runs-table tbody tr').length >= {n_runs}"
        for _ in range(reps):
            with ui_server(root, env) as (url, _):
                res = browser.load(url + "#runs", done, 60)
            if res["s"] is None:
                raise RuntimeError(f"u2: the runs table did not fill: {res}")
            out["browser"].append(res["s"])
    return out


def report(root: Path, rid: str, env: dict[str, str], out_dir: Path,
           reps: int) -> dict[str, Any]:
    times, sizes = [], []
    for i in range(reps):
        out = out_dir / f"report-{i}.html"
        t0 = now()
        proc = subprocess.run([PY, "-m", "steadyrun", "report", rid, "--dir", str(root),
                               "-o", str(out)], env=env, capture_output=True, text=True,
                              timeout=300)
        times.append(now() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"steadyrun report exited {proc.returncode}: {proc.stderr}")
        sizes.append(out.stat().st_size)
        out.unlink()
    return {"s": times, "bytes": sizes}


def trackio_paint(browser: Browser | None, base: Path, env: dict[str, str], n_rows: int,
                  quick: bool) -> dict[str, Any]:
    import importlib.util

    if importlib.util.find_spec("trackio") is None:
        return {"skipped": "trackio is not installed (pip install -e '.[bench]')"}
    if browser is None:
        return {"skipped": "no chromium to open its dashboard with"}
    project = "bench-ui"
    made = child_json([PY, "-c", WRITE_TRACKIO, str(n_rows), project], env, timeout=900)
    db = base / "trackio" / f"{project}.db"
    out: dict[str, Any] = {"write_s": made["s"], "db_bytes": db.stat().st_size
                           if db.exists() else None, "loads": [], "s": [], "api_s": [],
                           "start_s": []}
    limit = 60 if quick else 180
    cmd = [PY, "-c", SHOW_TRACKIO, project]
    for i in range(3):
        if i == 2 and out["s"] and max(out["s"]) > 20:
            break  # two loads of over 20 s each are enough to tell
        with server(cmd, env, r"URL (\S+)") as (url, started):
            res = browser.load(url.rstrip("/") + f"/?project={project}", TRACKIO_DRAWN,
                               limit, watch="get_logs_batch")
        out["loads"].append(res)
        out["start_s"].append(started)
        if res["s"] is None:
            out["timeout"] = limit
            break
        out["s"].append(res["s"])
        if res["api_s"] is not None:
            out["api_s"].append(res["api_s"])
    return out


def main() -> None:
    args = parse_args(__doc__, lambda p: p.add_argument(
        "--reps", type=int, default=0, help="repetitions of u1 and u2 (default 5; quick 2)"))
    started = now()
    quick = args.quick
    n_rows = 10_000 if args.smoke else 50_000 if quick else 1_000_000
    n_runs = 5 if args.smoke else 20 if quick else 100
    reps = args.reps or (1 if args.smoke else 2 if quick else 5)
    base = workdir(args, "ui")
    env = bench_env(base, STEADYRUN_METADATA="0", PYTHONDONTWRITEBYTECODE=None,
                    PYTHONPYCACHEPREFIX=str(base / "pycache"),
                    TRACKIO_DIR=str(base / "trackio"), HF_HOME=str(base / "hf"),
                    HF_HUB_OFFLINE="1", DO_NOT_TRACK="1", GRADIO_ANALYTICS_ENABLED="False")
    big_root, many_root = base / "sr-big", base / "sr-many"
    big = child_json([PY, "-c", WRITE_BIG, str(n_rows)], {**env, "STEADYRUN_DIR": str(big_root)},
                     timeout=900)
    many = child_json([PY, "-c", WRITE_MANY, str(n_runs)],
                      {**env, "STEADYRUN_DIR": str(many_root)}, timeout=900)
    rid, rdir = big["id"], Path(big["dir"])
    seg_mb = sum(p.stat().st_size for p in (rdir / "segments").glob("*.jsonl")) / 1e6
    load0 = load_note()

    browser: Browser | None = None
    no_browser = None
    if chromium_path() is None:
        no_browser = "no chromium found (apt-get install chromium, or CHROMIUM=path)"
    else:
        try:
            browser = Browser()
        except Exception as exc:  # playwright missing or broken: the API rows still run
            no_browser = f"the browser did not start: {type(exc).__name__}: {exc}"
    try:
        u1 = first_paint(browser, big_root, rid, rdir, env, reps)
        u2 = runs_table(browser, many_root, env, n_runs, reps)
        u3 = report(big_root, rid, env, base, 1 if args.smoke else 2 if quick else 3)
        u4 = trackio_paint(browser, base, env, n_rows, quick)
    finally:
        if browser is not None:
            browser.close()
    load = f"{load0} before, {load_note()} after"
    full = not quick
    size = f"{n_rows / 1e6:.2g} M rows x 10 keys"
    common = (f"{size} logged by run.log in {big['s']:.0f} s (segment {seg_mb:,.0f} MB); "
              f"fresh `steadyrun ui` process and browser context per load")
    rows = []

    # u1
    if browser is None:
        rows.append(row("u1", f"first paint of a run of {size}: every chart drawn",
                        f"not measured: {no_browser}", "—", note=common))
    else:
        w, cold = u1["warm"], u1["cold"]
        charts = u1["loads"][0]["charts"]
        rows.append(row(
            "u1", f"first paint of a run of {size} (`#charts?runs=<id>`): every chart drawn",
            f"{spread(w, secs)} warm; cold {secs(cold)}" if cold is not None
            else f"{spread(w, secs)} warm; cold: not drawn",
            "—", "—", "≤ 1.5 s (warm)", median(w) <= 1.5 if full else None,
            note=f"{common}; from the request of the page until every `.chart` has "
                 f"`data-points` ({charts[0]} charts, {charts[1]:,} points drawn in all); "
                 f"warm = columnar cache in place and the segment in the page cache, "
                 f"median of {len(w)}; cold (once) = the cache deleted first, so the "
                 f"server parses the segment and writes the cache again; the server "
                 f"printed its URL {spread(u1['start_s'], secs)} after its spawn (not "
                 f"counted); headless chromium {VIEWPORT['width']}x{VIEWPORT['height']}",
            warm_s=w, cold_s=cold, raw=u1))

    # u2
    api1, api2, b = u2["api_first"], u2["api_warm"], u2["browser"]
    shown = spread(b, secs) if b else f"not measured: {no_browser}"
    rows.append(row(
        "u2", f"the runs table with {n_runs} runs: the browser until every row shows; "
              "GET /api/runs on a fresh server",
        f"browser {shown}; API first {spread(api1, secs)}, warm {spread(api2, secs)}",
        "—", "—", "≤ 0.5 s", (median(b) <= 0.5) if (full and b) else None,
        note=f"{n_runs} runs of 100 rows x 5 keys written in {many['s']:.0f} s; a fresh "
             f"server per repetition ({len(api1)} for the API, {len(b)} for the browser); "
             f"first = the server's first answer, which scans every run; warm = the second "
             f"({u2['bytes']:,} bytes); browser = from the request of `#runs` until the "
             f"table holds every run",
        raw=u2))

    # u3
    t3, b3 = u3["s"], u3["bytes"]
    rows.append(row(
        "u3", f"`steadyrun report` of the run of {size}: wall time and file size",
        f"{spread(t3, secs)}; {max(b3) / 1e6:.2f} MB", "—", "—", "≤ 5 s and < 3 MB",
        (median(t3) <= 5 and max(b3) < 3e6) if full else None,
        note=f"a fresh `steadyrun report` process each (interpreter start included), the "
             f"columnar cache in place; median of {len(t3)}; one self-contained HTML file "
             f"(series thinned to about 2,000 points per key, min/max kept)",
        raw=u3))

    # u4
    if "skipped" in u4:
        rows.append(row("u4", "Trackio's dashboard on the same data: first paint", "—",
                        f"not measured: {u4['skipped']}", note="bench extra: trackio"))
    else:
        ts = u4["s"]
        paint = spread(ts, secs) if ts else f"not drawn within {u4.get('timeout')} s"
        api = spread(u4["api_s"], secs) if u4["api_s"] else "—"
        ratio = "—"
        if ts and browser is not None and u1["warm"]:
            ratio = fmt_x(median(ts) / median(u1["warm"]), "steadyrun's time")
        rows.append(row(
            "u4", f"Trackio's dashboard on the same {size}: first paint (10 line charts "
                  "drawn)",
            f"steadyrun {spread(u1['warm'], secs)} (u1, warm)" if browser else "—",
            f"Trackio {paint}; its data answer (get_logs_batch) after {api}", ratio,
            note=f"the same rows written into a Trackio project by its own writer "
                 f"(SQLiteStorage.bulk_log, batches of 50,000 rows) in {u4['write_s']:.0f} s"
                 f" (database {(u4['db_bytes'] or 0) / 1e6:,.0f} MB); `trackio.show()` in "
                 f"a fresh process per load (its URL after "
                 f"{spread(u4['start_s'], secs)}), the same browser, viewport and clock, "
                 f"until `.plot canvas` holds its 10 charts; {len(ts)} load(s) (2 when one "
                 f"takes over 20 s); no network (HF_HUB_OFFLINE=1); Trackio "
                 f"{_version('trackio')}",
            raw=u4))
    for r in rows:
        r["data"]["commit"] = _commit()
    emit(args, rows, started, load=load, cleanup=base)


def _version(module: str) -> str:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return "?"


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


if __name__ == "__main__":
    main()
