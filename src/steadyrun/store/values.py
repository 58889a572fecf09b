"""What counts as a metric value or key, decided without importing numpy or torch.

The hot path in `Run.log` checks `type(v) is float/int` inline; everything else comes
here. numpy and torch scalars are recognised by their type's module name so that
`import steadyrun` stays free of both libraries.
"""

from __future__ import annotations

import math
import sys
from typing import Any

INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1


class SteadyrunWarning(UserWarning):
    """Warnings about the user's input; filter on this class to silence or escalate them."""


class Rejected(Exception):
    """A value or key that cannot be logged; `exc_type` says which builtin error to raise."""

    def __init__(self, key: Any, reason: str, exc_type: type[Exception] = TypeError) -> None:
        super().__init__(f"steadyrun: cannot log {key!r}: {reason}")
        self.key = key
        self.reason = reason
        self.exc_type = exc_type


def nonfinite_tag(x: float) -> str:
    """JSON has no NaN or inf; the record keeps them by name beside a null."""
    if x != x:
        return "nan"
    return "inf" if x > 0 else "-inf"


def plain(value: Any) -> Any:
    """A value JSON can carry: a non-finite float by name ("NaN", "inf", "-inf", as a
    summary is shown), anything else as it is. Digests, rules and the dashboard use it."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if value != value else ("inf" if value > 0 else "-inf")
    return value


def restore_nonfinite(tag: str) -> float:
    return {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[tag]


def restore_values(rec: dict[str, Any]) -> dict[str, Any]:
    """A row's or summary's values with each non-finite value back in place of its null.

    The record itself is left as it was (a copy is made only when there is one to put
    back), so the reader and the sinks can share records."""
    values = rec["v"]
    nf = rec.get("nf")
    if nf:
        values = dict(values)
        for k, tag in nf.items():
            values[k] = restore_nonfinite(tag)
    return values


def check_key(key: Any) -> str:
    if type(key) is not str:
        raise Rejected(key, f"keys must be str, got {type(key).__name__}")
    if not key or not key.strip("/"):
        raise Rejected(key, "the key is empty", ValueError)
    if key.startswith("_"):
        raise Rejected(key, "keys starting with '_' are reserved by W&B", ValueError)
    if any(part == "" for part in key.split("/")):
        raise Rejected(key, "the key has an empty path segment ('//' or a trailing '/')", ValueError)
    if any(ord(c) < 32 or c == "\x7f" for c in key):
        raise Rejected(key, "the key contains control characters", ValueError)
    if len(key) > 512:
        raise Rejected(key, f"the key is {len(key)} characters long (at most 512)", ValueError)
    return key


def to_number(key: str, value: Any) -> int | float | bool:
    """Coerce a scalar to a Python number, or raise Rejected naming key and type.

    What reaches here is read at once: CPU tensors (`.item()` costs a microsecond, nothing
    waits on them) and step metrics. A tensor on a device never does: `Run.log` holds it
    (log/deferred.py) and `log_training_step` keeps it, and both read a whole interval's
    tensors with one host transfer.
    """
    tv = type(value)
    if tv is float or tv is bool:
        return value
    if tv is int or isinstance(value, int):
        value = int(value)
        if value < INT64_MIN or value > UINT64_MAX:
            raise Rejected(key, "the integer does not fit in 64 bits", ValueError)
        return value
    if isinstance(value, float):
        return float(value)
    module = tv.__module__ or ""
    if module == "numpy" or module.startswith("numpy."):
        if getattr(value, "ndim", None) == 0 and getattr(value, "dtype", None) is not None:
            kind = value.dtype.kind
            if kind in "iub":
                return to_number(key, value.item())
            if kind == "f":
                return float(value)
        raise Rejected(key, f"numpy value of type {tv.__name__} with shape "
                            f"{getattr(value, 'shape', '?')} is not a scalar")
    torch = sys.modules.get("torch")
    if module.startswith("torch") or (torch is not None and isinstance(value, torch.Tensor)):
        if getattr(value, "ndim", None) == 0 or getattr(value, "numel", lambda: 0)() == 1:
            item = value.item()  # one element, any shape; no autograd involved
            return to_number(key, item)
        raise Rejected(key, f"tensor of shape {tuple(value.shape)} is not a scalar")
    raise Rejected(key, f"values must be numbers, got {tv.__name__}")
