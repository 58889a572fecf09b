"""Secrets never leave the machine: redaction for config values, URLs and command lines.

Applied before anything is written, so the local log, W&B's files and the server all
see the same redacted text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

REDACTED = "***REDACTED***"

_SECRET_KEY = re.compile(
    r"(api[_-]?key|apikey|(^|[_\-.])key$|token|secret|passw(or)?d|passwd|credential|auth"
    r"|private[_-]?key|access[_-]?key|session[_-]?id|cookie|bearer|signature|^pwd$)",
    re.IGNORECASE,
)
# Keys that match the pattern but are known to be harmless configuration.
_NOT_SECRET = re.compile(r"^(author|authors|tokenizer.*|max_tokens|num_tokens|.*_tokens|"
                         r"token_(len|length|count|id|ids|dim)|key_(dim|size)|keys)$",
                         re.IGNORECASE)
_URL_CREDS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<creds>[^/@\s:]+(:[^/@\s]*)?)@")
_ARG_SECRET = re.compile(
    r"^(?P<flag>--?[A-Za-z0-9_\-.]*(key|token|secret|passw(or)?d|passwd|credential|auth)"
    r"[A-Za-z0-9_\-.]*)(?P<eq>=)(?P<value>.+)$",
    re.IGNORECASE,
)
_INLINE_SECRET = re.compile(r"\b(local-[0-9a-f]{20,}|[0-9a-f]{40}|ghp_[A-Za-z0-9]{20,}"
                            r"|hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_\-]{20,}|AKIA[0-9A-Z]{16})\b")


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not _NOT_SECRET.match(key)


def redact_text(text: str) -> str:
    """Strip credentials from URLs and well-known token shapes inside free text."""
    text = _URL_CREDS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    return _INLINE_SECRET.sub(REDACTED, text)


def redact_value(key: str, value: Any) -> Any:
    if is_secret_key(key) and value not in (None, "", False):
        return REDACTED
    return redact_tree(value)


def redact_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list):
        return [redact_tree(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_argv(argv: Sequence[str]) -> list[str]:
    """`--token=abc` and `--token abc` both lose their value; URLs lose credentials."""
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append(REDACTED)
            hide_next = False
            continue
        m = _ARG_SECRET.match(arg)
        if m:
            out.append(f"{m.group('flag')}={REDACTED}")
            continue
        if arg.startswith("-") and "=" not in arg and is_secret_key(arg.lstrip("-")):
            out.append(arg)
            hide_next = True
            continue
        out.append(redact_text(arg))
    return out
