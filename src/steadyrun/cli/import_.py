"""`steadyrun import WANDB_RUN_FOLDER... [--dir D]` (logic in importer/). The module is
`import_` because `import` is a Python keyword."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:  # a placeholder until the import work lands (issue 16)
    sub.add_parser("import", help="(not built yet)")
