"""Fixtures of the fault suite (issue 7): the scorecard recorder and the shared helpers.

`wandb_helpers` and `fault_helpers` are imported by plain name: tests/ and tests/faults/
are put on sys.path here, so the suite runs the same under `pytest tests`, `pytest
tests/faults` and `pytest -n 2`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).resolve().parent
for _path in (_HERE.parent, _HERE):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from fault_helpers import record_figures  # noqa: E402


@pytest.fixture
def scorecard(request: pytest.FixtureRequest) -> Callable[..., None]:
    """`scorecard(case, **figures)`: one measured row of docs/reliability.md.

    Written only when STEADYRUN_SCORECARD names a file (tests/faults/make_scorecard.py
    sets it); a plain `make test` records nothing.
    """

    def record(case: str, **figures: Any) -> None:
        record_figures(case, request.node.nodeid, figures)

    return record
