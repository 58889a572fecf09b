"""A run's tags: what `init(tags=...)` accepts, and the check of `required_tags`.

Shared by `init` and `init_from_args` (which adds the preset's and the flags' tags), so
both read a mapping as `key:value` tags (seed 004's `{"model": "eo1"}`) the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def tags_of(tags: Sequence[str] | Mapping[str, Any] | None) -> list[str]:
    """A list of tags from a list, one string, or a mapping of `key:value` tags."""
    if tags is None:
        return []
    if isinstance(tags, Mapping):
        return [f"{k}:{v}" for k, v in tags.items()]
    if isinstance(tags, str):
        return [tags]
    return [str(t) for t in tags]


def check_required_tags(tags: Sequence[str], required: Sequence[str] | None) -> None:
    """ValueError naming each required tag missing; `model` is met by `model` or `model:x`."""
    if not required:
        return
    have = set(tags) | {t.split(":", 1)[0] for t in tags}
    missing = [r for r in required if r not in have]
    if missing:
        raise ValueError(f"steadyrun.init: missing required tag{'s' if len(missing) > 1 else ''}"
                         f" {', '.join(repr(m) for m in missing)} (tags given: "
                         f"{', '.join(tags) or 'none'}); pass e.g. tags={{{missing[0]!r}: ...}}")
