"""Turn whatever a user passes as config into plain nested JSON, and the run's mappings.

Accepts dicts, dataclasses, argparse Namespaces, OmegaConf configs and pydantic models,
keeping nesting. Unserialisable leaves and cycles are bad input: skipped (or raised in
strict mode) by the caller through `on_reject`, never allowed to crash training.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from ..store.redact import redact_value

_SCALARS = (str, int, float, bool, type(None))


def to_plain(obj: Any) -> Any:
    """Unwrap the structured config types into dicts, without importing their libraries."""
    tname = type(obj).__module__ or ""
    if tname.startswith("omegaconf"):  # before Mapping: DictConfig is one, but shallow
        from omegaconf import OmegaConf

        return OmegaConf.to_container(obj, resolve=True)
    if isinstance(obj, Mapping):
        return dict(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if hasattr(obj, "model_dump") and callable(obj.model_dump):  # pydantic v2
        return obj.model_dump(mode="json")
    if hasattr(obj, "dict") and tname.startswith("pydantic"):  # pydantic v1
        return obj.dict()
    if type(obj).__name__ == "Namespace" and hasattr(obj, "__dict__"):
        return dict(vars(obj))
    return obj


def clean_config(data: Any, on_reject: Callable[[str, Any, str], None]) -> dict[str, Any]:
    """Nested, JSON-ready, redacted. `on_reject(key, value, reason)` hears each bad leaf."""
    top = to_plain(data)
    if not isinstance(top, dict):
        on_reject("<config>", data, f"config must be a mapping or structured object, got "
                                     f"{type(data).__name__}")
        return {}
    # The source object, not its copy: a cycle back to the top is caught at its own key.
    out = _clean_mapping(top, "", on_reject, set(), source=data)
    return {} if out is _SKIP else out


def _clean_mapping(d: dict[Any, Any], prefix: str, on_reject, active: set[int],
                   source: Any = None) -> Any:
    # `d` may be a fresh copy (to_plain copies mappings): a cycle is seen on the source.
    ident = id(d if source is None else source)
    if ident in active:
        on_reject(prefix or "<config>", d, "the config contains a cycle")
        return _SKIP  # the entry that closes the cycle is skipped, not kept as {}
    active.add(ident)
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = k if isinstance(k, str) else str(k)
        path = f"{prefix}.{key}" if prefix else key
        cleaned = _clean_value(v, path, on_reject, active)
        if cleaned is not _SKIP:
            out[key] = redact_value(key, cleaned)
    active.discard(ident)
    return out


class _Skip:
    pass


_SKIP = _Skip()


def _clean_value(v: Any, path: str, on_reject, active: set[int]) -> Any:
    if isinstance(v, _SCALARS):
        if isinstance(v, float) and not math.isfinite(v):
            return str(v)  # config is metadata, not a chart: keep it readable
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) >= 2**63:
            return str(v)
        return v
    plain = to_plain(v)
    if isinstance(plain, dict):
        return _clean_mapping(plain, path, on_reject, active, source=v)
    if isinstance(plain, (list, tuple, set, frozenset)):  # an OmegaConf ListConfig too
        if id(v) in active:
            on_reject(path, v, "the config contains a cycle")
            return _SKIP
        active.add(id(v))
        items = [_clean_value(x, f"{path}[{i}]", on_reject, active)
                 for i, x in enumerate(plain)]
        active.discard(id(v))
        return [x for x in items if x is not _SKIP]
    tmod = type(v).__module__ or ""
    if tmod.startswith(("numpy", "torch")) and getattr(v, "ndim", None) == 0:
        return v.item()
    if tmod == "pathlib" or type(v).__name__.endswith("Path"):
        return str(v)
    if isinstance(v, type) or callable(v):
        return f"{getattr(v, '__module__', '?')}.{getattr(v, '__qualname__', repr(v))}"
    on_reject(path, v, f"{type(v).__name__} is not serialisable")
    return _SKIP


class RunMapping(MutableMapping[str, Any]):
    """A dict-like view whose writes become records: `run.config` and `run.summary`."""

    def __init__(self, on_update: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        self._data: dict[str, Any] = {}
        self._on_update = on_update

    def update(self, other: Any = None, /, **kwargs: Any) -> None:  # type: ignore[override]
        data = to_plain(other) if other is not None else {}
        if not isinstance(data, Mapping):
            try:
                data = dict(data)  # key-value pairs, as dict.update takes them
            except (TypeError, ValueError):
                self._on_update(data)  # bad input: the run rejects it, never a crash
                return
        merged = {**data, **kwargs}
        if merged:
            # The caller's own mapping when there is nothing to merge: a cycle back to it
            # is then caught at the key that closes it.
            same = not kwargs and type(other) is dict
            accepted = self._on_update(other if same else merged)
            self._data.update(accepted)

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __delitem__(self, key: str) -> None:
        raise TypeError("steadyrun keeps every value it was given; entries cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._data!r})"

    # wandb's config and summary are read and set as attributes too (`wandb.config.lr`),
    # and scripts written for wandb do so (import steadyrun as wandb).
    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return self._data[key]
        except KeyError:
            raise AttributeError(f"no key {key!r} here (keys: {', '.join(self._data)})") \
                from None

    def __setattr__(self, key: str, value: Any) -> None:
        if key.startswith("_"):
            object.__setattr__(self, key, value)
        else:
            self.update({key: value})

    def as_dict(self) -> dict[str, Any]:
        return dict(self._data)
