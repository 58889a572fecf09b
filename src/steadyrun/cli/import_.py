"""`steadyrun import WANDB_RUN_FOLDER... [--dir D] [--partial]`: W&B runs (offline or
synced folders) as steadyrun runs, so `show`, `ui`, `report`, `compare`, `leaderboard`
and `check` work on them. The logic is in importer/. The module is `import_` because
`import` is a Python keyword.

Prints one line per W&B run: what was imported (run id, rows, where) or "unchanged".
Exit 0 when every folder was imported or unchanged; 2 when one cannot be (not a W&B run
folder, an empty or truncated log, an id taken by a run that was not imported): one
line on stderr naming the folder and why, never a traceback. Nothing is written for a
folder that fails, and the W&B folders are only ever read.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_CANNOT = 0, 2


def register(sub: Any) -> None:
    c = sub.add_parser("import", help="turn W&B run folders into steadyrun runs",
                       description="Import W&B run folders (offline-run-... or run-..., "
                       "the wandb/ folder holding them, or a run-<id>.wandb file) as "
                       "steadyrun runs under the root. Importing again changes nothing "
                       "unless the W&B run changed. Imported runs are local: never "
                       "shipped back to W&B.")
    c.add_argument("folders", nargs="+", metavar="WANDB_RUN_FOLDER",
                   help="W&B run folders; pieces of one run id (a resumed run) named "
                   "together become one run")
    c.add_argument("--partial", action="store_true",
                   help="import what can be read of a truncated or damaged log (a run "
                   "killed mid-write) instead of refusing it")
    c.set_defaults(func=cmd_import)


def cmd_import(args: argparse.Namespace) -> int:
    from ..importer import BadSource, import_runs
    from ..store.layout import runs_dir

    try:
        outcomes = import_runs(args.folders, args.dir, partial=args.partial)
    except (BadSource, ValueError, FileNotFoundError) as exc:  # TornLog is a ValueError
        return _cannot(str(exc))
    except ImportError as exc:
        return _cannot(f"reading W&B logs needs wandb ({exc}); pip install wandb")
    except Exception as exc:  # noqa: BLE001 - unreadable data: one line, never a traceback
        return _cannot(f"{type(exc).__name__}: {exc}")
    runs = runs_dir(args.dir)
    for o in outcomes:
        where = o.rdir if o.rdir.parent != runs else f"{runs}/{o.run_id}"
        if o.status == "unchanged":
            print(f"W&B run {o.wandb_id}: unchanged (run {o.run_id}, {where})")
            continue
        c = o.counts
        media = ", ".join(f"{n} {what}" for n, what in (
            (c.images, "images"), (c.tables, "tables"), (c.histograms, "histograms"),
            (c.files, "files"), (c.events, "other values")) if n)
        again = " again (the W&B run changed)" if o.status == "reimported" else ""
        torn = f"; {c.torn} damaged records skipped (--partial)" if c.torn else ""
        print(f"W&B run {o.wandb_id}: imported{again} as run {o.run_id}: {c.wandb_rows} W&B "
              f"rows -> {c.rows} rows{', ' + media if media else ''}{torn}; {where} "
              f"({c.seconds:.1f} s)")
    return EXIT_OK


def _cannot(message: str) -> int:
    text = " ".join(message.split())  # one line
    print(f"steadyrun import: cannot import: {text}", file=sys.stderr)
    return EXIT_CANNOT
