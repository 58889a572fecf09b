"""Decide online or offline for W&B, without ever letting the network block training.

`auto` is online only when an API key is configured and the server answers a quick
probe; otherwise W&B offline files, with one line saying how to upload later. The probe
runs in the sidecar, never in the training process.
"""

from __future__ import annotations

import netrc
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ...store.layout import sync_command

DEFAULT_BASE_URL = "https://api.wandb.ai"
PROBE_TIMEOUT = 3.0


def base_url() -> str:
    return os.environ.get("WANDB_BASE_URL") or DEFAULT_BASE_URL


def api_key_configured() -> bool:
    """WANDB_API_KEY, or a netrc entry for the W&B host (what `wandb login` writes)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = urllib.parse.urlparse(base_url()).hostname or ""
    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def server_answers(timeout: float = PROBE_TIMEOUT) -> tuple[bool, str]:
    """True when the server gives any non-5xx HTTP answer within `timeout` seconds."""
    url = base_url().rstrip("/") + "/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (W&B's own URL)
            return resp.status < 500, f"HTTP {resp.status}"
    except urllib.error.HTTPError as exc:
        return exc.code < 500, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"{type(reason).__name__}: {reason}"


def choose(mode: str) -> tuple[str, str]:
    """(online|offline, why) for a steadyrun mode of auto, online or offline."""
    if mode == "offline":
        return "offline", "offline mode"
    if mode == "auto" and not api_key_configured():
        return "offline", "no W&B API key is configured"
    ok, why = server_answers()
    if ok:
        return "online", why
    return "offline", f"W&B server {base_url()} does not answer ({why})"


def offline_note(rdir: Path, why: str, stream=None, *, by_sync: bool = False) -> None:
    """Say where the run went and what uploads it. To `steadyrun sync` itself, "run sync"
    is no answer: without a key it says how to configure one."""
    command = sync_command(rdir)
    if by_sync and not api_key_configured():
        print(f"steadyrun: W&B offline files for run {rdir.name} ({why}). To upload them, "
              f"give W&B a key (set WANDB_API_KEY, or run `wandb login`), then run "
              f"`{command}` again.", file=stream or sys.stderr)
        return
    print(f"steadyrun: W&B offline files for run {rdir.name} ({why}); upload later with: "
          f"{command}", file=stream or sys.stderr)
