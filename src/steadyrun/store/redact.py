"""Secrets never leave the machine: redaction for config values, URLs and command lines.

Applied before anything is written, so the local log, W&B's files and the server all
see the same redacted text. Every free-text value a run stores (config and summary
strings, table cells, notes, names and tags, alert texts, captions, file names, saved
code) goes through one rule, `redact_text`; lists of strings that look like a command
line (`"args": sys.argv`) go through `redact_argv`; mappings are redacted by key name
too (`redact_value`).
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
# A name begins a word (the lookbehind): without it every letter of a long word was a
# start that ran to the word's end, quadratic (1.8 ms for a line of 200 letters, which a
# console captured at 10,000 lines/s cannot afford).
_ASSIGNED = re.compile(
    r"""(?<![A-Za-z0-9_])(?P<name>[A-Za-z_][A-Za-z0-9_.\-]*)(?P<q0>["']?)(?P<op>\s*[:=]\s*)"""
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
# Short flags carry no name to go by: `-p` is the password of mysql, sshpass and many
# more, and any one-letter flag may be handed a token. A value after a short flag is
# redacted when it looks like a secret: after `-p`, anything but a number (a port);
# after another letter, a long mix of letters and digits.
_SHORT_SECRET_FLAGS = frozenset("p")
_TOKEN_LIKE = re.compile(r"^(?=.*[A-Za-z])(?=.*\d)[A-Za-z0-9_\-+/=.:]{16,}$")
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


def _short_flag_secret(flag: str, value: str) -> bool:
    """Whether `-<flag> <value>` hands over a secret (see _SHORT_SECRET_FLAGS)."""
    if value.startswith(("/", "./", "~")) or value.lstrip("-").replace(".", "", 1).isdigit():
        return False
    return flag in _SHORT_SECRET_FLAGS or bool(_TOKEN_LIKE.match(value))


def _credentials(text: str) -> str:
    """URL credentials, well-known token shapes and the values of secret env variables."""
    text = _URL_CREDS.sub(lambda m: f"{m.group('scheme')}{REDACTED}@", text)
    text = _INLINE_SECRET.sub(REDACTED, text)
    env = _env_secret_pattern()
    return env.sub(REDACTED, text) if env is not None else text


def redact_text(text: str) -> str:
    """The one rule for free text: credentials in URLs, well-known token shapes, values of
    secret environment variables, `--token value` and `-p value` flags, values assigned
    to credential-like names (`api_key = "..."`, `password: x`), PEM private keys and
    netrc passwords.

    Only literal values are replaced (quoted strings, or bare words after `=`), so
    `token = tokenizer(x)` keeps its meaning and a commit id is not taken for a key.
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
    def flag(m: re.Match[str]) -> str:
        name, value = m.group("flag"), m.group("value")
        short = m.group("dashes") == "-" and len(name) == 1
        if not (is_secret_key(name) or (short and _short_flag_secret(name, value))):
            return m.group(0)
        return f"{m.group('dashes')}{name}{m.group('sep')}{REDACTED}"

    text = _FLAG_IN_TEXT.sub(flag, text)
    return _credentials(text)


# Saved code and free text follow the same rule; the old name stays for callers of it.
redact_code = redact_text


def redact_value(key: str, value: Any) -> Any:
    if is_secret_key(key) and value not in (None, "", False):
        return REDACTED
    return redact_tree(value)


def redact_tree(value: Any) -> Any:
    """Every string of a JSON-like value; a list of strings with a flag in it is taken as
    a command line (`"args": sys.argv`), where `--token X` hides the X that follows."""
    if isinstance(value, dict):
        return {k: redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, str) for v in value) \
                and any(v.startswith("-") for v in value):
            return redact_argv(value)
        return [redact_tree(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_argv(argv: Sequence[str]) -> list[str]:
    """`--token=abc` and `--token abc` both lose their value; URLs lose credentials."""
    out: list[str] = []
    hide_next = False
    for i, arg in enumerate(argv):
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
        if len(arg) == 2 and arg[0] == "-" and arg[1].isalpha() and i + 1 < len(argv) \
                and _short_flag_secret(arg[1], argv[i + 1]):
            out.append(arg)
            hide_next = True
            continue
        out.append(redact_text(arg))
    return out
