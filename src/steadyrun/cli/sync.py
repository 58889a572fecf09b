"""`steadyrun sync RUN | --all [--follow]`: ship whatever is not yet in W&B.

Run once, it is the sidecar's code without the tail: idempotent through the cursor, so
after a crash, an outage or an earlier partial sync it never duplicates or misses a row.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..store.layout import resolve_run


def _runs(args: argparse.Namespace) -> list[Path]:
    from ..read.reader import list_runs

    if args.all:
        return list_runs(args.dir)
    if not args.run:
        raise SystemExit("steadyrun sync: name a RUN or pass --all")
    return [resolve_run(args.run, args.dir)]


def sync_command(args: argparse.Namespace) -> int:
    from ..ship.sidecar import supervise

    mode = args.mode or "auto"
    if args.follow:
        (rdir,) = _runs(args)
        lower_priority()
        return supervise(rdir, mode, args.owner_pid, follow=True, quiet=args.quiet)
    status = 0
    for rdir in _runs(args):
        status |= _sync_once(rdir, mode, quiet=args.quiet)
    return status


def lower_priority() -> None:
    """The sidecar works beside a training job. On a machine with no idle core its W&B
    shipping (and the wandb-core it spawns, which inherits the niceness) must yield to
    training rather than slow it down; it catches up while training waits on data or
    at `finish`. STEADYRUN_SIDECAR_NICE (default 10; 0 keeps the priority) sets it."""
    try:
        nice = int(os.environ.get("STEADYRUN_SIDECAR_NICE", "10"))
        if nice > 0:
            os.nice(nice)
    except (OSError, ValueError, AttributeError):  # no os.nice (Windows), or not allowed
        pass


def _sync_once(rdir: Path, mode: str, quiet: bool) -> int:
    from rich.progress import BarColumn, Progress, TextColumn

    from ..ship.shipper import Shipper
    from ..ship.wandb.mode import choose, offline_note
    from ..ship.wandb.sink import WandbSink

    chosen, why = choose(mode)
    if chosen == "offline" and mode != "offline":
        offline_note(rdir.name, why)
    if chosen == "online":
        from ..ship.wandb.upload import upload_offline_dirs

        upload_offline_dirs(rdir)  # earlier offline pieces first: steps must only increase
    sink = WandbSink(rdir, chosen)
    with Progress(TextColumn(f"sync {rdir.name}"), BarColumn(), TextColumn("{task.description}"),
                  disable=quiet, transient=False) as bar:
        task = bar.add_task("starting", total=None)

        def progress(rows: int, left: int) -> None:
            bar.update(task, description=f"{rows} rows shipped, {left} bytes left")

        outcome = Shipper(rdir, sink, follow=False, progress=progress).run()
        bar.update(task, description=f"{outcome.rows} rows shipped now, {outcome.total_rows} "
                                     f"in all; run {outcome.state}", total=1, completed=1)
    if outcome.state == "busy":
        print(f"steadyrun: run {rdir.name} is being shipped by its sidecar right now; "
              f"nothing to do (run sync again once it has finished)", file=sys.stderr)
        return 0
    if not quiet:
        print(f"steadyrun: run {rdir.name}: {outcome.rows} new rows shipped to W&B {chosen} "
              f"({outcome.total_rows} in all), state {outcome.state}", file=sys.stderr)
    return 0
