"""`steadyrun sync RUN | --all [--follow]`: ship whatever is not yet in W&B.

Run once, it is the sidecar's code without the tail: the same shippers
(ship/sinks.build_shippers), idempotent through their cursors, so after a crash, an
outage or an earlier partial sync it never duplicates or misses a row. With `--follow`
it is the sidecar itself, run by hand.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..read.reader import list_runs
from .runs import locate_run


def register(sub: Any) -> None:
    y = sub.add_parser("sync", help="ship runs to W&B (idempotent)",
                       description="Ship to W&B what a run holds and W&B does not have yet. "
                                   "Running it again adds nothing twice.")
    y.add_argument("run", nargs="?", help="a run id, an id prefix or a run folder")
    y.add_argument("--all", action="store_true", help="every run under the root")
    y.add_argument("--follow", action="store_true", help="tail the run until its writers end")
    y.add_argument("--mode", default=None, help="online or offline (default: auto: online "
                                                "when a key is configured and W&B answers)")
    y.add_argument("--owner-pid", type=int, default=None, help=argparse.SUPPRESS)
    y.add_argument("--quiet", action="store_true", help="no progress bar and no summary line")
    y.set_defaults(func=sync_command)


def _misuse(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments' combination, else None.

    Checked before anything is read or shipped (issue 18): `RUN --all` used to ship every
    run and ignore RUN without a word, and `--all --follow` died in a ValueError
    traceback (the supervisor follows one run). Like every other command's usage errors:
    one line on stderr, exit 2."""
    if args.all and args.run:
        return f"name a RUN ({args.run}) or pass --all, not both"
    if args.all and args.follow:
        return "--follow follows one RUN until its writers end; --all ships every run once"
    if not args.all and not args.run:
        return "name a RUN or pass --all"
    return None


def _runs(args: argparse.Namespace) -> list[Path]:
    if args.all:
        from ..store.layout import is_run_dir, is_run_id
        from .runs import no_runs_line

        runs = []
        for d in list_runs(args.dir):
            if is_run_id(d.name) and is_run_dir(d):
                runs.append(d)
            elif not d.name.startswith("."):
                # A folder that is no run (made by hand, emptied) used to end the whole
                # pass in a traceback (FileNotFoundError on its sinks/wandb.lock) before
                # the runs after it were shipped. Skipped, said. Hidden ones are
                # `steadyrun import`'s folders being written: never shipped, not noise.
                print(f"steadyrun: {d} is not a run (no run.json, no segments/): skipped",
                      file=sys.stderr)
        if not runs:
            # Said, not silent: an empty root (the wrong folder, a missing --dir) must not
            # look like a root whose runs were all shipped.
            print(f"steadyrun: nothing to sync: {no_runs_line(args.dir)}", file=sys.stderr)
        return runs
    return [locate_run(args.run, args.dir)]


def sync_command(args: argparse.Namespace) -> int:
    from ..ship.sidecar import lower_priority, supervise

    problem = _misuse(args)
    if problem is not None:
        print(f"steadyrun sync: {problem}", file=sys.stderr)
        return 2
    mode = args.mode or "auto"
    if args.follow:
        (rdir,) = _runs(args)
        if _imported(rdir):
            return 0
        lower_priority()
        return supervise(rdir, mode, args.owner_pid, follow=True)
    status = 0
    for rdir in _runs(args):
        if _imported(rdir):
            continue
        try:
            status |= _sync_once(rdir, mode, quiet=args.quiet)
        except Exception as exc:  # noqa: BLE001
            if not args.all:
                raise
            # One damaged run must not keep the others from W&B: `--all` goes on with the
            # rest and exits 1, having named the run and what went wrong in one line.
            print(f"steadyrun: run {rdir.name} was not synced: {type(exc).__name__}: {exc}",
                  file=sys.stderr)
            status = 1
    return status


def _imported(rdir: Path) -> bool:
    """A run made by `steadyrun import` came from W&B: shipping it would upload a copy
    of a W&B run into W&B (under the same id: into that run). Never shipped; said once."""
    from ..store.manifest import manifest_of

    source = manifest_of(rdir).get("imported_from")
    if not isinstance(source, dict):
        return False
    print(f"steadyrun: run {rdir.name} was imported from W&B run "
          f"{source.get('wandb_run_id')} ({source.get('path')}): it is not shipped back",
          file=sys.stderr)
    return True


def _sync_once(rdir: Path, mode: str, quiet: bool) -> int:
    from rich.progress import BarColumn, Progress, TextColumn

    from ..ship.sinks import build_shippers
    from ..ship.wandb.mode import choose, offline_note

    chosen, why = choose(mode)
    if chosen == "offline" and mode != "offline":
        offline_note(rdir, why, by_sync=True)
    done = []
    with Progress(TextColumn(f"sync {rdir.name}"), BarColumn(), TextColumn("{task.description}"),
                  disable=quiet, transient=False) as bar:
        task = bar.add_task("starting", total=None)

        def progress(rows: int, left: int) -> None:
            bar.update(task, description=f"{rows} rows shipped, {left} bytes left")

        for shipper in build_shippers(rdir, chosen, follow=False, progress=progress):
            outcome = shipper.run()
            done.append((shipper.sink.label, outcome))
            bar.update(task, description=f"{outcome.rows} rows shipped now, "
                                         f"{outcome.total_rows} in all; run {outcome.state}",
                       total=1, completed=1)
    for label, outcome in done:
        if outcome.state == "busy":
            print(f"steadyrun: run {rdir.name} is being shipped by its sidecar right now; "
                  f"nothing to do (run sync again once it has finished)", file=sys.stderr)
        elif not quiet:
            print(f"steadyrun: run {rdir.name}: {outcome.rows} new rows shipped to {label} "
                  f"{chosen} ({outcome.total_rows} in all), state {outcome.state}",
                  file=sys.stderr)
    return 0
