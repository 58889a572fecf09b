"""Command-line flags and run names for training scripts (seeds 003 and 004).

Why: every team re-wrote the same `--wandb_project/--wandb_name/--wandb_tags/--no_wandb
/--experiment` flags and a dict of named experiments, each slightly differently. Here
they are one call: `add_argparse_args(parser)` adds the flags, `init_from_args(args)`
turns them into `steadyrun.init`, with the named preset of a presets file (presets.py).

Precedence, lowest first: the parser's defaults and the keyword arguments given to
`init_from_args` (the script's defaults), then the preset, then the flags given on the
command line. A parser that went through `add_argparse_args` remembers which flags each
`parse_args` saw on the command line, so `--mlm_weight 0.9 --experiment ablation` records
0.9 even when the preset says 0.3.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import re
import sys
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from .presets import PresetError, get_preset, merge_config

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


class _TagsAction(argparse.Action):
    """`--wandb_tags a,b c` and repeated flags all give one flat list: [a, b, c]."""

    def __call__(self, parser: Any, namespace: Any, values: Any, option: Any = None) -> None:
        tags = list(getattr(namespace, self.dest, None) or [])
        for value in values:
            tags.extend(t.strip() for t in str(value).split(",") if t.strip())
        setattr(namespace, self.dest, tags)


# id(namespace) -> the dests of its parse that were given on the command line.
_GIVEN: dict[int, frozenset[str]] = {}


def given_on_command_line(parser: argparse.ArgumentParser, argv: Sequence[str]
                          ) -> frozenset[str]:
    """The dests of the optional arguments that appear in `argv`: spelled out, as
    `--flag=value`, as an unambiguous prefix (argparse's abbreviations) or as a short
    option with its value attached (`-p5`). Positional arguments count as given."""
    given = {a.dest for a in parser._actions if not a.option_strings}
    options = {opt: a.dest for a in parser._actions for opt in a.option_strings}
    for token in argv:
        if token == "--":
            break
        if not token.startswith("-") or token == "-":
            continue
        name = token.split("=", 1)[0]
        if name in options:
            given.add(options[name])
        elif name.startswith("--"):
            dests = {dest for opt, dest in options.items() if opt.startswith(name)}
            if len(dests) == 1 and parser.allow_abbrev:
                given |= dests
        else:  # -p5 or -abc: short options with a value or grouped
            for i in range(2, len(token) + 1):
                if token[:i] in options:
                    given.add(options[token[:i]])
                    break
    return frozenset(given)


def _remember_given(parser: argparse.ArgumentParser) -> None:
    """Wrap this parser's parse_known_args (which parse_args calls) to remember, per
    namespace, which flags were on the command line: argparse itself forgets it."""
    if getattr(parser, "_steadyrun_given", False):
        return
    original = parser.parse_known_args

    def parse_known_args(args: Sequence[str] | None = None, namespace: Any = None) -> Any:
        ns, extras = original(args, namespace)
        argv = list(sys.argv[1:] if args is None else args)
        _GIVEN[id(ns)] = given_on_command_line(parser, argv)
        weakref.finalize(ns, _GIVEN.pop, id(ns), None)
        return ns, extras

    parser.parse_known_args = parse_known_args  # type: ignore[method-assign]
    parser._steadyrun_given = True  # type: ignore[attr-defined]


def add_argparse_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the tracking flags (each also spelled with dashes); flags already defined stay."""
    _remember_given(parser)
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


# ---------------------------------------------------------------------- init
def init_from_args(args: argparse.Namespace | Mapping[str, Any], config: Any = None,
                   presets: str | os.PathLike[str] | Mapping[str, Any] | None = None,
                   **init_kwargs: Any) -> Any:
    """`steadyrun.init` from parsed flags, an optional preset and the script's defaults.

    `config` defaults to the parsed arguments themselves (without the tracking flags);
    a preset's `config` table is merged into it, nested tables key by key, and the flags
    given on the command line are applied again on top (they win over the preset; the
    parser's defaults do not). Tags add up:
    the script's, then the preset's, then `--wandb_tags`. `--no_wandb` means mode
    'local': the run is still recorded on disk, only W&B is left out.
    """
    from ..api import init
    from ..log.config_input import to_plain
    from ..log.tags import tags_of

    ns = dict(vars(args)) if isinstance(args, argparse.Namespace) else dict(args)
    kwargs = dict(init_kwargs)
    preset: dict[str, Any] = {}
    experiment = ns.get("experiment")
    if experiment:
        preset = get_preset(presets, str(experiment))
    from_args = config is None
    if from_args:
        config = {k: v for k, v in ns.items() if k not in FLAGS}
    merged = to_plain(config)
    if preset.get("config"):
        if not isinstance(merged, Mapping):
            raise PresetError("steadyrun: a preset's config overrides need a mapping config")
        merged = merge_config(dict(merged), preset["config"])
        given = _GIVEN.get(id(args)) if from_args else None
        for key in given or ():
            if key in config:
                merged[key] = config[key]  # a flag on the command line beats the preset
    for field in ("project", "entity", "group", "job_type", "notes"):
        if preset.get(field) is not None:
            kwargs[field] = preset[field]
    for dest, field in (("wandb_project", "project"), ("wandb_name", "name"),
                        ("wandb_notes", "notes"), ("wandb_group", "group")):
        if ns.get(dest):
            kwargs[field] = ns[dest]
    tags = tags_of(kwargs.pop("tags", None)) + tags_of(preset.get("tags")) + \
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
        from ..log.metadata import git_short as head_short

        git_short = head_short() or "nogit"
    stamp = (when or _dt.datetime.now()).strftime("%Y%m%d_%H%M%S")
    return f"{_part(model)}_{_part(objective)}_{_part(dataset)}_{stamp}_{_part(git_short)}"
