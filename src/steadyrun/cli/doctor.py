"""`steadyrun doctor PATH... [--json] [--fail-on warn|error]` (logic in doctor/)."""

from __future__ import annotations

from typing import Any


def register(sub: Any) -> None:  # a placeholder until the doctor work lands (issue 16)
    sub.add_parser("doctor", help="(not built yet)")
