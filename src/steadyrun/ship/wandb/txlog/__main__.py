"""`python -m steadyrun.ship.wandb.txlog PATH`: print what W&B recorded, as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - typing only
    pass

from .decode import load


def main(argv: list[str] | None = None) -> int:
    """Print a JSON overview of a run's transaction log; exit 1 if none found."""
    parser = argparse.ArgumentParser(
        prog="python -m steadyrun.ship.wandb.txlog",
        description="Summarize a W&B transaction log (run-<id>.wandb) as JSON.",
    )
    parser.add_argument("path", help="a .wandb file, a run folder, or a W&B dir")
    parser.add_argument("--run-id", default=None, help="pick one run when a dir holds several")
    parser.add_argument("--history", action="store_true", help="include all history rows")
    parser.add_argument("--no-crc", action="store_true", help="skip checksum verification")
    args = parser.parse_args(argv)
    try:
        log = load(args.path, args.run_id, verify_crc=not args.no_crc)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    json.dump(log.as_dict(history=args.history), sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())


if __name__ == "__main__":
    raise SystemExit(main())
