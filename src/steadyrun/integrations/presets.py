"""Experiment presets: named tables of init arguments and config overrides (seed 003).

Why checked field by field: a dict of named experiments in the training script was the
usual way, and a typo in a name or a field showed up after an hour of training, if at
all. A presets file (TOML, YAML or JSON) is read and checked at start, and every error names
the file, the preset and the field, with the closest known name.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PRESET_FIELDS = {"project": str, "entity": str, "group": str, "job_type": str, "notes": str,
                 "tags": (list, dict), "config": dict}


class PresetError(ValueError):
    """An experiment preset that is unknown or malformed; the message says where."""


def load_presets(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Read a presets file (.toml, .yaml, .yml or .json) or take a mapping; check it all."""
    where = "presets"
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise PresetError(f"steadyrun: presets file {where} does not exist")
        text = path.read_text(encoding="utf-8")
        suffix = path.suffix.lower()
        try:
            if suffix == ".toml":
                try:
                    import tomllib
                except ModuleNotFoundError:  # Python 3.10
                    try:
                        import tomli as tomllib
                    except ModuleNotFoundError as exc:
                        raise PresetError("steadyrun: reading TOML presets on Python 3.10 "
                                          "needs `pip install tomli`") from exc
                data = tomllib.loads(text)
            elif suffix in (".yaml", ".yml", ".json"):  # JSON is YAML (seed 003's configs)
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                raise PresetError(f"steadyrun: presets file {where} must end in .toml, .yaml, "
                                  f".yml or .json")
        except PresetError:
            raise
        except Exception as exc:  # tomllib/yaml parse errors name the line
            raise PresetError(f"steadyrun: cannot parse presets file {where}: {exc}") from exc
    if not isinstance(data, Mapping):
        raise PresetError(f"steadyrun: {where} must hold a table of experiments, got "
                          f"{type(data).__name__}")
    if set(data) == {"experiments"} and isinstance(data["experiments"], Mapping):
        data = data["experiments"]
    return {str(name): _check_preset(where, str(name), preset) for name, preset in data.items()}


def _check_preset(where: str, name: str, preset: Any) -> dict[str, Any]:
    if not isinstance(preset, Mapping):
        raise PresetError(f"steadyrun: experiment {name!r} in {where} must be a table of "
                          f"fields, got {type(preset).__name__}")
    for field, value in preset.items():
        kind = PRESET_FIELDS.get(field)
        if kind is None:
            hint = difflib.get_close_matches(str(field), PRESET_FIELDS, n=1)
            raise PresetError(
                f"steadyrun: experiment {name!r} in {where}: unknown field {field!r}"
                + (f" (did you mean {hint[0]!r}?)" if hint else "")
                + f"; allowed: {', '.join(PRESET_FIELDS)}")
        if not isinstance(value, kind):
            want = kind.__name__ if isinstance(kind, type) else " or ".join(
                k.__name__ for k in kind)
            raise PresetError(f"steadyrun: experiment {name!r} in {where}: field {field!r} "
                              f"must be {want}, got {type(value).__name__} ({value!r})")
        if field == "tags" and isinstance(value, list) and \
                not all(isinstance(t, (str, int, float)) for t in value):
            raise PresetError(f"steadyrun: experiment {name!r} in {where}: tags must be "
                              f"strings")
    return dict(preset)


def get_preset(presets: str | os.PathLike[str] | Mapping[str, Any] | None,
               name: str) -> dict[str, Any]:
    """The preset called `name`; PresetError naming the known ones when there is none."""
    if presets is None:
        presets = os.environ.get("STEADYRUN_PRESETS")
        if not presets:
            raise PresetError(f"steadyrun: --experiment {name!r} needs a presets file: pass "
                              f"presets='experiments.toml' to init_from_args, or set "
                              f"STEADYRUN_PRESETS")
    table = load_presets(presets)
    if name not in table:
        where = "the presets" if isinstance(presets, Mapping) else str(presets)
        hint = difflib.get_close_matches(name, table, n=1)
        raise PresetError(f"steadyrun: unknown experiment {name!r} in {where}"
                          + (f" (did you mean {hint[0]!r}?)" if hint else "")
                          + f"; known: {', '.join(sorted(table)) or 'none'}")
    return table[name]


def merge_config(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """A preset's config overrides on top of the script's config, nested tables key by key."""
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge_config(dict(out[k]), v)
        else:
            out[k] = v
    return out
