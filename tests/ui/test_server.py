"""`steadyrun ui`'s server and `steadyrun report` against hostile input (issue 13, section 4).

Real servers on loopback (`UIServer` in a thread; the real `steadyrun ui` subprocess for
what the command does) over real runs written by steadyrun, then damaged by hand:

- no path leaves the root: traversal in every encoding, absolute paths, NUL bytes,
  symlinks in a run folder and a run folder that is a symlink, ids with `..`, static
  paths reaching the server's source. A secret file outside the root never shows;
- read-only: POST, PUT, DELETE and PATCH are refused (405) and change nothing on disk;
  GETs write nothing but the columnar cache;
- a Host header that is not loopback is refused (DNS rebinding);
- a corrupt run.json, a torn last line, garbage inside a segment, a run being written:
  every endpoint answers 200 with what can be read, and a notice;
- secrets given in a config or on the command line are in no answer and not in the report;
- the command's bad input: one line on stderr, no traceback; it stops on SIGINT/SIGTERM;
- series: zoomed ranges at full resolution, on the step and the time axis; NaN and
  infinities as null plus `nf`; a spike survives the thinning;
- the report: one file that loads nothing from anywhere, images inline, and a key that
  holds `</script>` cannot end its embedded JSON.

One run root per module (written by one child process), one in-thread server.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from wandb_helpers import bare_env

pytest.importorskip("numpy")
pytest.importorskip("pyarrow")

from steadyrun.ui.report import write_report  # noqa: E402
from steadyrun.ui.server import UIServer  # noqa: E402

CFG_SECRET = "sk-cfgSECRET0123456789abcdefghij"
ARG_SECRET = "argvSECRET0123456789abcdefghij"
FILE_SECRET = "fileSECRET-7d41c0"  # the content of a file outside the root
LINK_SECRET = "linkSECRET-93ab2f"  # what symlinks out of the root lead to
XSS = "</script><script>alert(1)</script>"
XSS2 = "<!--<script>"
SECRETS = (CFG_SECRET, ARG_SECRET, FILE_SECRET, LINK_SECRET)
N = 5000  # rows of the main run
SPIKE = 4321  # the step of its one huge value

MAKE = r'''
import json, sys
import numpy as np
import steadyrun

cfg_secret, arg_secret, xss, xss2, n, spike = sys.argv[1:7]
n, spike = int(n), int(spike)
sys.argv = ["train.py", "--token=" + arg_secret, "--lr", "0.1"]
ids = {}
run = steadyrun.init(project="ui", name="main", mode="local", metadata=True,
                     config={"api_key": cfg_secret, "db": {"password": cfg_secret},
                             "lr": 0.1, xss: 1, xss2: 2})
for i in range(n):
    y = 1.0 / (i + 1)
    y = {100: float("nan"), 200: float("inf"), 300: float("-inf"), spike: 1e6}.get(i, y)
    run.log({"train/loss": y, "train/acc": i / n})
run.log_table("examples", columns=[xss, "n"], rows=[[xss, 1], [xss2, 2]])
run.log_image("samples/img", np.arange(256, dtype="uint8").reshape(16, 16), caption="c",
              step=0)
run.summary["note"] = xss
run.finish()
ids["main"] = run.id

run = steadyrun.init(project="ui", name="small", mode="local")
for i in range(50):
    run.log({"loss": 1.0 / (i + 1)})
run.summary["final"] = 1
run.finish()
ids["small"] = run.id
print(json.dumps(ids))
'''


def child_env(root: Path) -> dict[str, str]:
    return bare_env(STEADYRUN_DIR=str(root), PYTHONDONTWRITEBYTECODE="1")


def copy_run(runs: Path, src: str, new: str) -> Path:
    """A copy of a run under another id (run.json saying so)."""
    d = runs / new
    shutil.copytree(runs / src, d)
    manifest = json.loads((d / "run.json").read_text())
    manifest["id"] = new
    (d / "run.json").write_text(json.dumps(manifest))
    return d


def segment(rdir: Path) -> Path:
    (seg,) = (rdir / "segments").glob("*.jsonl")
    return seg


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("ui-server")
    root, outside = base / "root", base / "outside"
    root.mkdir()
    outside.mkdir()
    proc = subprocess.run([sys.executable, "-c", MAKE, CFG_SECRET, ARG_SECRET, XSS, XSS2,
                           str(N), str(SPIKE)], env=child_env(root), cwd=base,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    ids = json.loads(proc.stdout.strip().splitlines()[-1])
    runs = root / "runs"
    main = runs / ids["main"]

    # Outside the root: a secret file, a run folder, a segment and a run.json.
    secret = outside / "secret.txt"
    secret.write_text(FILE_SECRET)
    (outside / "secret.png").write_text(FILE_SECRET)
    evil_run = outside / "evil0001"
    (evil_run / "segments").mkdir(parents=True)
    (evil_run / "run.json").write_text(json.dumps({"id": "evil0001", "name": LINK_SECRET,
                                                   "state": "finished"}))
    evil_lines = (json.dumps({"k": "open", "t": 1.0, "role": "owner"}) + "\n"
                  + json.dumps({"k": "config", "t": 1.0, "v": {"leak": LINK_SECRET}}) + "\n"
                  + json.dumps({"k": "row", "t": 2.0, "x": 0, "v": {"leak": 1.0}}) + "\n")
    (evil_run / "segments" / "w-1-0000.jsonl").write_text(evil_lines)
    (outside / "evil.jsonl").write_text(evil_lines)
    (outside / "run.json").write_text(json.dumps({"id": "symlnk01", "name": LINK_SECRET}))

    # Symlinks: a run folder leading out, files and a folder of a run leading out, a
    # segment and a run.json leading out.
    (runs / "evil0001").symlink_to(evil_run, target_is_directory=True)
    (main / "media" / "leak.png").symlink_to(outside / "secret.png")
    (main / "files").mkdir(exist_ok=True)
    (main / "files" / "leak.txt").symlink_to(secret)
    (main / "media" / "linkdir").symlink_to(outside, target_is_directory=True)
    sym = copy_run(runs, ids["small"], "symlnk01")
    (sym / "segments" / "zz-evil.jsonl").symlink_to(outside / "evil.jsonl")
    (sym / "run.json").unlink()
    (sym / "run.json").symlink_to(outside / "run.json")

    # Damaged copies of the small run.
    bad_json = copy_run(runs, ids["small"], "corruptjs")
    (bad_json / "run.json").write_bytes(b'{"id": "corru')
    torn = copy_run(runs, ids["small"], "tornlast")
    data = segment(torn).read_bytes()
    last_row = data.rfind(b'\n{"k":"row"')
    segment(torn).write_bytes(data[:last_row + 25])  # ends in the middle of a row
    garbage = copy_run(runs, ids["small"], "garbage1")
    data = segment(garbage).read_bytes()
    mid = data.find(b"\n", len(data) // 3) + 1
    segment(garbage).write_bytes(data[:mid] + b'\x00\x00\xff\xfe garbage {"k":"ro\n'
                                 + b"\x89PNG\r\x00\x1a not json\n" + data[mid:])

    image = next(p for p in (main / "media").rglob("*.png") if not p.is_symlink())
    return {"root": root, "outside": outside, "ids": ids, "main": ids["main"],
            "small": ids["small"], "image": image.relative_to(main).as_posix(),
            "damaged": ["corruptjs", "tornlast", "garbage1", "symlnk01"]}


@pytest.fixture(scope="module")
def server(world: dict[str, Any]) -> Iterator[UIServer]:
    srv = UIServer(world["root"], "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


# ---------------------------------------------------------------------- raw HTTP
class Answer:
    def __init__(self, raw: bytes) -> None:
        head, _, self.body = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {k.strip().lower(): v.strip()
                        for k, _, v in (line.partition(":") for line in lines[1:])}

    def json(self) -> Any:
        return json.loads(self.body)


def http(port: int, path: str | bytes, method: str = "GET", host: str | None = "auto",
         body: bytes = b"") -> Answer:
    """One request as raw bytes (no client normalizes the path); `host=None`: no Host."""
    target = path if isinstance(path, bytes) else path.encode()
    req = method.encode() + b" " + target + b" HTTP/1.1\r\n"
    if host is not None:
        req += f"Host: {f'127.0.0.1:{port}' if host == 'auto' else host}\r\n".encode()
    if body:
        req += f"Content-Length: {len(body)}\r\n".encode()
    req += b"Connection: close\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(req)
        chunks = []
        while chunk := s.recv(1 << 16):
            chunks.append(chunk)
    return Answer(b"".join(chunks))


def get(server: UIServer, path: str) -> Answer:
    return http(server.server_address[1], path)


def endpoints(rid: str) -> list[str]:
    base = f"/api/run/{quote(rid)}"
    return [base, base + "/stamp", base + "/series", base + "/media", base + "/anomalies"]


def digest(*dirs: Path, skip_cache: bool = False) -> str:
    """Every name, symlink target, content and mtime under the folders (links not followed)."""
    h = hashlib.sha256()
    for d in dirs:
        for top, subdirs, files in os.walk(d):
            subdirs.sort()
            rel_top = Path(top).relative_to(d)
            if skip_cache and "cache" in rel_top.parts:
                continue
            h.update(b"D" + str(rel_top).encode())
            for name in sorted(files + [s for s in subdirs if (Path(top) / s).is_symlink()]):
                p = Path(top) / name
                h.update(b"N" + str(rel_top / name).encode())
                if p.is_symlink():
                    h.update(b"L" + os.readlink(p).encode())
                else:
                    st = p.stat()
                    h.update(p.read_bytes() + f"{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def assert_no_secret(body: bytes, where: str) -> None:
    for secret in SECRETS:
        assert secret.encode() not in body, f"{secret} in {where}"


# ---------------------------------------------------------------------- paths
def test_paths_never_leave_the_root(world: dict[str, Any], server: UIServer) -> None:
    m = world["main"]
    secret = world["outside"] / "secret.txt"
    f = f"/api/run/{m}/file/"
    paths: list[str | bytes] = [
        f + "..%2F..%2F..%2Foutside%2Fsecret.txt",
        f + "../../../../outside/secret.txt",
        f + "media/../../../../outside/secret.txt",
        f + "%2e%2e/%2e%2e/%2e%2e/%2e%2e/outside/secret.txt",
        f + "%2E%2E%2F%2E%2E%2F%2E%2E%2F%2E%2E%2Foutside%2Fsecret.txt",
        f + "%252e%252e%252f%252e%252e%252f%252e%252e%252foutside%252fsecret.txt",
        f + "..%252F..%252F..%252Foutside%252Fsecret.txt",
        f + quote(str(secret), safe=""),
        f + str(secret),
        f + "/" + str(secret),
        f + "%5C..%5C..%5C..%5Coutside%5Csecret.txt",
        f + "media/leak.png%00.png",
        (f + "media/leak.png").encode() + b"\x00.png",
        f + world["image"] + "%00",
        f + "media/leak.png",  # a symlink in the run folder, to a file outside
        f + "files/leak.txt",
        f + "media/linkdir/secret.txt",  # a symlinked folder of the run
        f + "media/linkdir/evil0001/run.json",
        f + "run.json/..",
        f + ".",
        f,
        "/api/run/evil0001",  # a run folder that is a symlink out of the root
        "/api/run/evil0001/series",
        "/api/run/evil0001/media",
        "/api/run/evil0001/file/run.json",
        "/api/run/evil0001/file/segments/w-1-0000.jsonl",
        "/api/run/../../outside/secret.txt",
        "/api/run/..%2F..%2Foutside/file/secret.txt",
        "/api/run/%2e%2e/file/outside/secret.txt",
        "/api/run/..",
        f"/api/run/{m}%2F..%2F..%2F..%2Foutside/file/secret.txt",
        f"/api/run/{m}%00/file/{world['image']}",
        "/api/run/%00",
        "/static/../server.py",
        "/static/../../ui/server.py",
        "/static/%2e%2e/server.py",
        "/static/..%2Fserver.py",
        "/static/js/../../server.py",
        "/static/js/%2e%2e%2f%2e%2e%2fserver.py",
        "/static/vendor/uPlot.LICENSE",
        "/static/" + str(Path(__file__).resolve()),
        "/static//etc/passwd",
        "//etc/passwd",
        "/..%2F..%2F..%2Fetc%2Fpasswd",
        "/../../../../etc/passwd",
    ]
    port = server.server_address[1]
    for path in paths:
        ans = http(port, path)
        assert ans.status == 404, (path, ans.status, ans.body[:200])
        assert_no_secret(ans.body, repr(path))
        assert b"def do_GET" not in ans.body and b"root:" not in ans.body, path
        assert ans.headers.get("content-type", "").startswith("application/json"), path

    # The same folder's own files are served: the refusals above are not blanket ones.
    ok = get(server, f + world["image"])
    assert ok.status == 200 and ok.body.startswith(b"\x89PNG")
    assert "sandbox" in ok.headers["content-security-policy"]
    runs = get(server, "/api/runs").json()["runs"]
    assert "evil0001" not in {r["id"] for r in runs}
    assert get(server, "/static/js/app.js").status == 200


def test_symlinks_inside_a_run_lead_nowhere(world: dict[str, Any], server: UIServer) -> None:
    """A segment and a run.json of a run that are symlinks out of it are not read."""
    bodies = [get(server, p) for p in endpoints("symlnk01")]
    assert all(b.status == 200 for b in bodies)
    for b in bodies:
        assert_no_secret(b.body, "symlnk01")
        assert b"leak" not in b.body
    payload = bodies[0].json()
    assert payload["name"] is None and payload["rows"] == 50
    assert any("run.json" in n for n in payload["notices"])


def test_files_are_streamed_as_attachments(world: dict[str, Any], server: UIServer) -> None:
    blob = os.urandom(3 << 20)
    path = world["root"] / "runs" / world["main"] / "files" / "blob.bin"
    path.write_bytes(blob)
    try:
        url = f"/api/run/{world['main']}/file/files/blob.bin"
        port = server.server_address[1]
        head = http(port, url, "HEAD")
        assert head.status == 200 and head.body == b""
        assert head.headers["content-length"] == str(len(blob))
        ans = get(server, url)
        assert ans.status == 200 and ans.body == blob
        assert ans.headers["content-disposition"] == "attachment"  # never shown as a page
        assert ans.headers["x-content-type-options"] == "nosniff"
    finally:
        path.unlink()


# ---------------------------------------------------------------------- read-only
def test_mutating_methods_are_refused_and_change_nothing(world: dict[str, Any],
                                                         server: UIServer) -> None:
    m = world["main"]
    paths = ["/", "/api/runs", *endpoints(m), f"/api/run/{m}/file/{world['image']}",
             f"/api/run/{m}/file/run.json", "/static/js/app.js", "/nosuch"]
    for p in paths:  # GETs first: the columnar cache they may write is written
        assert get(server, p).status in (200, 404)
    port = server.server_address[1]
    dirs = (world["root"], world["outside"])
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        for p in paths:
            before = digest(*dirs)
            ans = http(port, p, method, body=b'{"state": "deleted"}' if method != "DELETE"
                       else b"")
            assert ans.status == 405, (method, p, ans.status)
            assert ans.headers.get("allow") == "GET, HEAD"
            assert digest(*dirs) == before, (method, p)
    # and a GET changes nothing either, the columnar cache aside (an optimisation that
    # the reader writes for any closed segment: store/layout.py)
    before = digest(*dirs, skip_cache=True)
    for p in paths + [p for rid in world["damaged"] for p in endpoints(rid)]:
        http(port, p, "HEAD")
        get(server, p)
        assert digest(*dirs, skip_cache=True) == before, p


@pytest.mark.parametrize(("host", "status"), [
    ("evil.example", 403), ("evil.example:{port}", 403), ("localhost.evil.example:{port}", 403),
    ("127.0.0.1.nip.io:{port}", 403), ("[::1].evil.example", 403), (None, 403), ("", 403),
    ("127.0.0.1:{port}@evil.example", 403),
    ("127.0.0.1:{port}", 200), ("localhost:{port}", 200), ("LOCALHOST:{port}", 200),
    ("[::1]:{port}", 200)])
def test_host_header_must_be_loopback(server: UIServer, world: dict[str, Any],
                                      host: str | None, status: int) -> None:
    port = server.server_address[1]
    for path in ("/", "/api/runs", f"/api/run/{world['main']}"):
        ans = http(port, path, host=None if host is None else host.format(port=port))
        assert ans.status == status, (host, path)
        if ans.status == 403:
            assert world["main"].encode() not in ans.body


# ---------------------------------------------------------------------- damaged runs
def test_damaged_runs_answer_with_what_can_be_read(world: dict[str, Any],
                                                   server: UIServer) -> None:
    runs = get(server, "/api/runs")
    assert runs.status == 200
    listed = {r["id"]: r for r in runs.json()["runs"]}
    assert set(world["damaged"]) <= set(listed)
    assert "run.json" in listed["corruptjs"]["notice"]
    for rid in world["damaged"]:
        for path in endpoints(rid):
            ans = get(server, path)
            assert ans.status == 200, (path, ans.body[:300])
            body = ans.json()
            assert not (isinstance(body, dict) and "error" in body), (path, body)
    payload = {rid: get(server, f"/api/run/{rid}").json() for rid in world["damaged"]}
    series = {rid: get(server, f"/api/run/{rid}/series?key=loss").json()
              for rid in world["damaged"]}
    # corrupt run.json: the rows and the summary still shown, with a notice
    assert payload["corruptjs"]["notices"] and series["corruptjs"]["loss"]["n"] == 50
    assert payload["corruptjs"]["summary"] == {"final": 1}
    # torn last line: the rows before it, and a notice
    assert series["tornlast"]["loss"]["n"] == 49
    assert any("could not be read" in n for n in payload["tornlast"]["notices"])
    anomalies = get(server, "/api/run/tornlast/anomalies").json()
    assert any(a["type"] == "torn" for a in anomalies)
    # garbage inside a segment (NUL bytes included): every record after it still read
    assert series["garbage1"]["loss"]["n"] == 50
    assert payload["garbage1"]["summary"] == {"final": 1}
    assert payload["garbage1"]["state"] == "finished"
    assert any("could not be read" in n for n in payload["garbage1"]["notices"])


WRITER = r'''
import sys, time
import steadyrun
run = steadyrun.init(project="ui", name="live", mode="local")
print(run.id, flush=True)
t_end = time.monotonic() + float(sys.argv[1])
i = 0
while time.monotonic() < t_end:
    for _ in range(50):
        run.log({"live/loss": 1.0 / (i + 1), "live/acc": i * 1e-3})
        i += 1
    if i % 500 == 0:
        run.summary["i"] = i
        run.flush()
    time.sleep(0.005)
run.finish()
print(i, flush=True)
'''


def test_a_run_read_while_it_is_written(world: dict[str, Any], server: UIServer) -> None:
    proc = subprocess.Popen([sys.executable, "-c", WRITER, "2.0"],
                            env=child_env(world["root"]), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        rid = proc.stdout.readline().strip()
        rows, polls = [], 0
        while proc.poll() is None or polls < 2:
            polls += 1
            for path in ["/api/runs", *endpoints(rid),
                         f"/api/run/{rid}/series?key=live/loss&n=64&lo=10"]:
                ans = get(server, path)
                assert ans.status == 200, (path, ans.body[:300])
                body = ans.json()
                assert not (isinstance(body, dict) and "error" in body), (path, body)
                if path.endswith("/stamp"):
                    rows.append(body["rows"])
            if proc.poll() is not None:
                break
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    total = int(out.strip().splitlines()[-1])
    assert rows == sorted(rows) and len(rows) >= 2
    payload = get(server, f"/api/run/{rid}").json()
    assert payload["rows"] == total and payload["state"] == "finished"
    assert payload["notices"] == []
    assert get(server, f"/api/run/{rid}/series?key=live/loss").json()["live/loss"]["n"] == total


# ---------------------------------------------------------------------- secrets
def test_secrets_are_in_no_answer_and_not_in_the_report(world: dict[str, Any],
                                                        server: UIServer,
                                                        tmp_path: Path) -> None:
    ids = [r["id"] for r in get(server, "/api/runs").json()["runs"]]
    assert world["main"] in ids
    seen = 0
    for rid in ids:
        for path in endpoints(rid):
            ans = get(server, path)
            assert_no_secret(ans.body, path)
            seen += 1
        media = get(server, f"/api/run/{rid}/media").json()
        for item in media["images"] + media["files"]:
            if item.get("url"):
                assert_no_secret(get(server, item["url"]).body, item["url"])
    payload = get(server, f"/api/run/{world['main']}").json()
    assert payload["config"]["api_key"] == "***REDACTED***"  # read, and redacted
    command = json.dumps(payload["metadata"])
    assert "--token=" in command and ARG_SECRET not in command
    out = tmp_path / "r.html"
    write_report([world["root"] / "runs" / world["main"],
                  world["root"] / "runs" / "symlnk01"], out)
    assert_no_secret(out.read_bytes(), "the report")


# ---------------------------------------------------------------------- series
def series(server: UIServer, rid: str, query: str) -> dict[str, Any]:
    ans = get(server, f"/api/run/{rid}/series?{query}")
    assert ans.status == 200
    return ans.json()


def test_series_zoom_is_full_resolution_on_both_axes(world: dict[str, Any],
                                                     server: UIServer) -> None:
    m = world["main"]
    whole = series(server, m, "key=train/acc&n=100")["train/acc"]
    assert whole["n"] == N and len(whole["x"]) <= 110
    assert whole["x"][0] == 0 and whole["x"][-1] == N - 1
    # Zoomed (the page asks for its default of 2,000 points): every point of the range,
    # and one past each edge (the line reaches the frame)
    zoom = series(server, m, "key=train/acc&lo=1000&hi=1199")["train/acc"]
    assert zoom["x"] == list(range(999, 1201)) and zoom["n"] == 202
    full = series(server, m, "key=train/acc&n=20000")["train/acc"]
    assert full["x"] == list(range(N))
    t = full["t"]
    zoom_t = series(server, m, f"key=train/acc&axis=time&lo={t[2000]!r}"
                               f"&hi={t[2099]!r}")["train/acc"]
    inside = [x for x, tt in zip(zoom_t["x"], zoom_t["t"], strict=True)
              if t[2000] <= tt <= t[2099]]
    assert inside == list(range(2000, 2100))
    assert zoom_t["n"] == len(zoom_t["x"]) <= 100 + 2 * 50  # the range and its edges
    # nonsense parameters: an answer, never an error
    for q in ("key=train/acc&n=abc", "key=train/acc&n=1e400", "key=train/acc&lo=nan&hi=inf",
              "key=train/acc&axis=bogus", "key=nosuch", "key=train/acc&lo=10&hi=5",
              "key=train/acc&n=-5", "n=1", "key=_t", "key=step"):
        ans = get(server, f"/api/run/{m}/series?{q}")
        assert ans.status == 200 and "error" not in ans.json(), (q, ans.body[:200])


def test_series_non_finite_values_and_spikes(world: dict[str, Any], server: UIServer) -> None:
    m = world["main"]
    full = series(server, m, "key=train/loss&n=20000")["train/loss"]
    for i in (100, 200, 300):
        assert full["y"][i] is None
    assert full["y"][SPIKE] == 1e6
    expected = [[100.0, "NaN"], [200.0, "inf"], [300.0, "-inf"]]
    assert full["nf"] == expected
    thin = series(server, m, "key=train/loss&n=64")["train/loss"]
    assert len(thin["x"]) < 100
    assert thin["nf"] == expected  # the gaps survive the thinning
    assert SPIKE in thin["x"] and max(y for y in thin["y"] if y is not None) == 1e6
    assert thin["x"][0] == 0 and thin["x"][-1] == N - 1


# ---------------------------------------------------------------------- the report
def test_report_is_one_offline_file(world: dict[str, Any], tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "r.html"
    write_report([world["root"] / "runs" / world["main"],
                  world["root"] / "runs" / world["small"]], out)
    assert [p.name for p in out_dir.iterdir()] == ["r.html"]
    html = out.read_text()
    assert re.search(r"""(?i)\b(src|href|srcset|action|poster|data)\s*=\s*["']?\s*"""
                     r"""(https?:|//|ftp:|file:)""", html) is None
    assert re.search(r"""(?i)url\(\s*["']?\s*(https?:|//)""", html) is None
    assert "@import" not in html
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert csp is not None and "default-src 'none'" in csp.group(1)
    assert "connect-src" not in csp.group(1)
    # the embedded answers: no `<` at all, so nothing in them ends the element
    start = html.index('<script id="sr-embed" type="application/json">')
    end = html.index("</script>", start)
    raw = html[start + len('<script id="sr-embed" type="application/json">'):end]
    assert "<" not in raw
    embed = json.loads(raw)
    base = f"/api/run/{world['main']}"
    data = embed["data"]
    assert data[base]["config"][XSS] == 1 and data[base]["config"][XSS2] == 2
    assert data[base]["summary"]["note"] == XSS
    assert data[base + "/media"]["tables"][0]["columns"][0] == XSS
    images = data[base + "/media"]["images"]
    assert images and all(i["url"].startswith("data:image/png;base64,") for i in images)
    assert "<script>alert(1)" not in html
    template = (Path(__file__).resolve().parents[2] / "src/steadyrun/ui/static/index.html"
                ).read_text()
    assert html.lower().count("<script") == template.count("<script") + 1
    assert html.lower().count("</script") == template.count("</script") + 1


# ---------------------------------------------------------------------- the command
def command(*args: str, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "steadyrun", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def one_line_error(proc: subprocess.CompletedProcess[str]) -> None:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode != 0, proc.stdout
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("steadyrun: ") and "Traceback" not in proc.stderr


def test_command_bad_input_is_one_line(world: dict[str, Any], tmp_path: Path) -> None:
    env = child_env(world["root"])
    root = str(world["root"])
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        cases = [
            ("ui", "--port", "99999", "--dir", root),
            ("ui", "--port", "-1", "--dir", root),
            ("ui", "--dir", "/nonexistent/steadyrun-root"),
            ("ui", "--dir", root, "--port", str(taken.getsockname()[1])),
            ("report", "nosuchrun", "-o", str(tmp_path / "r.html")),
            ("report", world["main"], "-o", "/nonexistent/dir/r.html"),
            ("report", world["main"], "-o", str(tmp_path)),  # a folder
        ]
        for args in cases:
            proc = command(*args, env=env)
            one_line_error(proc)
    finally:
        taken.close()
    # no half-written report left anywhere
    assert list(tmp_path.iterdir()) == [] and not list(tmp_path.parent.glob("*.tmp"))


def ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def start_ui(env: dict[str, str], *args: str,
             sigint_ignored: bool = False) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "steadyrun", "ui", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=ignore_sigint if sigint_ignored else None)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://[\d.]+:(\d+)/", line)
    assert match, (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, match.group(0)


@pytest.mark.parametrize(("sig", "ignored"), [(signal.SIGINT, False), (signal.SIGTERM, False),
                                             (signal.SIGINT, True)])
def test_command_prints_its_url_and_stops_cleanly(world: dict[str, Any], sig: signal.Signals,
                                                  ignored: bool) -> None:
    """Also when started with SIGINT ignored, as a shell script's `steadyrun ui &` is."""
    proc, url = start_ui(child_env(world["root"]), "--dir", str(world["root"]),
                         sigint_ignored=ignored)
    try:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        assert http(port, "/api/runs").status == 200
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped" in err


def test_command_warns_when_exposed(world: dict[str, Any]) -> None:
    proc, _ = start_ui(child_env(world["root"]), "--dir", str(world["root"]), "--host",
                       "0.0.0.0")
    try:
        time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    warning = [line for line in err.splitlines() if "warning" in line]
    assert len(warning) == 1 and "0.0.0.0" in warning[0] and "no password" in warning[0]
    assert proc.returncode == 0


def test_a_connection_reset_by_the_browser_prints_no_traceback(
        server: UIServer, capfd: pytest.CaptureFixture[str]) -> None:
    """A tab closed while its keep-alive connection waits for the next request: the
    handler thread's read fails with ECONNRESET, which is no error of the server."""
    import struct

    def handlers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if "process_request_thread" in t.name]

    port = server.server_address[1]
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET /api/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(65536)
    length = int(re.search(rb"Content-Length: (\d+)", head).group(1))  # type: ignore[union-attr]
    body = head.split(b"\r\n\r\n", 1)[1]
    while len(body) < length:
        body += sock.recv(65536)
    assert handlers()  # the connection is kept alive: its thread waits for a request
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # linger 0: a reset, as a browser's killed socket sends
    deadline = time.monotonic() + 10
    while handlers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not handlers()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ConnectionReset" not in err
