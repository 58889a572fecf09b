"""Secrets never leave the machine: redaction for config values, URLs and command lines.

Applied before anything is written, so the local log, W&B's files and the server all
see the same redacted text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

REDACTED = "***REDACTED***"

_SECRET_KEY = re.compile(
    r"(api[_-]?key|apikey|(^|[_\-.])key$|token|secret|passw(or)?d|passwd|credential|auth"
    r"|private[_-]?key|access[_-]?key|session[_-]?id|cookie|bearer|signature|^pwd$"
    r"|passphrase|connection[_-]?string|(^|[_\-.])dsn$)",
    re.IGNORECASE,
)
# Keys that match the pattern but are known to be harmless configuration.
_NOT_SECRET = re.compile(r"^(author|authors|tokenizer.*|.*[_-]tokens|"
                         r"token[_-](len|length|count|id|ids|dim)|key[_-](dim|size)|keys)$",
                         re.IGNORECASE)
_URL_CREDS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.\-]*://)(?P<creds>[^/@\s:]+(:[^/@\s]*)?)@")
_ARG_SECRET = re.compile(
    r"^(?P<flag>--?[A-Za-z0-9_\-.]*(key|token|secret|passw(or)?d|passwd|credential|auth)"
    r"[A-Za-z0-9_\-.]*)(?P<eq>=)(?P<value>.+)$",
    re.IGNORECASE,
)
_INLINE_SECRET = re.compile(r"\b(local-[0-9a-f]{20,}|ghp_[A-Za-z0-9]{20,}"
                            r"|hf_[A-Za-z0-9]{20,}|sk-[A-Za-z0-9_\-]{20,}|AKIA[0-9A-Z]{16})\b")


# `name = "value"`, `name: 'value'` and `export NAME=value` in code, configs and env files.
_ASSIGNED = re.compile(
    r"""(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<q0>["']?)(?P<op>\s*[:=]\s*)"""
    r"""(?:(?P<q>["'])(?P<quoted>[^"'\n]+)(?P=q)|(?P<bare>[^\s"'`,;)(\]\[{}]+))""")
# A private key pasted into a file, and netrc's `password X` (no `=` or `:` to go by).
_PEM = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?-----END [A-Z0-9 ]*PRIVATE KEY-----",
                  re.DOTALL)
# netrc: `password X` alone on a line (a diff's +/- prefix allowed), or after
# `machine`/`login` on the same line; prose like "password is required" is left alone.
_NETRC = re.compile(r"(?m)(?P<kw>^[+\- ]?[ \t]*(?:password|passwd))(?P<sp>[ \t]+)"
                    r"(?P<val>[^\s=:]\S*)(?=[ \t]*$)|"
                    r"(?P<kw2>\b(?:machine|login)\b[^\n]*?\b(?:password|passwd))(?P<sp2>[ \t]+)"
                    r"(?P<val2>[^\s=:]\S*)")
# `--token value` / `--token=value` quoted inside free text (an alert, a pasted command).
_FLAG_IN_TEXT = re.compile(r"(?<![\w-])(?P<dashes>--?)(?P<flag>[A-Za-z][A-Za-z0-9_.\-]*)"
                           r"(?P<sep>=|[ \t]+)(?P<value>[^\s\-][^\s]*)")
# Values of environment variables named like credentials (WANDB_API_KEY, HF_TOKEN, ...):
# whatever text they turn up in, they are replaced. Short values are left alone.
_ENV_MIN_LEN = 8
_env_cache: tuple[frozenset[tuple[str, str]], re.Pattern[str] | None] = (frozenset(), None)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not _NOT_SECRET.match(key)


def _env_secret_pattern() -> re.Pattern[str] | None:
    """One alternation of the secret-named environment values, rebuilt when they change."""
    global _env_cache
    items = frozenset((k, v) for k, v in os.environ.items()
                      if len(v) >= _ENV_MIN_LEN and not v.startswith("/") and is_secret_key(k))
    if items != _env_cache[0]:
        values = sorted({v for _, v in items}, key=len, reverse=True)
        pattern = re.compile("|".join(map(re.escape, values))) if values else None
        _env_cache = (items, pattern)
    return _env_cache[1]


def redact_text(text: str) -> str:
    """Strip credentials from URLs, well-known token shapes and secret env values."""
    text = _URL_CREDS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _INLINE_SECRET.sub(REDACTED, text)
    env = _env_secret_pattern()
    return env.sub(REDACTED, text) if env is not None else text


def redact_code(text: str) -> str:
    """`redact_text`, plus values assigned to credential-like names in source and configs.

    Used on the git diff of a dirty tree: an edited `.env` or `api_key = "..."` line must
    not reach the run's files. Only literal values are replaced (quoted strings, or bare
    words after `=`), so `token = tokenizer(x)` keeps its meaning.
    """

    def assigned(m: re.Match[str]) -> str:
        if not is_secret_key(m.group("name")):
            return m.group(0)
        if m.group("quoted") is not None:
            if m.group("quoted").startswith(("$", "{", "<")):  # a reference, not a value
                return m.group(0)
            return (f"{m.group('name')}{m.group('q0')}{m.group('op')}{m.group('q')}"
                    f"{REDACTED}{m.group('q')}")
        bare = m.group("bare")
        if bare.startswith(("$", "{", "<")) or not any(c.isalnum() for c in bare) or \
                "(" in m.string[m.end():m.end() + 1]:
            return m.group(0)
        return f"{m.group('name')}{m.group('q0')}{m.group('op')}{REDACTED}"

    text = _PEM.sub(REDACTED, text)
    text = _NETRC.sub(lambda m: f"{m.group('kw') or m.group('kw2')}"
                              f"{m.group('sp') or m.group('sp2')}{REDACTED}", text)
    text = _ASSIGNED.sub(assigned, text)
    text = _FLAG_IN_TEXT.sub(lambda m: m.group(0) if not is_secret_key(m.group("flag")) else
                             f"{m.group('dashes')}{m.group('flag')}{m.group('sep')}{REDACTED}",
                             text)
    return redact_text(text)


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
