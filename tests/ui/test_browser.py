"""The dashboard in a real browser (issue 13, section 5): `steadyrun ui` started as a
subprocess on a run root, the page driven by headless chromium (Debian's, through
Python playwright: no browser download), and `steadyrun report`'s file opened offline.

What is asserted is what a person would see: a chart per key, each on its namespace's
own step (a restarted stage draws from 0), two runs overlaid, a row logged while the
page is open appearing without a reload, the anomalies listed with their call sites,
a zoom fetching the zoomed range at full resolution, markup in keys, names, tags and
table cells shown as text, a report that requests nothing, and no console error.

The run root is written once per module and one server and one browser serve every
test (`--dist loadgroup` keeps the module on one xdist worker). Chromium missing: the
tests are skipped with a warning, and fail under CI=true, where `make test` installs it.
STEADYRUN_SCREENSHOT=1 also refreshes docs/img/dashboard.png, the README's picture.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from wandb_helpers import bare_env

pytestmark = pytest.mark.xdist_group("browser")

REPO = Path(__file__).resolve().parents[2]
XSS = "<img src=x onerror=alert(1)>"
XSS_NAME = "</script>" + XSS  # also ends the report's inlined <script> if not escaped
PIPELINE_KEYS = ["pretrain/loss", "pretrain/lr", "pretrain/grad_norm", "finetune/loss",
                 "finetune/acc", "throughput", "eval/acc", "eval/f1"]
BIG_ROWS = 50_000
WAIT_MS = 10_000  # a page's first draw on a busy 2-CPU machine: generous, never a sleep
LIVE_MS = 5_000  # new rows on the page: the page polls every second

# Written to a file, so that the call sites the anomalies name are lines of it.
MAKE_RUNS = r'''
import json, math, sys
import numpy as np
import steadyrun

XSS = sys.argv[1]
XSS_NAME = sys.argv[2]
ids = {}


def pipeline(name, seed):
    """Demo-like: pretrain, then finetune restarting at step 0, with evals during it."""
    rng = np.random.default_rng(seed)
    run = steadyrun.init(project="browser", name=name, mode="local", group="pipeline",
                         tags=["demo", f"seed:{seed}"],
                         config={"lr": 3e-4 * seed, "model": {"width": 64 * seed,
                                                              "depth": 2}, "seed": seed})
    for i in range(400):  # global steps 0..399
        run.log({"pretrain/loss": 2.2 * math.exp(-i / (90 * seed)) + 0.15
                                  + float(rng.normal(0, 0.03)),
                 "pretrain/lr": 3e-4 * seed * min(1.0, i / 40) * (1 - i / 400),
                 "pretrain/grad_norm": 1.5 * math.exp(-i / 150) + abs(rng.normal(0, 0.1))})
    for i in range(150):  # global steps 400.., finetune/step 0..149
        run.log({"finetune/step": i,
                 "finetune/loss": 0.6 * math.exp(-i / (30 * seed)) + 0.05
                                  + float(rng.normal(0, 0.01)),
                 "finetune/acc": 0.95 - 0.3 * math.exp(-i / (25 * seed)),
                 "throughput": 1200 + 40 * seed + float(rng.normal(0, 15))})
        if i % 25 == 24:
            k = i // 25
            run.log({"eval/step": k, "eval/acc": 0.6 + 0.35 * (1 - math.exp(-k / (2 * seed))),
                     "eval/f1": 0.55 + 0.35 * (1 - math.exp(-k / (2.5 * seed)))})
    run.log_histogram("weights/layer1", rng.normal(0, 1, 2000), step=0)
    run.log_histogram("weights/layer1", rng.normal(0.2, 0.8, 2000), step=1)
    run.log_image("samples/digit", (rng.random((16, 16)) * 255).astype("uint8"),
                  caption="a sample", step=0)
    run.log_table("eval/examples", columns=["input", "label", "pred"],
                  rows=[["a", 1, 1], ["b", 0, 1]])
    run.summary.update({"eval/final_acc": 0.9})
    run.finish()
    ids[name] = run.id


pipeline("pipe-a", 1)
pipeline("pipe-b", 2)

run = steadyrun.init(project="browser", name="anomalies", mode="local")
for i in range(20):
    run.log({"train/loss": 1.0 / (i + 1)}, step=i)
run.log({"train/loss": 0.5}, step=5)  # LINE:regression
run.log({"train/loss": 0.4, "train/bad": "text"}, step=20)  # LINE:rejected
run.finish()
ids["anomalies"] = run.id

run = steadyrun.init(project="browser", name=XSS_NAME, mode="local", tags=[XSS])
for i in range(10):
    run.log({XSS: float(i)})
run.log_table("cells", columns=[XSS, "n"], rows=[[XSS, 1]])
run.finish()
ids["xss"] = run.id

run = steadyrun.init(project="browser", name="big", mode="local")
for i in range(int(sys.argv[3])):
    run.log({"big/loss": math.sin(i / 700.0) + (i % 97) / 97.0})
run.finish()
ids["big"] = run.id

for seed in range(3):  # a baseline of three seeds, and a run that falls below it
    run = steadyrun.init(project="baseline", name=f"base-{seed}", mode="local", tags=["base"])
    run.define_metric("val/acc", goal="maximize")
    for i in range(30):
        run.log({"val/acc": 0.5 + 0.01 * i + 0.001 * seed})
    run.finish()
run = steadyrun.init(project="baseline", name="worse", mode="local", baseline="tag:base")
run.define_metric("val/acc", goal="maximize")
for i in range(30):
    run.log({"val/acc": 0.5 + 0.01 * i - (0.2 if i >= 20 else 0.0)})
run.finish()
ids["worse"] = run.id
print(json.dumps(ids))
'''

# The writer of the live test: 10 rows, then (once `go` exists) 20 more, then finish
# (once `stop` exists). Nothing timed: each step waits for the test's signal.
LIVE_WRITER = r'''
import os, sys, time
import steadyrun

go, stop = sys.argv[1], sys.argv[2]
run = steadyrun.init(project="browser", name="live", mode="local")
for i in range(10):
    run.log({"live/loss": 1.0 / (i + 1)})
run.flush()
print("RUN=" + run.id, flush=True)
while not os.path.exists(go):
    time.sleep(0.02)
for i in range(10, 30):
    run.log({"live/loss": 1.0 / (i + 1)})
run.flush()
print("MORE", flush=True)
while not os.path.exists(stop):
    time.sleep(0.02)
run.finish()
'''


class BrowserTestsSkipped(UserWarning):
    """Shown in pytest's warnings summary: the browser tests did not run."""


def _no_browser(why: str) -> None:
    message = f"browser tests not run: {why}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{message} (CI=true: `make test` installs chromium as root)",
                    pytrace=False)
    warnings.warn(BrowserTestsSkipped(message), stacklevel=1)
    pytest.skip(message)


def _env(root: Path) -> dict[str, str]:
    """This environment without steadyrun, W&B or launcher settings, on `root`."""
    return bare_env(STEADYRUN_DIR=str(root), STEADYRUN_METADATA="0",
                    PYTHONDONTWRITEBYTECODE="1")


def _wait_for(what: str, check: Any, timeout: float = 30.0) -> Any:
    """Poll `check()` until it returns something truthy (a subprocess's output)."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.03)


# ---------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        _no_browser("chromium is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _no_browser("playwright is not installed (pip install -e '.[dev]')")
    pw = sync_playwright().start()
    try:
        try:
            browser = pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        except Exception as exc:  # noqa: BLE001 - a chromium that does not start
            _no_browser(f"{chromium} does not start: {exc}")
        yield browser
        browser.close()
    finally:
        pw.stop()


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> tuple[Path, dict[str, Any]]:
    """The run root, written once: its path, and the runs' ids by name (plus `script`
    and the script's marked line numbers)."""
    base = tmp_path_factory.mktemp("ui")
    script = base / "make_runs.py"
    script.write_text(MAKE_RUNS)
    proc = subprocess.run([sys.executable, str(script), XSS, XSS_NAME, str(BIG_ROWS)],
                          env=_env(base / "root"), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    ids = json.loads(proc.stdout.strip().splitlines()[-1])
    lines = {m.group(1): n for n, text in enumerate(MAKE_RUNS.splitlines(), 1)
             if (m := re.search(r"# LINE:(\w+)", text))}
    return base / "root", {**ids, "script": script, "lines": lines}


@pytest.fixture(scope="module")
def ui(root: tuple[Path, dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """`steadyrun ui --port 0` as a real subprocess; its URL from the line it prints."""
    rdir, _ = root
    out = rdir.parent / "ui.stdout"
    err = rdir.parent / "ui.stderr"
    command = [sys.executable, "-m", "steadyrun", "ui", "--dir", str(rdir), "--port", "0"]
    # Through a shim that resets SIGINT to its default and execs the command (same pid):
    # a pytest started in the background by a shell without job control ignores SIGINT,
    # its children inherit that, and Python then never turns Ctrl-C into KeyboardInterrupt.
    shim = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
            "os.execv(sys.executable, sys.argv[1:])")
    with out.open("w") as fo, err.open("w") as fe:
        proc = subprocess.Popen([sys.executable, "-c", shim, *command], stdout=fo, stderr=fe,
                                env=_env(rdir))
    try:
        def url() -> str | None:
            if proc.poll() is not None:
                raise AssertionError(f"steadyrun ui exited {proc.returncode}: "
                                     f"{out.read_text()}{err.read_text()}")
            m = re.search(r"steadyrun ui: (http://127\.0\.0\.1:\d+/) ", out.read_text())
            return m.group(1) if m else None

        yield {"url": _wait_for("steadyrun ui's URL", url), "proc": proc, "stderr": err}
    finally:
        if proc.poll() is None:  # test_ctrl_c_stops_the_server did not run
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page; console errors, page errors and dialogs fail the test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    pg.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}")
          if m.type == "error" else None)
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))

    def dialog(d: Any) -> None:
        problems.append(f"dialog ({d.type}): {d.message}")
        d.dismiss()

    pg.on("dialog", dialog)
    yield pg
    context.close()
    assert problems == [], "the page reported errors:\n" + "\n".join(problems)


# ---------------------------------------------------------------------- helpers
def show(page: Any, url: str) -> None:
    """Load `url` afresh (a new hash alone would keep the page and its state)."""
    if page.url != "about:blank":
        page.goto("about:blank")
    page.goto(url)


def charts_drawn(page: Any, keys: list[str]) -> dict[str, dict[str, str]]:
    """Wait until every key's chart is drawn; each chart's data attributes by key."""
    page.wait_for_function(
        """keys => keys.every(k => [...document.querySelectorAll('.chart[data-key]')]
                                  .some(c => c.dataset.key === k && c.dataset.points))""",
        arg=keys)
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
        '.chart[data-key]')].map(c => [c.dataset.key, {...c.dataset}]))""")


def chart(page: Any, key: str) -> Any:
    return page.locator(".chart[data-key]").filter(
        has=page.locator(".title .key").get_by_text(key, exact=True))


# ---------------------------------------------------------------------- tests
def test_every_key_of_a_pipeline_run_has_a_chart(page, ui, root):
    _, ids = root
    show(page, ui["url"] + "#charts?runs=" + ids["pipe-a"])
    charts = charts_drawn(page, PIPELINE_KEYS)
    assert sorted(charts) == sorted(PIPELINE_KEYS)  # and no chart of a step metric
    assert all(c["series"] == "1" and int(c["points"]) > 0 for c in charts.values())
    sections = page.locator("section.ns").evaluate_all("els => els.map(e => e.dataset.ns)")
    assert sections == ["pretrain", "finetune", "", "eval"]  # in the order first logged


def test_a_restarted_stage_draws_from_step_zero(page, ui, root):
    _, ids = root
    show(page, ui["url"] + "#charts?runs=" + ids["pipe-a"])
    charts = charts_drawn(page, PIPELINE_KEYS)
    # finetune/* were logged at global steps 400 and on, with finetune/step 0..149;
    # `throughput`, in the same rows, is of the root namespace: on the global step
    for key in ("finetune/loss", "finetune/acc"):
        assert (charts[key]["xmin"], charts[key]["xmax"], charts[key]["points"]) == \
            ("0", "149", "150"), charts[key]
    assert (charts["eval/acc"]["xmin"], charts["eval/acc"]["xmax"]) == ("0", "5")
    assert (charts["pretrain/loss"]["xmin"], charts["pretrain/loss"]["xmax"]) == ("0", "399")
    assert charts["throughput"]["xmin"] == "400"
    assert int(charts["throughput"]["points"]) == 150
    # the global step did go on: the runs table's last step is past finetune's
    show(page, ui["url"] + "#runs")
    last = page.locator(f'#runs-table tbody tr[data-run="{ids["pipe-a"]}"] td').nth(8)
    assert int(last.inner_text()) >= 549


def test_two_runs_overlaid(page, ui, root):
    _, ids = root
    a, b = ids["pipe-a"], ids["pipe-b"]
    show(page, ui["url"] + "#runs")  # ticked in the runs table, then compared
    for rid in (a, b):
        page.locator(f'#runs-table tbody tr[data-run="{rid}"] input[type=checkbox]').check()
    page.get_by_role("button", name="Compare selected").click()
    page.wait_for_url(re.compile(re.escape(f"#charts?runs={a},{b}") + "$"))
    charts = charts_drawn(page, PIPELINE_KEYS)
    assert {k: c["series"] for k, c in charts.items()} == {k: "2" for k in PIPELINE_KEYS}
    legend = chart(page, "finetune/loss").locator(".u-legend").inner_text()
    assert f"pipe-a ({a})" in legend and f"pipe-b ({b})" in legend
    if os.environ.get("STEADYRUN_SCREENSHOT") == "1":  # the README's picture, on purpose
        out = REPO / "docs" / "img" / "dashboard.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        page.mouse.move(0, 0)
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        page.screenshot(path=str(out))
        assert out.stat().st_size < 300_000
    # smoothing draws each run twice: the raw line faint, the smoothed one over it
    page.locator("#smooth").fill("0.6")
    page.locator("#smooth").dispatch_event("change")
    page.wait_for_function("""() => [...document.querySelectorAll('.chart[data-key]')]
                              .every(c => c.dataset.series === '4')""")


def test_a_row_logged_while_the_page_is_open_appears_without_reload(page, ui, root, tmp_path):
    from playwright.sync_api import expect

    rdir, _ = root
    go, stop = tmp_path / "go", tmp_path / "stop"
    script = tmp_path / "live_writer.py"
    script.write_text(LIVE_WRITER)
    out = tmp_path / "writer.out"
    with out.open("w") as fo:
        writer = subprocess.Popen([sys.executable, str(script), str(go), str(stop)],
                                  stdout=fo, stderr=subprocess.STDOUT, env=_env(rdir))
    try:
        def said(word: str) -> Any:
            def check() -> Any:
                if writer.poll() not in (None, 0):
                    raise AssertionError(f"the writer exited {writer.returncode}: "
                                         + out.read_text())
                return re.search(word + r"(\w*)\n", out.read_text())
            return check

        rid = _wait_for("the live run's id", said("RUN="), 60).group(1)
        show(page, ui["url"] + "#charts?runs=" + rid)
        first = charts_drawn(page, ["live/loss"])["live/loss"]
        assert (first["xmax"], first["points"]) == ("9", "10")
        page.evaluate("() => { window.__sameDocument = true; }")
        go.touch()
        _wait_for("the writer's new rows", said("MORE"), 60)
        box = chart(page, "live/loss")
        expect(box).to_have_attribute("data-xmax", "29", timeout=LIVE_MS)
        expect(box).to_have_attribute("data-points", "30", timeout=LIVE_MS)
        assert page.evaluate("() => window.__sameDocument === true")  # no reload
        assert "live" in page.locator("#live").inner_text()
    finally:
        stop.touch()
        try:
            writer.wait(30)
        except subprocess.TimeoutExpired:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0, out.read_text()


def test_anomalies_are_listed_with_their_call_sites(page, ui, root):
    _, ids = root
    site = str(ids["script"])
    show(page, ui["url"] + "#anomalies?runs=" + ids["anomalies"])
    table = page.locator(f'table.anomalies[data-run="{ids["anomalies"]}"]')
    regression = table.locator('tbody tr[data-type="step_regression"]')
    rejected = table.locator('tbody tr[data-type="rejected"]')
    regression.first.wait_for()
    assert regression.count() == 1 and rejected.count() == 1
    assert regression.locator(".anomaly-site").inner_text() == \
        f"{site}:{ids['lines']['regression']}"
    assert "went back from 19 to 5" in regression.inner_text()
    assert rejected.locator(".anomaly-site").inner_text() == \
        f"{site}:{ids['lines']['rejected']}"
    assert "train/bad" in rejected.inner_text() and "str" in rejected.inner_text()
    # and the chart of the namespace that went back is flagged
    show(page, ui["url"] + "#charts?runs=" + ids["anomalies"])
    charts_drawn(page, ["train/loss"])
    assert "anomal" in chart(page, "train/loss").locator(".flag").inner_text()


def test_the_baseline_is_drawn_faint_and_its_regressions_marked(page, ui, root):
    """A run with `init(baseline="tag:base")`: its chart carries the three baseline
    runs as dashed lines behind its own, and the regression is flagged and listed."""
    _, ids = root
    show(page, ui["url"] + "#charts?runs=" + ids["worse"])
    charts = charts_drawn(page, ["val/acc"])
    assert charts["val/acc"]["series"] == "4" and charts["val/acc"]["baselines"] == "3"
    assert "anomal" in chart(page, "val/acc").locator(".flag").inner_text()
    page.locator("#showbaseline").uncheck()  # the switch takes them away
    page.wait_for_function("() => document.querySelector('.chart[data-key=\"val/acc\"]')"
                           "?.dataset.baselines === '0'")
    show(page, ui["url"] + "#anomalies?runs=" + ids["worse"])
    rows = page.locator("table.anomalies tr[data-type=regression]")
    rows.first.wait_for()
    assert rows.count() == 2  # the crossing at step 20, and the final value
    assert "tag:base" in rows.first.inner_text() and "20" in rows.first.inner_text()


def test_zoom_loads_the_zoomed_range_at_full_resolution(page, ui, root):
    _, ids = root
    show(page, ui["url"] + "#charts?runs=" + ids["big"])
    before = charts_drawn(page, ["big/loss"])["big/loss"]
    full = int(before["points"])
    assert (before["xmin"], before["xmax"]) == ("0", str(BIG_ROWS - 1))
    assert 1000 < full <= 2100  # thinned for drawing: ~2,000 of 50,000
    over = chart(page, "big/loss").locator(".u-over")
    box = over.bounding_box()
    y = box["y"] + box["height"] / 2
    with page.expect_response(lambda r: "/series?" in r.url and "lo=" in r.url) as zoomed:
        page.mouse.move(box["x"] + box["width"] * 0.40, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.41, y, steps=4)
        page.mouse.move(box["x"] + box["width"] * 0.42, y, steps=4)
        page.mouse.up()
    assert zoomed.value.ok
    # the x span shrank to ~2% (~1,000 steps) and every step in it is drawn: at the
    # thinned resolution that span held about 2% of ~2,000 points (~40)
    page.wait_for_function("""last => { const c = document.querySelector('.chart[data-key]');
        const lo = +c.dataset.xmin, hi = +c.dataset.xmax;
        return lo > 0 && hi < last && +c.dataset.points === hi - lo + 1; }""", arg=BIG_ROWS - 1)
    after = charts_drawn(page, ["big/loss"])["big/loss"]
    span = int(after["xmax"]) - int(after["xmin"])
    assert 100 < span < BIG_ROWS // 10, after
    assert int(after["points"]) > 5 * full * span / BIG_ROWS, (before, after)
    # a double-click goes back to the whole run, thinned
    over.dblclick()
    page.wait_for_function("() => document.querySelector('.chart[data-key]').dataset.xmin "
                           "=== '0'")
    assert charts_drawn(page, ["big/loss"])["big/loss"]["points"] == str(full)


def test_markup_in_keys_names_tags_and_cells_is_text(page, ui, root, tmp_path):
    rdir, ids = root
    rid = ids["xss"]
    show(page, ui["url"] + "#runs")
    row = page.locator(f'#runs-table tbody tr[data-run="{rid}"]')
    row.wait_for()
    assert row.locator("td a").inner_text() == XSS_NAME
    assert row.locator(".tag").inner_text() == XSS
    show(page, ui["url"] + "#charts?runs=" + rid)
    charts_drawn(page, [XSS])
    assert chart(page, XSS).locator(".title .key").is_visible()
    assert XSS_NAME in page.locator(".u-legend").inner_text()
    show(page, ui["url"] + "#media?runs=" + rid)
    cell = page.locator("table.media-table td").get_by_text(XSS, exact=True)
    cell.wait_for()
    assert cell.is_visible()
    assert page.locator("table.media-table th").get_by_text(XSS, exact=True).is_visible()
    assert page.locator("img[src=x]").count() == 0
    # the report inlines run names into a <script>: `</script>` must not end it
    out = tmp_path / "xss.html"
    proc = subprocess.run([sys.executable, "-m", "steadyrun", "report", rid, "--dir",
                           str(rdir), "-o", str(out)], env=_env(rdir), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    show(page, out.as_uri())
    charts_drawn(page, [XSS])
    assert chart(page, XSS).locator(".title .key").is_visible()
    assert XSS_NAME in page.locator(".u-legend").inner_text()
    assert page.locator("img[src=x]").count() == 0
    # dialogs (alert) and page errors fail the test in the `page` fixture


def test_report_requests_nothing_and_shows_the_charts(page, ui, root, tmp_path):
    rdir, ids = root
    out = tmp_path / "report.html"
    proc = subprocess.run([sys.executable, "-m", "steadyrun", "report", ids["pipe-a"],
                           ids["pipe-b"], "--dir", str(rdir), "-o", str(out)],
                          env=_env(rdir), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.goto(out.as_uri())
    charts = charts_drawn(page, PIPELINE_KEYS)
    assert {k: c["series"] for k, c in charts.items()} == {k: "2" for k in PIPELINE_KEYS}
    assert charts["finetune/loss"]["xmin"] == "0"
    page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
    show(page, out.as_uri() + "#media")
    img = page.locator(".images img").first
    img.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=img.element_handle())
    page.screenshot(path=str(tmp_path / "report-media.png"), full_page=True)
    # data: URIs (the embedded image) are not network requests; everything else must be
    # the file itself (loaded twice: once per view)
    fetched = {u.split("#")[0] for u in requests if not u.startswith(("data:", "about:"))}
    assert fetched == {out.as_uri()}, requests


def test_every_view_shows_without_errors(page, ui, root, tmp_path):
    """Each view of the served UI, screenshotted (a test artifact under tmp_path)."""
    _, ids = root
    pair = f"{ids['pipe-a']},{ids['pipe-b']}"
    show(page, ui["url"] + "#runs")
    for name in ("pipe-a", "pipe-b", "anomalies", "xss", "big"):
        page.locator(f'#runs-table tbody tr[data-run="{ids[name]}"]').wait_for()
    page.screenshot(path=str(tmp_path / "runs.png"), full_page=True)

    show(page, ui["url"] + "#charts?runs=" + pair)
    charts_drawn(page, PIPELINE_KEYS)
    page.screenshot(path=str(tmp_path / "charts.png"), full_page=True)

    show(page, ui["url"] + "#config?runs=" + pair)
    page.locator("#config tr[data-key='lr']").wait_for()
    assert page.locator("#config tr[data-key='model.width'] td.changed").count() == 2
    page.screenshot(path=str(tmp_path / "config.png"), full_page=True)

    show(page, ui["url"] + "#media?runs=" + pair)
    page.locator("[data-histogram='weights/layer1'] canvas").first.wait_for()
    img = page.locator(".images img").first
    img.wait_for()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0",
                           arg=img.element_handle())
    assert page.locator("table.media-table").count() == 2
    headings = page.locator("#view > section > h2").all_inner_texts()
    assert headings == [f"pipe-a ({ids['pipe-a']})", f"pipe-b ({ids['pipe-b']})"]
    page.screenshot(path=str(tmp_path / "media.png"), full_page=True)

    show(page, ui["url"] + "#anomalies?runs=" + pair + "," + ids["anomalies"])
    page.locator("table.anomalies tbody tr").first.wait_for()
    assert f"anomalies ({ids['anomalies']})" in page.locator("#view").inner_text()
    page.screenshot(path=str(tmp_path / "anomalies.png"), full_page=True)
    for view in ("runs", "charts", "config", "media", "anomalies"):
        assert (tmp_path / f"{view}.png").stat().st_size > 0


LOGGER = """
import sys, time, steadyrun
run = steadyrun.init(project="browser", name="logs", mode="local")
print("RUN=" + run.id, flush=True)
print("<b>markup stays text</b>", flush=True)  # (a piped stdout is block-buffered)
time.sleep(0.2)  # stdout and stderr are two pipes: order between them is by arrival
print("an error line", file=sys.stderr)
time.sleep(0.2)
for i in range(3):
    print(f"epoch {i}", flush=True)
run.finish()
"""


def test_the_logs_view_shows_the_runs_console(page, ui, root, tmp_path):
    """Issue 17: the run page's Logs view: the captured stdout and stderr in order,
    stderr marked, markup shown as text."""
    rdir, _ = root
    script = tmp_path / "logger.py"
    script.write_text(LOGGER)
    proc = subprocess.run([sys.executable, str(script)], env=_env(rdir), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rid = re.search(r"RUN=(\w+)", proc.stdout).group(1)
    show(page, ui["url"] + "#logs?runs=" + rid)
    box = page.locator(f'pre.console[data-run="{rid}"]')
    box.wait_for()
    lines = box.locator(".line").all_inner_texts()
    assert lines == [f"RUN={rid}", "<b>markup stays text</b>", "an error line", "epoch 0",
                     "epoch 1", "epoch 2"]
    assert box.locator(".line.err").all_inner_texts() == ["an error line"]
    assert box.locator("b").count() == 0
    assert "6 lines" in page.locator("#view h2").first.inner_text()
    page.screenshot(path=str(tmp_path / "logs.png"), full_page=True)


def test_ctrl_c_stops_the_server(ui):
    """Last: SIGINT (Ctrl-C) stops `steadyrun ui` cleanly, exit status 0."""
    proc = ui["proc"]
    assert proc.poll() is None
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0, ui["stderr"].read_text()
    assert "Traceback" not in ui["stderr"].read_text()
