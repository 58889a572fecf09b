"""The user's file and line, for warnings: the first frame outside steadyrun itself, and
outside the frameworks whose code calls steadyrun for the user (`skip_frames_of`)."""

from __future__ import annotations

import os
import sys

# The package root (this file is in steadyrun/log/): every frame below it is ours.
_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_SKIP: tuple[str, ...] = (_PKG_DIR,)


def skip_frames_of(*packages: object) -> None:
    """Skip these packages' frames too (their folders). The framework adapters
    (integrations/) call it: under Accelerate, Lightning or a Trainer, a step regression
    is made by the user's `accelerator.log(...)` or `trainer.fit(...)` line, not by the
    framework's own file in site-packages, which is where the warning would point."""
    global _SKIP
    for package in packages:
        path = getattr(package, "__file__", None)
        if path:
            folder = os.path.dirname(os.path.abspath(path)) + os.sep
            if folder not in _SKIP:
                _SKIP = (*_SKIP, folder)


def user_site() -> str:
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_SKIP):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    return f"{frame.f_code.co_filename}:{frame.f_lineno}"


def user_stacklevel() -> int:
    """The `stacklevel` for warnings.warn that points at the user's line."""
    frame = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_code.co_filename.startswith(_SKIP):
        frame = frame.f_back
        level += 1
    return level
