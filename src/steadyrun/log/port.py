"""What a Run's collaborators may do with it: one narrow, named interface.

Checkpoints, the metadata collector and the step logger each work on behalf of one
Run. They get a `RunPort`, built by the Run, instead of the Run itself: the port names
exactly what they use, so none of them depends on the Run's fields, and the Run can
change its insides without touching them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunPort:
    id: str
    dir: Path
    config: Any  # the Run's config mapping: `update` records a config change
    save: Callable[..., Path | None]  # Run.save: a copy under files/, recorded
    record: Callable[[dict[str, Any]], None]  # one record into this process's segment
    # The bad-input rule (key, value, reason, error type): strict runs raise, others warn
    # once per key and record a `rejected` event.
    reject: Callable[..., None]
    current_step: Callable[[], int]  # where an artifact sits on the run's axis
    finished: Callable[[], bool]
    wait_metadata: Callable[[], None]  # the owner's metadata is recorded when it returns
