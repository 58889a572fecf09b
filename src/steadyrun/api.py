"""`steadyrun.init`: decide who this process is in the pipeline, then hand out a Run.

Owner (a fresh run, or a resumed one), child (a subprocess given `run.child_env()`),
extra rank (`all_ranks=True`), or a no-op handle (disabled mode, non-zero ranks). Only
the owner writes run.json and starts the sidecar.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .log.console import enabled as console_enabled
from .log.inert import InertRun
from .log.run import Run
from .log.run_folder import writable_run_dir
from .log.run_start import start_run
from .log.tags import check_required_tags, tags_of
from .store.layout import (
    ID_RULE,
    MANIFEST,
    atomic_write_json,
    hostname,
    is_run_id,
    make_run_dirs,
    new_run_id,
    root_dir,
    runs_dir,
    sink_path,
)
from .store.manifest import ManifestError, read_manifest

MODES = ("auto", "online", "offline", "local", "disabled")


def resolve_mode(mode: str | None) -> str:
    """Argument, then STEADYRUN_MODE, then WANDB_MODE, then auto."""
    chosen = mode or os.environ.get("STEADYRUN_MODE") or os.environ.get("WANDB_MODE") or "auto"
    chosen = {"dryrun": "offline", "run": "online"}.get(chosen, chosen)
    if chosen == "shared":
        raise NotImplementedError(
            "steadyrun: W&B's mode='shared' (several processes writing one run) is how "
            "steadyrun always works: start subprocesses with run.child_env(), or pass "
            "all_ranks=True under torchrun; use mode='auto', 'online' or 'offline'")
    if chosen not in MODES:
        raise ValueError(f"steadyrun: mode must be one of {', '.join(MODES)}, got {chosen!r}")
    return chosen


def resolve_strict(strict: bool | None) -> bool:
    if strict is not None:
        return bool(strict)
    return os.environ.get("STEADYRUN_STRICT", "").lower() in ("1", "true", "yes", "on")


def init(project: str | None = None, name: str | None = None, config: Any = None,
         tags: Sequence[str] | Mapping[str, Any] | None = None, group: str | None = None,
         job_type: str | None = None, notes: str | None = None, entity: str | None = None,
         mode: str | None = None, dir: str | os.PathLike[str] | None = None,
         resume: str | Mapping[str, Any] | None = None, strict: bool | None = None,
         all_ranks: bool = False, log_interval: int = 10, gpu_stats_interval: int = 100,
         sidecar: str = "process", finish_timeout: float = 60.0,
         metadata: bool | None = None, required_tags: Sequence[str] | None = None,
         wandb_rows_per_min: float | None = None, id: str | None = None,
         baseline: str | None = None, regression: Mapping[str, Any] | None = None,
         regression_k: float | None = None, console: str | None = None,
         **_unknown: Any) -> Run | InertRun:
    """Start or join the pipeline's run. See DESIGN.md section 2 for every argument.

    `metadata` (default on; `STEADYRUN_METADATA=0` turns the default off) records git,
    host, command line, seeds, SLURM and versions under the config key `steadyrun`.
    `required_tags` refuses, with a ValueError naming them, a run missing any of them.
    `id` names the run (default: 8 random characters); a run with that id that already
    exists is continued, like `resume="<id>"`.
    `wandb_rows_per_min` (or STEADYRUN_WANDB_ROWS_PER_MIN) thins what W&B receives to at
    most that many rows per minute of each kind of row; the local log keeps every row
    (ship/wandb/budget.py says which rows are always shipped).
    `baseline` ("<run id>", "best", "tag:NAME", "group:NAME", "latest") with
    `regression` rules ({key: tolerance}, e.g. {"val/acc": "-1%"}) and the noise
    band's `regression_k` (default 2) turn on the live regression check
    (log/regression.py); kept in run.json as `baseline`, and watched again when the run
    is resumed without `baseline=`.
    wandb.init's own arguments are taken too (`reinit`, `config_include_keys`, ...;
    log/wandb_args.py says what each does here), so `import steadyrun as wandb` works.
    `steadyrun.run` is the run returned last, until it finishes.
    `console` ("on" by default, or STEADYRUN_CONSOLE; "off") tees this process's stdout
    and stderr into the run (log/console.py): `steadyrun logs RUN` prints them.
    """
    reinit = None
    if _unknown:  # wandb.init's arguments (import steadyrun as wandb), else a TypeError
        from .log.wandb_args import take_wandb_args

        config, reinit = take_wandb_args(_unknown, config)
    if isinstance(resume, bool):  # wandb's resume=True: continue `id` when it exists
        resume = "auto" if resume else None
    from .log import live_runs

    previous = live_runs.current
    if previous is not None and not previous.finished and reinit is not None:
        if reinit == "return_previous":
            return previous
        if reinit in (True, "finish_previous"):
            previous.finish()
    return live_runs.set_current(_init(
        project=project, name=name, config=config, tags=tags, group=group,
        job_type=job_type, notes=notes, entity=entity, mode=mode, dir=dir, resume=resume,
        strict=strict, all_ranks=all_ranks, log_interval=log_interval,
        gpu_stats_interval=gpu_stats_interval, sidecar=sidecar, finish_timeout=finish_timeout,
        metadata=metadata, required_tags=required_tags,
        wandb_rows_per_min=wandb_rows_per_min, id=id, baseline=baseline,
        regression=regression, regression_k=regression_k, console=console))


def _init(*, project: str | None, name: str | None, config: Any, tags: Any, group: str | None,
          job_type: str | None, notes: str | None, entity: str | None, mode: str | None,
          dir: Any, resume: Any, strict: bool | None, all_ranks: bool, log_interval: int,
          gpu_stats_interval: int, sidecar: str, finish_timeout: float,
          metadata: bool | None, required_tags: Sequence[str] | None,
          wandb_rows_per_min: float | None, id: str | None, baseline: str | None,
          regression: Mapping[str, Any] | None,
          regression_k: float | None, console: str | None = None) -> Run | InertRun:
    if required_tags:
        check_required_tags(tags_of(tags), list(required_tags))
    for label, every in (("log_interval", log_interval),
                         ("gpu_stats_interval", gpu_stats_interval)):
        if isinstance(every, bool) or not isinstance(every, int) or every < 1:
            raise ValueError(f"steadyrun.init: {label} must be a whole number >= 1, "
                             f"got {every!r}")
    mode = resolve_mode(mode)
    strict_ = resolve_strict(strict)
    if mode == "disabled":
        return InertRun(reason="disabled")
    from .log.distributed import rank_info

    rank, world = rank_info()
    if rank != 0 and not all_ranks:
        return InertRun(reason=f"rank {rank}")

    from .log.context import load_context_from_env

    intervals = {"log_interval": log_interval, "gpu_stats_interval": gpu_stats_interval}
    ctx = load_context_from_env()
    if ctx is not None:
        return _join(ctx, role="child", name=name, job_type=job_type, strict=strict_,
                     config=config, key_prefix="", **intervals)
    if rank != 0:
        from .log.distributed import shared_run_id

        run_id = shared_run_id(None)
        rdir = runs_dir(dir) / run_id
        ctx = {"run_id": run_id, "dir": str(rdir), "mode": mode}
        return _join(ctx, role=f"rank{rank}", name=name, job_type=job_type, strict=strict_,
                     config=None, key_prefix=f"rank{rank}/", **intervals)

    _warn_if_open()
    run_id, resume_state = _run_to_open(resume, id, root_dir(dir), strict_)
    if all_ranks and world > 1:
        from .log.distributed import shared_run_id

        run_id = shared_run_id(run_id)
    if not is_run_id(run_id):
        raise ValueError(f"steadyrun: run id {run_id!r} must be {ID_RULE}")

    rdir, fallback_from = writable_run_dir(root_dir(dir), run_id, strict_)
    if rdir is None:
        return InertRun(reason="no writable folder")
    resumed = (rdir / MANIFEST).exists()
    if resume_state is not None and not resumed:
        _continue_elsewhere(rdir, resume_state)
    manifest: dict[str, Any] = {}
    steps: dict[str, Any] = {}
    global_step = 0
    best_checkpoint = None
    if resumed:
        from .read.reader import open_run

        # Regressions are judged against what the run really holds, so a rollback to an
        # older checkpoint re-logs its steps with step_regression events, never silently.
        prior = open_run(rdir)
        steps, global_step = prior.last_steps, prior.next_global_step
        best_checkpoint = _best_checkpoint(prior.artifacts)
    if resume_state is not None:
        steps = {**dict(resume_state.get("steps") or {}), **steps}
        global_step = int(resume_state.get("global_step") or 0)
        if best_checkpoint is None and _is_number(resume_state.get("best_checkpoint")):
            best_checkpoint = float(resume_state["best_checkpoint"])
    if resumed:
        try:
            manifest = read_manifest(rdir)
        except ManifestError as exc:
            manifest = {"manifest_error": str(exc)}
        if manifest.get("manifest_error"):
            # Resuming rewrites run.json; what could not be read is said, never silently lost.
            print(f"steadyrun: resuming run {run_id}: {manifest.pop('manifest_error')}; "
                  f"run.json is written anew (steps and rows come from the segments)",
                  file=sys.stderr)
        # Written again at finish; a stale copy would mislead the next resume after a crash.
        manifest.pop("global_step", None)
        manifest.pop("last_steps", None)
        stored = manifest.get("baseline")
        if baseline is None and isinstance(stored, dict) and stored.get("ref"):
            # A resumed run keeps watching the baseline it was started with (its ref
            # resolved again, its rules and k as stored); baseline= given again wins.
            baseline = stored["ref"]
            regression = regression if regression is not None else (stored.get("rules") or None)
            regression_k = regression_k if regression_k is not None else stored.get("k")
    manifest.update({
        "id": run_id, "format": 1,
        "project": project or os.environ.get("WANDB_PROJECT") or manifest.get("project")
        or "steadyrun",
        "entity": entity or os.environ.get("WANDB_ENTITY") or manifest.get("entity"),
        "name": name or manifest.get("name") or run_id,
        "group": group or manifest.get("group"), "job_type": job_type or manifest.get("job_type"),
        "notes": notes or manifest.get("notes"), "tags": tags_of(tags) or manifest.get("tags", []),
        "mode": mode, "state": "running",
        "created_at": manifest.get("created_at") or time.time(),
        "owner": {"pid": os.getpid(), "host": hostname(), "started_at": time.time()},
        "resumes": manifest.get("resumes", -1) + 1 if resumed else 0,
    })
    if fallback_from is not None:
        manifest["fallback_from"] = fallback_from
    budget = _rows_per_min(wandb_rows_per_min, strict_)
    if budget is not None:
        manifest["wandb_rows_per_min"] = budget
    _redact_free_text(manifest)
    spec, refused = _baseline(baseline, regression, regression_k, root_dir(dir),
                              manifest["project"], run_id, strict_)
    if spec is not None:
        manifest["baseline"] = {f: spec[f] for f in ("ref", "runs", "rules", "k")}
    atomic_write_json(rdir / MANIFEST, manifest)

    ships = mode in ("auto", "online", "offline")
    return start_run(rdir, run_id, manifest, role="owner", mode=mode, strict=strict_,
                     steps=steps, global_step=global_step, key_prefix="",
                     name=manifest["name"], job_type=manifest["job_type"], config=config,
                     metadata=_metadata_on(metadata), **intervals,
                     console=console_enabled(console),
                     baseline={"ref": baseline, "spec": spec, "refused": refused,
                               "resolve": _resolver(root_dir(dir), manifest["project"],
                                                    run_id)},
                     sidecar=_sidecar(sidecar, finish_timeout) if ships else None,
                     leaderboard=_leaderboard_table, best_checkpoint=best_checkpoint)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _best_checkpoint(artifacts: list[dict[str, Any]]) -> float | None:
    """The metric of the last checkpoint that took the alias `best`: the best so far of
    the run's earlier processes, which a resumed run's checkpoints must beat."""
    for rec in reversed(artifacts):
        metric = (rec.get("metadata") or {}).get("metric")
        if "best" in (rec.get("aliases") or []) and _is_number(metric):
            return float(metric)
    return None


def _leaderboard_table(root: Path, **filters: Any) -> tuple[list[str], list[list[Any]]]:
    """What `run.log_leaderboard` logs: the reader's ranking of the runs under `root`
    (read/leaderboard.py). Given to every Run by `start_run`, like the sidecar: log/ may
    not import read/, and api is where a Run is put together. Imported when called, so
    `init` loads none of it."""
    from .read.leaderboard import leaderboard_table

    return leaderboard_table(root, **filters)


def _baseline(ref: str | None, regression: Any, k: Any, root: Path, project: str,
              run_id: str, strict: bool) -> tuple[dict[str, Any] | None, str | None]:
    """(what the live regression check needs, or None; why a baseline was refused).

    Read once, here (read/baseline.py: it reads other runs, which log/ may not); the Run
    gets plain data. A baseline that cannot be used raises in strict mode; otherwise the
    run starts without it, and the Run warns once and records a `rejected` event."""
    if ref is None and not regression and k is None:
        return None, None
    from .read.baseline import live_spec

    try:
        return live_spec(ref, regression, k, root, project=project, exclude=(run_id,)), None
    except ValueError as exc:  # store/rules.RuleError, BaselineError
        if strict:
            raise ValueError(f"steadyrun.init: baseline={ref!r}: {exc}") from None
        return None, f"{exc}; the run goes on without a baseline"


def _resolver(root: Path, project: str, run_id: str) -> Callable[..., dict[str, Any]]:
    """`run.set_baseline`'s reader (read/baseline.live_spec), bound to this run."""

    def resolve(ref: str, regression: Any, k: Any) -> dict[str, Any]:
        from .read.baseline import live_spec

        return live_spec(ref, regression, k, root, project=project, exclude=(run_id,))

    return resolve


def _sidecar(how: str, finish_timeout: float) -> Callable[[Run], Any]:
    """The owner's sidecar, made by `start_run` once the run is open: the ship layer's
    handle, told the run's folder, id and mode and asked whether the run has finished."""

    def make(run: Run) -> Any:
        from .ship.handle import SidecarHandle

        return SidecarHandle(run.dir, run.id, run.mode, how=how, finish_timeout=finish_timeout,
                             finished=lambda: run.finished)

    return make


RESUME_WORDS = ("allow", "must", "never", "auto")


def _run_to_open(resume: Any, id: str | None, root: Path, strict: bool
                 ) -> tuple[str, Mapping[str, Any] | None]:
    """(the run id, the state dict to resume from) for init's `resume` and `id`.

    `resume=state` (run.state_dict()) continues that run; `resume="<id>"` continues a run
    that must exist (strict: an error; otherwise a loud warning and a new run);
    `resume="allow"` / `"auto"` with `id` continues it when it exists, else starts it;
    `"must"` requires it to exist, `"never"` requires it not to (W&B's meanings).
    """
    def exists(run_id: str) -> bool:
        return (runs_dir(root) / run_id / MANIFEST).exists()

    if isinstance(resume, Mapping):
        return str(resume["run_id"]), resume
    if resume in ("must", "never"):
        if id is not None and not is_run_id(str(id)):
            raise ValueError(f"steadyrun: run id {id!r} must be {ID_RULE}")
        if id is None:
            raise ValueError(f"steadyrun.init: resume={resume!r} needs id= (the run to "
                             f"{'continue' if resume == 'must' else 'start'})")
        if resume == "must" and not exists(str(id)):
            raise ValueError(f"steadyrun.init: resume='must', but there is no run {id!r} "
                             f"under {runs_dir(root)}")
        if resume == "never" and exists(str(id)):
            raise ValueError(f"steadyrun.init: resume='never', but run {id!r} already "
                             f"exists under {runs_dir(root)}")
        return str(id), None
    if isinstance(resume, str) and resume not in RESUME_WORDS:
        if id is not None and str(id) != resume:
            raise ValueError(f"steadyrun.init: id={id!r} and resume={resume!r} name two runs")
        if not is_run_id(resume):
            raise ValueError(f"steadyrun: run id {resume!r} must be {ID_RULE}")
        if exists(resume):
            return resume, None
        msg = (f"steadyrun.init: resume={resume!r}, but there is no run {resume!r} under "
               f"{runs_dir(root)} (the root is dir=, else $STEADYRUN_DIR, else ./steadyrun "
               f"in the working folder)")
        if strict:
            raise FileNotFoundError(msg)
        new = new_run_id()
        import warnings

        from .store.values import SteadyrunWarning

        warnings.warn(f"{msg}. Starting a NEW run {new} instead; pass the same dir= (or "
                      f"STEADYRUN_DIR) to continue the old one.", SteadyrunWarning,
                      stacklevel=3)
        print(f"steadyrun: WARNING: {msg}; a new run {new} is started instead",
              file=sys.stderr)
        return new, None
    return (str(id) if id is not None else new_run_id()), None


def _continue_elsewhere(rdir: Path, state: Mapping[str, Any]) -> None:
    """A state dict resumed where its run's folder is not (another root, a job restarted
    from another folder): the run goes on in a new folder here under the same id, and
    its W&B steps continue after every step the state says the run had taken, so W&B
    never gets one of its `_step`s twice (it would drop those rows)."""
    sinks = state.get("sinks") if isinstance(state.get("sinks"), Mapping) else {}
    for name, position in sinks.items():
        nxt = position.get("next_step") if isinstance(position, Mapping) else None
        if isinstance(nxt, int) and nxt > 0:
            from .store.cursor import Cursor

            cursor = Cursor.load(sink_path(rdir, str(name), "cursor"))
            if cursor.next_seq < nxt and not cursor.journal:
                cursor.next_seq = nxt
                cursor.save()
    print(f"steadyrun: resuming run {rdir.name} from a saved state, but its folder is not "
          f"under {rdir.parent}: it goes on in a new folder there (its earlier records stay "
          f"where they were); W&B continues after the steps it already has.",
          file=sys.stderr)


def _warn_if_open() -> None:
    """A second owner run in one process is allowed (a sweep in a loop), but it is two
    runs, locally and in W&B: when the first is still open, that is usually a mistake."""
    from .log import live_runs

    open_runs = [r for r in list(live_runs.active) if r.role == "owner" and not r.finished]
    if open_runs:
        import warnings

        from .store.values import SteadyrunWarning

        ids = ", ".join(r.id for r in open_runs)
        warnings.warn(f"steadyrun: init() starts a second run while run {ids} is still open "
                      f"in this process: they are separate runs, locally and in W&B. Finish "
                      f"the first (run.finish(), or `with steadyrun.init(...) as run:`), or "
                      f"pass its run along instead of calling init() again.",
                      SteadyrunWarning, stacklevel=3)


def _rows_per_min(value: float | None, strict: bool) -> float | None:
    """The W&B row budget from the argument or STEADYRUN_WANDB_ROWS_PER_MIN; a bad one is
    an error in strict mode, else said once and ignored (every row then ships)."""
    raw: Any = value if value is not None else os.environ.get("STEADYRUN_WANDB_ROWS_PER_MIN")
    if raw is None or raw == "":
        return None
    try:
        budget = float(raw)
        if not budget > 0 or budget == float("inf"):
            raise ValueError
    except (TypeError, ValueError):
        msg = (f"steadyrun: wandb_rows_per_min must be a number > 0, got {raw!r}; without "
               f"it every row ships to W&B")
        if strict:
            raise ValueError(msg) from None
        print(msg, file=sys.stderr)
        return None
    return budget


def _redact_free_text(manifest: dict[str, Any]) -> None:
    """Notes, names and tags are free text that reaches W&B: a URL with credentials in
    them ("data at https://user:pass@host") must be redacted like the config is. Found by
    the fault suite's planted secrets (tests/faults/test_fault_security.py)."""
    from .store.redact import redact_text

    for key in ("name", "notes", "group", "job_type", "project", "entity"):
        if isinstance(manifest.get(key), str):
            manifest[key] = redact_text(manifest[key])
    manifest["tags"] = [redact_text(t) for t in manifest.get("tags") or []]


def _metadata_on(metadata: bool | None) -> bool:
    if metadata is not None:
        return bool(metadata)
    return os.environ.get("STEADYRUN_METADATA", "1").strip().lower() not in (
        "0", "false", "no", "off")


def _join(ctx: Mapping[str, Any], *, role: str, name: str | None, job_type: str | None,
          strict: bool, config: Any, key_prefix: str, log_interval: int = 10,
          gpu_stats_interval: int = 100, sidecar: Callable[[Run], Any] | None = None) -> Run:
    """A writer of an existing run (a child process, an extra rank): its own segment."""
    rdir = Path(ctx["dir"])
    make_run_dirs(rdir)
    try:
        manifest = read_manifest(rdir)
    except ManifestError:
        manifest = {"id": ctx["run_id"]}
    return start_run(rdir, ctx["run_id"], manifest, role=role, mode=ctx.get("mode", "local"),
                     strict=strict, steps={}, global_step=0, key_prefix=key_prefix, name=name,
                     job_type=job_type, config=config, log_interval=log_interval,
                     gpu_stats_interval=gpu_stats_interval, sidecar=sidecar,
                     leaderboard=_leaderboard_table, console=console_enabled(None))


def attach(run_id: str, dir: str | os.PathLike[str] | None = None, *, name: str | None = None,
           job_type: str | None = None, strict: bool | None = None) -> Run:
    """Join an existing run explicitly, as a child writer with its own segment."""
    rdir = runs_dir(dir) / run_id
    if not (rdir / MANIFEST).exists():
        raise ManifestError(f"steadyrun.attach: no run {run_id!r} at {rdir}")
    manifest = read_manifest(rdir)
    mode = manifest.get("mode", "local")
    ctx = {"run_id": run_id, "dir": str(rdir.resolve()), "mode": mode}
    # A run that is still running has a sidecar, which waits for this writer too. One
    # that has ended has none: this writer gets its own, or what it writes would never
    # reach W&B. (Two shippers never share a cursor: the second waits for the first.)
    from .read.overview import overview

    ended = overview(rdir)[0].state != "running"
    ships = mode in ("auto", "online", "offline") and ended
    return _join(ctx, role="child", name=name, job_type=job_type,
                 strict=resolve_strict(strict), config=None, key_prefix="",
                 sidecar=_sidecar("process", 60.0) if ships else None)
