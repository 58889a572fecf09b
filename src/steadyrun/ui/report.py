"""`steadyrun report`: the dashboard's views of some runs in one self-contained HTML file.

The same page as `steadyrun ui` (static/), with its scripts, styles and uPlot inlined
and every answer the page would ask the server for embedded as JSON: series thinned to
about 2,000 points per key (min/max kept, ui/downsample.py), images as data: URIs. A
Content-Security-Policy meta tag forbids every network request, so the file opened
from an e-mail or a CI artifact loads nothing from anywhere.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from pathlib import Path
from typing import Any

import orjson

from . import extras
from .catalog import run_file
from .model import RunView
from .server import JSON_OPTS, STATIC

REPORT_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
              "img-src data:; base-uri 'none'; form-action 'none'")
MAX_IMAGE = 4 << 20  # bytes of one image embedded; a larger one is listed, not shown


def _data_uri(view: RunView, rel: str) -> str | None:
    real = run_file(view.dir, rel)  # confined as the server confines it
    if real is None:
        return None
    ctype = mimetypes.guess_type(real.name)[0] or ""
    if not ctype.startswith("image/") or real.stat().st_size > MAX_IMAGE:
        return None
    return f"data:{ctype};base64," + base64.b64encode(real.read_bytes()).decode()


def collect(views: list[RunView]) -> dict[str, Any]:
    """Every answer the page asks for, by the path it asks for it under."""
    data: dict[str, Any] = {"/api/runs": {"root": None,
                                          "runs": [v.summary_row() for v in views]}}
    for view in views:
        base = f"/api/run/{view.dir.name}"
        data[base] = view.payload()
        data[base + "/series"] = view.series(view.row_keys())
        data[base + "/media"] = extras.media(view, lambda rel, v=view: _data_uri(v, rel))
        data[base + "/anomalies"] = extras.anomalies(view)
        data[base + "/logs"] = extras.logs(view)
        for bid in (data[base].get("baseline") or {}).get("runs", []):
            path = f"/api/run/{bid}/series"
            if path not in data:  # a baseline's curves, drawn faint behind the run's
                bview = RunView(view.dir.parent / bid)
                data[path] = bview.series(bview.row_keys())
                data[f"/api/run/{bid}"] = bview.payload()
    return data


def _script(text: str) -> str:
    # `</script` inside inlined code or data would end the element early
    return re.sub(r"</(script)", r"<\\/\1", text, flags=re.IGNORECASE)


def render(views: list[RunView]) -> str:
    page = (STATIC / "index.html").read_text()
    # No `<` at all in the embedded JSON (`\u003c` inside its strings, the only place
    # JSON can hold one): neither `</script>` nor `<!--<script>` in a key or a cell can
    # end the element or change how the HTML parser reads the rest of the page.
    data = orjson.dumps({"runs": [v.dir.name for v in views], "data": collect(views)},
                        option=JSON_OPTS).decode().replace("<", "\\u003c")

    def inline(match: re.Match[str]) -> str:
        tag, src = match.group(1), match.group(2)
        text = (STATIC / src.removeprefix("/static/")).read_text()
        if tag == "link":
            return f"<style>{text}</style>"
        return f"<script>{_script(text)}</script>"

    page = re.sub(r'<(link) rel="stylesheet" href="([^"]+)">', inline, page)
    page = re.sub(r'<(script) src="([^"]+)"></script>', inline, page)
    embed = (f'<meta http-equiv="Content-Security-Policy" content="{REPORT_CSP}">\n'
             f'<script id="sr-embed" type="application/json">{data}</script>')
    return page.replace("<!--embed-->", embed, 1)


def write_report(rdirs: list[Path], out: Path) -> int:
    """Write the report; its size in bytes."""
    import os

    html = render([RunView(d) for d in rdirs]).encode()
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(html)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)  # `-o` naming a folder: no half-written file left
        raise
    return len(html)
