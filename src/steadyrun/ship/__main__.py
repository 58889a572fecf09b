"""`python -m steadyrun.ship`: the sidecar's own entry point, two roles.

    follow RUN_DIR --mode M --owner-pid P   the supervisor the owner's `init` starts
    worker RUN_DIR online|offline [--follow] [--owner-pid P]   one shipping process

The training process starts the supervisor directly (not through the `steadyrun`
command), and the supervisor starts its workers the same way: the path goes down the
layers, never up through the command line.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .sidecar import lower_priority, ship, supervise


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m steadyrun.ship")
    sub = p.add_subparsers(dest="role", required=True)
    f = sub.add_parser("follow", help="supervise the shipping of a run until it ends")
    f.add_argument("rdir")
    f.add_argument("--mode", default="auto", choices=["auto", "online", "offline"])
    f.add_argument("--owner-pid", type=int, default=None)
    w = sub.add_parser("worker", help="ship a run in one mode (started by the supervisor)")
    w.add_argument("rdir")
    w.add_argument("mode", choices=["online", "offline"])
    w.add_argument("--follow", action="store_true")
    w.add_argument("--owner-pid", type=int, default=None)
    a = p.parse_args(argv)
    rdir = Path(a.rdir)
    if a.role == "follow":
        lower_priority()
        return supervise(rdir, a.mode, a.owner_pid, follow=True)
    try:
        ship(rdir, a.mode, follow=a.follow, owner_pid=a.owner_pid)
    except Exception as exc:
        print(f"steadyrun sidecar ({a.mode}): {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
