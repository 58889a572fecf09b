"""The `steadyrun` command: its grammar, and the errors every command reports the same
way. Each command lives in its own module (runs, show, sync, demo) and registers its
arguments here; argparse for the grammar, rich for tables and progress, both imported
only by the command that needs them.
"""

from __future__ import annotations

import argparse
import sys

from . import (
    check,
    compare,
    demo,
    doctor,
    import_,
    leaderboard,
    logs,
    report,
    runs,
    show,
    sync,
    ui,
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="steadyrun", description="The `steadyrun` command: "
                                "demo, runs, show, logs, sync, ui, report, compare, "
                                "leaderboard, check, doctor, import.")
    p.add_argument("--dir", default=None, help="root folder (default: $STEADYRUN_DIR or ./steadyrun)")
    sub = p.add_subparsers(dest="command", required=True)
    for command in (demo, runs, show, logs, sync, ui, report, compare, leaderboard, check,
                    doctor, import_):
        command.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from ..store.manifest import ManifestError

    try:
        return int(args.func(args) or 0)
    except ManifestError as exc:
        print(f"steadyrun: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
