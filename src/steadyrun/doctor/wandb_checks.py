"""The checks of one W&B run, from what wandb_scan counted and the files beside the log."""

from __future__ import annotations

from typing import Any

from . import secrets
from .findings import Finding
from .wandb_records import DROP_WARNING
from .wandb_scan import WandbScan
from .wandb_side import Side


def check_run(scan: WandbScan, side: Side) -> list[Finding]:
    run, where = scan.target.run_id, str(scan.target.folder)
    found: list[Finding] = []
    for check in (_dropped, _charts, _one_point, _unfinished, _not_synced, _secrets):
        for f in check(scan, side):
            f.run, f.path = run, where
            found.append(f)
    return found


def _f(code: str, message: str, fix: str, keys: list[str] | None = None,
       **evidence: Any) -> Finding:
    return Finding(code=code, run="", message=message, fix=fix, keys=keys or [],
                   evidence=evidence)


# ---------------------------------------------------------------------- dropped-rows
def _dropped(scan: WandbScan, side: Side) -> list[Finding]:
    """wandb prints "Tried to log to step X that is less than the current step Y" and
    drops the row. The console capture holds the line (in the log's output records and in
    files/output.log); the log is read first, output.log when the log has no console."""
    drops, source = scan.drops, f"{scan.target.files[-1].name}: console line"
    if not scan.console_lines and side.output_log:
        source = "files/output.log:"
        drops = [{"step": int(m.group(1)), "current": int(m.group(2)), "line": n}
                 for n, line in enumerate(side.output_log.splitlines(), 1)
                 for m in DROP_WARNING.finditer(line)]
    if not drops:
        return []
    sep = "" if source.endswith(":") else " "
    # W&B keeps no trace of a dropped row's keys; an exactly defined metric that has no
    # row at all is the one kind of key we can name.
    rows = scan.key_rows()
    never = sorted(k for k, m in scan.metrics.items() if not m["glob"] and k not in rows
                   and k not in {x["step_metric"] for x in scan.metrics.values()})
    return [_f(
        "dropped-rows",
        f"W&B dropped {len(drops)} log call(s): their step was below the run's current "
        f"step, so the data was ignored (it is in none of W&B's files).",
        "let one counter own W&B's step: log without step= (commit=False to merge), or log "
        "your own x as a key with wandb.define_metric(KEY, step_metric=...). With steadyrun "
        "(steadyrun.init + run.log(..., step=s)) every namespace has its own step and a "
        "lower step is kept and recorded, never dropped.",
        never, count=len(drops), steps=[d["step"] for d in drops],
        current_steps=[d["current"] for d in drops],
        where=[f"{source}{sep}{d['line']}" for d in drops[:20]],
        keys_recovered="keys defined but never logged" if never else
        "none: W&B records no key of a dropped row")]


# ---------------------------------------------------------------------- charts
def _binding(scan: WandbScan, key: str) -> tuple[str, str] | None:
    """(define_metric name, step metric) that charts `key`: an exact definition wins,
    then the longest glob."""
    m = scan.metrics.get(key)
    if m and m["step_metric"]:
        return key, m["step_metric"]
    best = None
    for name, m in scan.metrics.items():
        if m["glob"] and m["step_metric"] and key.startswith(name.rstrip("*")) \
                and (best is None or len(name) > len(best[0])):
            best = (name, m["step_metric"])
    return best


def _charts(scan: WandbScan, side: Side) -> list[Finding]:
    """empty-chart: keys charted on a step metric that no row of theirs carries, or that
    never changed (wandb-core's step_sync fills a never-logged step metric with 0, so all
    the points sit at one x). mixed-axes: a namespace whose keys are logged in some rows
    with its step metric and in others without."""
    rows = scan.key_rows()
    step_metrics = {m["step_metric"] for m in scan.metrics.values() if m["step_metric"]}
    empty: dict[tuple[str, str], dict[str, Any]] = {}
    mixed: dict[str, dict[str, dict[str, int]]] = {}
    for key in sorted(rows):
        if key in step_metrics or scan.kinds.get(key) not in ("number", None):
            continue
        bound = _binding(scan, key)
        step = bound[1] if bound else _namespace_step(key, rows)
        if step is None or step == key:
            continue
        with_step = sum(s.count for keys, s in scan.shapes.items() if key in keys and step in keys)
        without = rows[key] - with_step
        track = scan.steps.get(step)
        if bound and (with_step == 0 or (rows[key] >= 2 and track is not None
                                         and track.first is not None and not track.changed)):
            ev = empty.setdefault((bound[0], step), {})
            ev[key] = rows[key]
        elif without and with_step:
            ns = key.rsplit("/", 1)[0] if "/" in key else ""
            mixed.setdefault(ns, {})[key] = {"with": with_step, "without": without,
                                             "step_metric": step}  # type: ignore[dict-item]
    out = []
    for (name, step), keys in sorted(empty.items()):
        track = scan.steps.get(step)
        const = track.first.decode(errors="replace") if track and track.first else None
        how = (f"every row holds {step} = {const}: it was never logged as data, and "
               f"wandb-core filled in that one value") if const is not None and step in rows \
            else f"no row holding these keys holds {step}"
        out.append(_f("empty-chart",
                      f"define_metric({name!r}, step_metric={step!r}) charts these keys on "
                      f"{step}, but {how}; W&B draws their charts empty.",
                      f"log the step metric as data in the same call: run.log({{KEY: v, "
                      f"{step!r}: s}}). steadyrun writes each namespace's step into every "
                      f"row of that namespace (run.log(..., step=s)).",
                      sorted(keys), step_metric=step, defined_as=name, rows=keys,
                      step_value=const if const is not None and step in rows else None))
    for ns, keys in sorted(mixed.items()):
        step = next(iter(keys.values()))["step_metric"]
        out.append(_f("mixed-axes",
                      f"keys of namespace {ns or '(root)'!r} are logged with {step} in some "
                      f"rows and without it in others: the rows without it are not drawn "
                      f"on that axis.",
                      f"log {step!r} in every call that logs a {ns or 'root'} key (or "
                      f"define_metric the keys on it). steadyrun writes {step} into every "
                      f"row of the namespace.",
                      sorted(keys), step_metric=step,
                      rows={k: {"with": v["with"], "without": v["without"]}
                            for k, v in keys.items()}))
    return out


def _namespace_step(key: str, rows: dict[str, int]) -> str | None:
    ns = key.rsplit("/", 1)[0] if "/" in key else None
    step = f"{ns}/step" if ns else None
    return step if step in rows else None


# ---------------------------------------------------------------------- one-point-series
def _one_point(scan: WandbScan, side: Side) -> list[Finding]:
    """A number logged in exactly one row, at the end of the run (after the last row of
    every key logged more than once): a final score, which W&B draws as a one-point line
    chart. It belongs in the summary."""
    rows = scan.key_rows()
    step_metrics = {m["step_metric"] for m in scan.metrics.values() if m["step_metric"]}
    last_series_row = max((s.last_row for keys, s in scan.shapes.items()
                           if any(rows[k] > 1 for k in keys)), default=-1)
    single = {}
    for keys, shape in scan.shapes.items():
        for k in keys:
            if rows[k] == 1 and k not in step_metrics and scan.kinds.get(k) == "number" \
                    and shape.first_row >= last_series_row:
                single[k] = shape.first_step
    if not single:
        return []
    keys = sorted(single)
    return [_f("one-point-series",
               f"{len(keys)} key(s) logged once, at the end of the run: W&B draws each as a "
               f"line chart of one point.",
               "put final scores in the summary: run.summary.update({...}) (wandb and "
               "steadyrun alike), or steadyrun's run.log_summary({...}, prefix='eval').",
               keys, steps={k: single[k] for k in keys},
               in_summary=sorted(k for k in keys if k in side.summary) or None)]


# ---------------------------------------------------------------------- lifecycle
def _unfinished(scan: WandbScan, side: Side) -> list[Finding]:
    if scan.exit_code is not None:
        return []
    ev: dict[str, Any] = {"rows": scan.rows, "records": scan.stats.records}
    if scan.stats.torn:
        ev["torn_records"] = scan.stats.torn
        ev["damage"] = scan.stats.problems[:3]
    return [_f("unfinished",
               "the log has no exit record: the run crashed or was killed before "
               "wandb.finish(); what W&B had not flushed is lost.",
               "steadyrun writes every row to its local log before log() returns and ships "
               "from a sidecar that outlives the training process (steadyrun sync RUN "
               "finishes a crashed run); with wandb, call run.finish() in a finally block.",
               **ev)]


def _not_synced(scan: WandbScan, side: Side) -> list[Finding]:
    folder = scan.target.folder
    if not folder.name.startswith("offline-run-") or side.synced:
        return []
    return [_f("not-synced", "an offline run that was never uploaded (no .synced marker).",
               f"wandb sync {folder}  (a steadyrun run: steadyrun sync RUN)",
               folder=str(folder), rows=scan.rows)]


def _secrets(scan: WandbScan, side: Side) -> list[Finding]:
    where: list[str] = []
    where += [f"config:{p}" for p in secrets.in_mapping({**side.config, **scan.config})]
    summary = {**{k: v for k, v in side.summary.items() if isinstance(v, str)},
               **scan.summary_strings}
    where += [f"summary:{p}" for p in secrets.in_mapping(summary)]
    args = list(scan.env.get("args") or side.metadata.get("args") or [])
    where += [f"wandb-metadata args[{i}]" for i in secrets.in_argv(args)]
    where += secrets.in_files(scan.target.folder / "files", scan.target.folder)
    if not where:
        return []
    keys = sorted({w.split(":", 1)[1] for w in where if w.startswith(("config:", "summary:"))})
    return [_f("secret-in-config",
               f"{len(where)} credential(s) stored in the run, where W&B uploads them "
               f"(values not shown).",
               "pass credentials through the environment (WANDB_API_KEY, HF_TOKEN...), "
               "never in the config or on the command line, and rotate the ones found here. "
               "steadyrun redacts credentials before anything is written.",
               keys, where=sorted(set(where)))]
