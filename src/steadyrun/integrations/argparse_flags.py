"""Command-line flags, experiment presets and run names for training scripts (seed 003).

Why: every team re-wrote the same `--wandb_project/--wandb_name/--wandb_tags/--no_wandb
/--experiment` flags and a dict of named experiments, each slightly differently. Here
they are one call: `add_argparse_args(parser)` adds the flags, `init_from_args(args)`
turns them into `steadyrun.init`. Presets live in a TOML or YAML file, checked field by
field, so a typo in an experiment name or a field fails at start with a message that
names the file, the preset and the field, not after an hour of training.

Precedence, lowest first: the keyword arguments given to `init_from_args` (the script's
defaults), then the preset, then the flags given on the command line.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import difflib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

FLAGS = {  # dest: (help, extra argparse keywords)
    "wandb_project": ("W&B project of the run", {}),
    "wandb_name": ("name of the run", {}),
    "wandb_tags": ("tags, comma- or space-separated (key:value allowed)",
                   {"nargs": "+", "action": "tags"}),
    "wandb_notes": ("notes: what this run tries", {}),
    "wandb_group": ("group of the run (e.g. a sweep or an ablation)", {}),
    "no_wandb": ("no W&B: record the run locally only (steadyrun mode 'local')",
                 {"action": "store_true"}),
    "experiment": ("name of an experiment preset (see --experiment in the presets file)", {}),
}
PRESET_FIELDS = {"project": str, "entity": str, "group": str, "job_type": str, "notes": str,
                 "tags": (list, dict), "config": dict}


class _TagsAction(argparse.Action):
    """`--wandb_tags a,b c` and repeated flags all give one flat list: [a, b, c]."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        tags = list(getattr(namespace, self.dest, None) or [])
        for value in values:
            tags.extend(t.strip() for t in str(value).split(",") if t.strip())
        setattr(namespace, self.dest, tags)


class PresetError(ValueError):
    """An experiment preset that is unknown or malformed; the message says where."""


def add_argparse_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the tracking flags (each also spelled with dashes); flags already defined stay."""
    group = parser.add_argument_group("experiment tracking (steadyrun)")
    taken = set(getattr(parser, "_option_string_actions", {}))
    for dest, (text, extra) in FLAGS.items():
        names = [f"--{dest}"] + ([f"--{dest.replace('_', '-')}"] if "_" in dest else [])
        names = [n for n in names if n not in taken]
        if not names:
            continue
        kwargs: dict[str, Any] = {"dest": dest, "help": text, **extra}
        if extra.get("action") == "tags":
            kwargs.update(action=_TagsAction, metavar="TAG")
        group.add_argument(*names, **kwargs)
    return parser


# ---------------------------------------------------------------------- presets
def load_presets(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """Read a presets file (.toml, .yaml or .yml) or take a mapping; check every preset."""
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
            elif suffix in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text) or {}
            else:
                raise PresetError(f"steadyrun: presets file {where} must end in .toml, .yaml "
                                  f"or .yml")
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


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


# ---------------------------------------------------------------------- init
def init_from_args(args: argparse.Namespace | Mapping[str, Any], config: Any = None,
                   presets: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                   **init_kwargs: Any) -> Any:
    """`steadyrun.init` from parsed flags, an optional preset and the script's defaults.

    `config` defaults to the parsed arguments themselves (without the tracking flags);
    a preset's `config` table is merged into it, nested tables key by key. Tags add up:
    the script's, then the preset's, then `--wandb_tags`. `--no_wandb` means mode
    'local': the run is still recorded on disk, only W&B is left out.
    """
    from ..api import _tags, init
    from ..log.config_input import to_plain

    ns = dict(vars(args)) if isinstance(args, argparse.Namespace) else dict(args)
    kwargs = dict(init_kwargs)
    preset: dict[str, Any] = {}
    experiment = ns.get("experiment")
    if experiment:
        preset = get_preset(presets, str(experiment))
    if config is None:
        config = {k: v for k, v in ns.items() if k not in FLAGS}
    merged = to_plain(config)
    if preset.get("config"):
        if not isinstance(merged, Mapping):
            raise PresetError("steadyrun: a preset's config overrides need a mapping config")
        merged = _merge(dict(merged), preset["config"])
    for field in ("project", "entity", "group", "job_type", "notes"):
        if preset.get(field) is not None:
            kwargs[field] = preset[field]
    for dest, field in (("wandb_project", "project"), ("wandb_name", "name"),
                        ("wandb_notes", "notes"), ("wandb_group", "group")):
        if ns.get(dest):
            kwargs[field] = ns[dest]
    tags = _tags(kwargs.pop("tags", None)) + _tags(preset.get("tags")) + \
        [str(t) for t in ns.get("wandb_tags") or []]
    if tags:
        kwargs["tags"] = list(dict.fromkeys(tags))
    if ns.get("no_wandb"):
        kwargs["mode"] = "local"
    return init(config=merged, **kwargs)


# ---------------------------------------------------------------------- names
def _part(text: Any) -> str:
    return re.sub(r"[\s/\\]+", "-", str(text)).strip("-") or "x"


def run_name(model: str, objective: str, dataset: str, *, when: _dt.datetime | None = None,
             git_short: str | None = None) -> str:
    """`{model}_{objective}_{dataset}_{YYYYMMDD}_{HHMMSS}_{git_short}` (seed 004).

    The git part is the working directory's commit (7 characters), or `nogit`.
    """
    if git_short is None:
        from ..log.metadata import _git

        out = _git(["rev-parse", "--short=7", "HEAD"], None)
        git_short = out.strip() if out else "nogit"
    stamp = (when or _dt.datetime.now()).strftime("%Y%m%d_%H%M%S")
    return f"{_part(model)}_{_part(objective)}_{_part(dataset)}_{stamp}_{_part(git_short)}"


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
