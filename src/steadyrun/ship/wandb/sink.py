"""Map steadyrun records onto W&B semantics (DESIGN.md sections 3 and 4).

This module and its folder are the only ones that import wandb, and they run only in
the sidecar (or its thread fallback), never on the training thread. The sink owns
`_step`: every record that becomes a W&B history row is sequenced (ship/sink.py), so the
shipper hands it the next integer and W&B never drops a row; and each key gets an
exact-key `define_metric(key, step_metric=<its namespace step>)` before its first row,
so charts use the right axis and are never empty.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from ...store.console_file import console_files, read_lines, short_writer
from ...store.layout import (
    atomic_write_bytes,
    files_dir,
    read_sink_status,
    sink_path,
    update_sink_status,
)
from ...store.records import GOALS, STEPPED_KINDS
from ...store.steps import is_step_metric, step_metric_of
from ...store.values import restore_values
from .budget import RowBudget, defined_metrics
from .overview import argv_of, owner_facts, settings_of

NAME = "wandb"
DIFF_FILE = "git_diff.patch"  # log/metadata.py's name for a dirty tree's diff
HISTORY_KINDS = STEPPED_KINDS  # each is one W&B history row, numbered by `_step`


def wandb_dir_for(rdir: Path) -> Path:
    """WANDB_DIR keeps its meaning; by default W&B's files live inside the run folder."""
    env = os.environ.get("WANDB_DIR")
    return Path(env) if env else rdir


def _no_analytics() -> None:
    """An offline W&B run sends nothing over the network.

    wandb's own analytics decide online/offline from the process-wide settings, not the
    run's: in an offline run they still POST to WANDB_BASE_URL when the process exits,
    and a server that does not answer holds the sidecar there for 10 s per request.
    """
    try:
        from wandb.analytics.opentelemetry import opentelemetry_proxy
    except ImportError:  # a wandb without these analytics
        return
    opentelemetry_proxy.disable()


@contextlib.contextmanager
def _start_time(started: float | None) -> Iterator[None]:
    """Give the W&B run the start of the steadyrun run (run.json's `created_at`).

    wandb 0.31 takes the start from the clock while `init` runs: `Settings.x_start_time`
    is overwritten with `time.time()` in wandb_init.py, and the run record's start is
    `Run._start_time = time.time()` in wandb_run.py (a TODO there says it should come
    from the settings). Those are the only reads of `time.time` in the two modules, so
    while `init` runs their clock reads the run's start. tests/test_wandb_sidecar.py
    checks the start in W&B's own log: a wandb that changes this fails there, not
    silently.
    """
    if started is None:
        yield
        return
    from wandb.sdk import wandb_init, wandb_run

    class _Clock:
        def __init__(self, real: Any) -> None:
            self.real = real

        def __getattr__(self, name: str) -> Any:
            return getattr(self.real, name)

        @staticmethod
        def time() -> float:
            return started

    patched = [m for m in (wandb_init, wandb_run) if getattr(m, "time", None) is time]
    for module in patched:
        module.time = _Clock(time)  # type: ignore[attr-defined]
    try:
        yield
    finally:
        for module in patched:
            module.time = time  # type: ignore[attr-defined]


def wandb_error() -> type[Exception]:
    import wandb

    return wandb.Error


def make_sink(rdir: Path, mode: str, *, owner_pid: int | None = None,
              init_timeout: float = 30.0, in_thread: bool = False) -> WandbSink:
    """The sink for one shipping pass in `mode` (online or offline). Online, the run's
    earlier offline pieces are uploaded first: W&B's steps must only increase."""
    if mode == "online":
        from .upload import pending_offline_dirs, upload_offline_dirs

        upload_offline_dirs(rdir)
        if pending_offline_dirs(rdir):
            # Rows shipped online now would sit above steps the server has not seen yet,
            # and W&B drops a row whose step goes back. This pass fails instead: the
            # sidecar falls back to offline files, and the next online pass uploads the
            # pieces in order first.
            raise wandb_error()(f"earlier offline pieces of run {rdir.name} could not be "
                                "uploaded; not shipping online after them")
    return WandbSink(rdir, mode, owner_pid=owner_pid, init_timeout=init_timeout,
                     teardown=not in_thread)


class WandbSink:
    name = NAME
    label = "W&B"
    sequenced = HISTORY_KINDS

    def __init__(self, rdir: Path, mode: str, *, owner_pid: int | None = None,
                 init_timeout: float = 30.0, teardown: bool = True) -> None:
        if mode not in ("online", "offline"):
            raise ValueError(f"WandbSink mode must be online or offline, got {mode!r}")
        self.rdir = rdir
        self.mode = mode
        self.owner_pid = owner_pid
        self.init_timeout = init_timeout
        self.teardown = teardown
        self.wandb_dir = wandb_dir_for(rdir)
        self.run: Any = None
        self._defined: set[str] = set()
        self._user_defined: set[str] = set()
        self._counters: dict[str, int] = {}
        self._run_id = rdir.name
        self.budget: RowBudget | None = None  # the opt-in row budget (budget.py)
        # Where the shipper hands the records an earlier pass shipped (Shipper._replay):
        # set only with a budget, whose memory they rebuild; else nothing is read again.
        self.replay: Callable[[dict[str, Any]], None] | None = None

    # ------------------------------------------------------------------ status
    def status(self, **fields: Any) -> None:
        """sinks/wandb.json: what the CLI and demo show about W&B (mode, folders, state)."""
        update_sink_status(self.rdir, NAME, **fields, updated_at=time.time())

    # ------------------------------------------------------------------ lifecycle
    def open(self, manifest: dict[str, Any], first_seq: int) -> int | None:
        import wandb

        self._run_id = manifest.get("id", self.rdir.name)
        definitions: list[dict[str, Any]] | None = None  # the run's define_metric records
        if manifest.get("wandb_rows_per_min"):
            self.budget = RowBudget(float(manifest["wandb_rows_per_min"]))
            definitions = defined_metrics(self.rdir)
            for rec in definitions:
                self.budget.watch_best(rec["key"], rec.get("goal"), rec.get("summary"))
            self.replay = self.budget.replay
        self.wandb_dir.mkdir(parents=True, exist_ok=True)
        stats_pid = self.owner_pid if self.owner_pid and os.environ.get(
            "STEADYRUN_WANDB_STATS", "1") != "0" else None
        # W&B's overview: the owner's program, arguments, host and git (overview.py);
        # git is never run here (disable_git): the sidecar's folder is not the code's.
        facts = owner_facts(self.rdir)
        settings = wandb.Settings(
            mode=self.mode, init_timeout=self.init_timeout, silent=True, console="off",
            save_code=False, disable_code=True, disable_git=True, x_disable_meta=False,
            x_save_requirements=False, disable_job_creation=True,
            x_transaction_log_flush_interval=1.0,
            x_disable_stats=stats_pid is None, **({"x_stats_pid": stats_pid} if stats_pid else {}),
            **settings_of(facts),
        )
        started = manifest.get("created_at")
        started = float(started) if isinstance(started, (int, float)) else None
        if self.mode == "offline":
            _no_analytics()
        if self.teardown:
            # wandb's own notes ("Symlinked 1 file into the W&B run directory...") go to
            # its global terminal, which Settings(silent=True) leaves on: this process is
            # the sidecar or `steadyrun sync`, whose output is steadyrun's alone.
            os.environ.setdefault("WANDB_SILENT", "true")
        self.status(mode=self.mode, state="starting", run_id=self._run_id, finished=False)
        with _start_time(started), argv_of(facts):  # when and what the owner ran
            self.run = wandb.init(
                id=self._run_id, project=manifest.get("project"), entity=manifest.get("entity"),
                name=manifest.get("name"), group=manifest.get("group"),
                job_type=manifest.get("job_type"), notes=manifest.get("notes"),
                tags=list(manifest.get("tags") or []), dir=str(self.wandb_dir),
                resume="allow", settings=settings, reinit="create_new",
            )
        run_dir = str(Path(self.run.dir).parent)
        dirs = list(read_sink_status(self.rdir, NAME).get("run_dirs") or [])
        if [d for d in dirs if d != run_dir]:
            # A later piece of the run (a restarted sidecar, a resume, a sync after a
            # crash): W&B keeps metric definitions per piece, so without them again its
            # first row of a key would define it plainly, and this piece's summary of a
            # `goal="max"` metric would be its last value, not its best.
            for rec in definitions if definitions is not None else defined_metrics(self.rdir):
                self._ship_metric(rec, None)
        if run_dir not in dirs:
            dirs.append(run_dir)
        # Online, the page of the run: printed at finish and by `steadyrun show` (seed 004).
        url = getattr(self.run, "url", None) if self.mode == "online" else None
        self.status(mode=self.mode, state="shipping", run_dirs=dirs, pid=os.getpid(),
                    **({"url": url} if url else {}))
        # Online, a resumed W&B run says where its history ends: continue after it.
        held = int(getattr(self.run, "step", 0) or 0) if self.mode == "online" else 0
        return held if held > first_seq else None

    def settled(self) -> bool:
        """The W&B run was finished after the last record shipped: nothing to redo."""
        return bool(read_sink_status(self.rdir, NAME).get("finished"))

    def durable_seq(self) -> int | None:
        """The highest `_step` W&B's own transaction logs hold for this run id."""
        from .txlog import find_run_files, iter_records

        best: int | None = None
        for path in find_run_files(self.wandb_dir, self._run_id):
            for rec in iter_records(path):
                if rec.WhichOneof("record_type") != "history":
                    continue
                if rec.history.HasField("step"):
                    num = rec.history.step.num
                else:
                    num = next((int(orjson.loads(i.value_json)) for i in rec.history.item
                                if i.key == "_step"), None)
                if num is not None and (best is None or num > best):
                    best = num
        return best

    def ship_console(self) -> int:
        """New lines of the run's console files (log/console.py) to W&B's Logs tab, in
        order per writer, each marked `[role-pid]` when the run has several writers (as
        W&B marks its processes); the offsets shipped are kept in
        sinks/wandb.console.json, so a later pass (`sync`) sends none twice. W&B takes
        console output only from its own capture: the record is handed to its
        interface (`run._interface._publish_output_raw`, a private name; DESIGN.md 4)."""
        if self.run is None:
            return 0
        files = console_files(self.rdir)
        if not files:
            return 0
        path = sink_path(self.rdir, NAME, "console.json")
        try:
            offsets = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            offsets = {}
        shipped = 0
        many = len(files) > 1
        for writer, cfile in files.items():
            lines, end = read_lines(cfile, int(offsets.get(writer, 0)))
            if not lines:
                continue
            prefix = f"[{short_writer(writer)}] " if many else ""
            try:
                for rec in lines:
                    self._output_raw(rec, prefix)
            except Exception as exc:  # noqa: BLE001 - a wandb without this private path
                print(f"steadyrun: W&B did not take the console lines ({exc}); they stay "
                      f"in the run (steadyrun logs)", file=sys.stderr)
                return shipped
            shipped += len(lines)
            offsets[writer] = end
            atomic_write_bytes(path, orjson.dumps(offsets))
        return shipped

    def _output_raw(self, rec: dict[str, Any], prefix: str) -> None:
        from wandb.proto import wandb_internal_pb2 as pb

        kind = pb.OutputRawRecord.OutputType
        out = pb.OutputRawRecord(output_type=kind.STDERR if rec.get("s") == "err" else
                                 kind.STDOUT, line=prefix + rec["l"] + "\n")
        t = float(rec.get("t") or time.time())
        out.timestamp.seconds = int(t)
        out.timestamp.nanos = int((t - int(t)) * 1e9)
        self.run._interface._publish_output_raw(out, nowait=False)

    def close(self, exit_code: int, state: str) -> None:
        if self.run is None:
            return
        self.ship_console()  # the last lines (a crash's traceback) before the end
        if self.budget is not None:
            # The true last value of every key whose last row the budget held back.
            self.run.summary.update(self.budget.final_summary())
            self._counters["sampled_out"] = self.budget.sampled_out
        if self._counters:
            self.run.summary.update({f"steadyrun/{k}": v for k, v in self._counters.items()})
        if state == "crashed":
            self.run.tags = tuple(self.run.tags or ()) + ("crashed",)
        self.run.finish(exit_code=exit_code)
        self.run = None
        if self.teardown:
            import wandb

            wandb.teardown()  # wait for wandb-core to write everything, then stop it
        self.status(state=state, exit_code=exit_code, finished=True,
                    **({"sampled_out": self.budget.sampled_out} if self.budget else {}))

    # ------------------------------------------------------------------ records
    def ship(self, rec: dict[str, Any], step: int | None) -> None:
        """One record; `step` is its `_step` (its sequence number) for a history row."""
        kind = rec["k"]
        handler = getattr(self, f"_ship_{kind}", None)
        if handler is not None:
            handler(rec, step)

    def _define(self, key: str) -> None:
        if key in self._defined:
            return
        self._defined.add(key)
        if key in self._user_defined:
            return
        if is_step_metric(key):
            # An axis, not a chart: hidden keeps it out of W&B's automatic panels (one
            # useless chart per namespace, `eval/step` against `_step`) while it still
            # serves as its keys' x. (A '*' in it is a glob to W&B: left drawn.)
            if "*" not in key:
                with contextlib.suppress(wandb_error()):
                    self.run.define_metric(key, hidden=True)
            return
        if "*" in key:
            # W&B reads '*' in a metric name as a glob (and refuses it anywhere but at the
            # end): an exact-key definition cannot be said. The rows still ship; the key
            # is charted on W&B's default axis. Found by the fuzz suite (tests/faults).
            self._counters["undefined_axis"] = self._counters.get("undefined_axis", 0) + 1
            return
        self.run.define_metric(key, step_metric=step_metric_of(key))

    def _ship_row(self, rec: dict[str, Any], step: int | None) -> None:
        values = restore_values(rec)
        if self.budget is not None and not self.budget.keep(rec.get("t", 0.0), values):
            return  # kept locally; its `_step` stays unused, so W&B's steps keep their order
        for key in values:
            if key not in self._defined:
                self._define(key)
        # commit=True: W&B writes the row now. With only `step`, it holds the last row
        # open for more keys and writes it (and its summary) at finish, after any summary
        # update made since: a key's explicit summary would lose to its last row.
        # `_timestamp`: the row is dated when it was logged, not when it is shipped.
        self.run.log({**values, "_timestamp": rec["t"]}, step=step, commit=True)

    def _ship_summary(self, rec: dict[str, Any], step: int | None) -> None:
        values = restore_values(rec)
        if self.budget is not None:
            self.budget.summary_set(values)
        self.run.summary.update(values)

    def _ship_config(self, rec: dict[str, Any], step: int | None) -> None:
        self.run.config.update(rec["v"], allow_val_change=True)

    def _ship_metric(self, rec: dict[str, Any], step: int | None) -> None:
        key = rec["key"]
        goal = rec.get("goal")
        # wandb 0.31's define_metric has no goal: the goal becomes the summary of the best.
        summary = rec.get("summary") or (GOALS.get(goal) if goal else None)
        kwargs: dict[str, Any] = {"step_metric": rec.get("step_metric") or step_metric_of(key)}
        if summary:
            kwargs["summary"] = summary
        if rec.get("hidden"):
            kwargs["hidden"] = True
        try:
            self.run.define_metric(key, **kwargs)
        except wandb_error() as exc:  # e.g. a '*' that is not a glob suffix
            print(f"steadyrun: W&B refused define_metric({key!r}): {exc}; its rows still "
                  f"ship, on W&B's default axis", file=sys.stderr)
        self._user_defined.add(key)
        self._defined.add(key)
        if self.budget is not None:
            self.budget.watch_best(key, goal, rec.get("summary"))

    def _ship_table(self, rec: dict[str, Any], step: int | None) -> None:
        import wandb

        table = wandb.Table(columns=rec["columns"], data=rec["rows"])
        self._log_at_x({rec["key"]: table}, rec, step)

    def _ship_image(self, rec: dict[str, Any], step: int | None) -> None:
        import wandb

        img = wandb.Image(str(self.rdir / rec["path"]), caption=rec.get("caption"))
        self._log_at_x({rec["key"]: img}, rec, step)

    def _ship_histogram(self, rec: dict[str, Any], step: int | None) -> None:
        import wandb

        self._log_at_x({key: wandb.Histogram(np_histogram=(h["counts"], h["edges"]))
                        for key, h in rec["v"].items()}, rec, step)

    def _log_at_x(self, values: dict[str, Any], rec: dict[str, Any], step: int | None) -> None:
        """Tables, images and histograms sit on their namespace's axis too, at the record's
        `x`, like every row (3.1)."""
        row: dict[str, Any] = {"_timestamp": rec["t"]}
        for key, value in values.items():
            self._define(key)
            row[key] = value
            row[step_metric_of(key)] = rec.get("x", 0)
        self.run.log(row, step=step, commit=True)

    def _ship_file(self, rec: dict[str, Any], step: int | None) -> None:
        path = self.rdir / rec["path"]
        if path.exists():
            self.run.save(str(path), base_path=str(files_dir(self.rdir)), policy="now")
            if path.name == DIFF_FILE:  # W&B's overview shows a dirty tree's diff.patch
                import shutil

                copy = Path(self.run.dir) / "diff.patch"
                shutil.copyfile(path, copy)
                self.run.save(str(copy), base_path=self.run.dir, policy="now")

    def _ship_artifact(self, rec: dict[str, Any], step: int | None) -> None:
        if not rec.get("upload"):
            return
        import wandb

        art = wandb.Artifact(rec["name"], type=rec.get("type") or "model",
                             metadata={"step": rec.get("x"), "size": rec.get("size"),
                                       **(rec.get("metadata") or {})})
        path = Path(rec["path"])
        if path.is_dir():
            for rel in rec.get("files") or []:
                art.add_file(str(path / rel), name=rel)
        elif path.exists():
            art.add_file(str(path))
        self.run.log_artifact(art, aliases=list(rec.get("aliases") or ["latest"]))

    def _ship_alert(self, rec: dict[str, Any], step: int | None) -> None:
        import wandb

        level = getattr(wandb.AlertLevel, rec.get("level", "WARN"), wandb.AlertLevel.WARN)
        # Every alert, unthrottled: wandb turns a wait of 0 into its default of one minute,
        # which would merge repeated alerts of a title (all of them, when synced later).
        self.run.alert(title=rec["title"], text=rec.get("text") or rec["title"], level=level,
                       wait_duration=0.001)

    def _ship_event(self, rec: dict[str, Any], step: int | None) -> None:
        kind = rec.get("type")
        if kind in ("step_regression", "rejected"):
            self._counters[kind] = self._counters.get(kind, 0) + 1
