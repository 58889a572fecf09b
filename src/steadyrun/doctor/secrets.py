"""Where a run holds a credential: the config, the summary, the command line, saved text.

The rules are steadyrun's own redaction rules (store/redact.py): whatever steadyrun would
have redacted before writing is reported here. A location is reported, never the value:
the report itself may be pasted into an issue or a CI log.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..store.redact import REDACTED, is_secret_key, redact_argv, redact_text

_TEXT_MAX = 1 << 20  # saved files larger than this are not read (a model, a dataset)
_SKIP_FILES = {"wandb-metadata.json", "wandb-summary.json", "config.yaml",
               "requirements.txt", "conda-environment.yaml", "diff.patch"}


def _is_reference(value: str) -> bool:
    """`$HF_TOKEN`, `${oc.env:KEY}`, `<your key>`: a pointer to a secret, not one."""
    return value.startswith(("$", "{", "<")) or value == REDACTED


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        if value and all(isinstance(v, str) for v in value) \
                and any(v.startswith("-") for v in value):
            yield path, list(value)  # a command line: judged as one (--token X)
        else:
            for i, v in enumerate(value):
                yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path, value


def in_mapping(values: Mapping[str, Any]) -> list[str]:
    """Paths (`a.b`, `args[2]`) whose value is a credential: a non-empty string under a
    credential-like name, or text that holds a token, URL credentials or a flag's secret."""
    found: list[str] = []
    for path, value in _leaves(values, ""):
        leaf = path.rsplit(".", 1)[-1].split("[", 1)[0]
        if isinstance(value, list):
            found += [f"{path}[{i}]" for i in in_argv(value)]
        elif isinstance(value, str) and value and not _is_reference(value):
            if is_secret_key(leaf) or redact_text(value) != value:
                found.append(path)
    return found


def in_argv(argv: list[str]) -> list[int]:
    """Indexes of the arguments that hold a secret (`--api_key X`: X's index)."""
    redacted = redact_argv(argv)
    return [i for i, (a, b) in enumerate(zip(argv, redacted, strict=False)) if a != b]


def in_text(text: str) -> list[int]:
    """Line numbers (1-based) of the lines that hold a secret."""
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if REDACTED in line:
            line = line.replace(REDACTED, "")
        if line.strip() and redact_text(line) != line:
            out.append(n)
    return out


def in_files(folder: Path, base: Path) -> list[str]:
    """`file:line` of each secret in the text files saved under `folder` (wandb.save, the
    code snapshot, output.log), paths relative to `base`."""
    found: list[str] = []
    if not folder.is_dir():
        return found
    for path in sorted(folder.rglob("*")):
        if path.name in _SKIP_FILES or not path.is_file():  # wandb.save links: followed
            continue
        try:
            if path.stat().st_size > _TEXT_MAX:
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if b"\x00" in data[:8192]:
            continue  # binary
        rel = path.relative_to(base)
        found += [f"{rel}:{n}" for n in in_text(data.decode("utf-8", "replace"))]
    return found
