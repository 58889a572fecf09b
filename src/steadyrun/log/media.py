"""Images to PNG files under the run's media/ folder, decided by input type.

numpy, Pillow and matplotlib are imported only when an image of that kind arrives.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any


def safe_name(key: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", key).strip("_") or "media"


def write_png(image: Any, dest: Path) -> None:
    """Accepts a path to an image file, a PIL image, a numpy array or a matplotlib figure."""
    if isinstance(image, (str, os.PathLike)):
        src = Path(image)
        if not src.is_file():
            raise FileNotFoundError(f"image file {src} does not exist")
        if src.suffix.lower() == ".png":
            shutil.copyfile(src, dest)
            return
        from PIL import Image

        with Image.open(src) as im:
            im.save(dest, format="PNG")
        return
    mod = type(image).__module__ or ""
    if mod.startswith("matplotlib") and hasattr(image, "savefig"):
        image.savefig(dest, format="png")
        return
    if mod.startswith("PIL"):
        image.save(dest, format="PNG")
        return
    if mod.startswith("torch"):
        image = image.detach().cpu().numpy()
        mod = "numpy"
    if mod.startswith("numpy"):
        _array_to_png(image, dest)
        return
    raise TypeError(f"cannot make an image from {type(image).__name__}: pass a numpy array, "
                    "a PIL image, a matplotlib figure or a path")


def _array_to_png(arr: Any, dest: Path) -> None:
    import numpy as np
    from PIL import Image

    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[0] in (1, 3, 4) and a.shape[-1] not in (1, 3, 4):
        a = np.transpose(a, (1, 2, 0))  # CHW, as torch produces, to HWC
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3):
        raise ValueError(f"an image array must be HxW, HxWxC or CxHxW, got shape {a.shape}")
    if a.dtype != np.uint8:
        a = a.astype(np.float64)
        lo, hi = np.nanmin(a), np.nanmax(a)
        if lo >= 0.0 and hi <= 1.0:
            a = a * 255.0
        elif hi > lo and (lo < 0.0 or hi > 255.0):
            a = (a - lo) / (hi - lo) * 255.0
        a = np.nan_to_num(a).clip(0, 255).astype(np.uint8)
    Image.fromarray(a).save(dest, format="PNG")
