"""Reproducibility metadata, recorded once at start into the config key `steadyrun`.

Why: seed 004 rebuilt this by hand (git state, seeds, SLURM job, versions), and the
W&B equivalent (`wandb-metadata.json`) captures the raw command line and environment,
which is how API keys leak. steadyrun records what a rerun needs, with every string
passed through `redact`: the remote URL loses its credentials, the command line its
`--token` values, the diff of a dirty tree its assigned secrets.

Cost: `init` pays only for reading a few attributes. git runs as subprocesses in a
background thread; `flush()` and `finish()` wait for it (bounded). torch is never
imported here: its CUDA and cuDNN versions and GPU names are read only when the program
already imported torch (and GPU names only when it already initialised CUDA), so the
metadata never slows the start or initialises a device; otherwise package versions come
from the installed distributions' metadata, and GPU names from nvidia-ml-py or
`nvidia-smi` when present.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..store.layout import FILES
from ..store.redact import redact_argv, redact_text
from .port import RunPort

KEY = "steadyrun"
GIT_TIMEOUT = 10.0
DIFF_LIMIT = 10 << 20  # bytes of diff kept; the rest is cut with a note
_SLURM = {"job_id": "SLURM_JOB_ID", "job_name": "SLURM_JOB_NAME",
          "nodelist": ("SLURM_JOB_NODELIST", "SLURM_NODELIST"),
          "partition": ("SLURM_JOB_PARTITION", "SLURM_PARTITION"),
          "array_job_id": "SLURM_ARRAY_JOB_ID", "array_task_id": "SLURM_ARRAY_TASK_ID",
          "num_nodes": "SLURM_JOB_NUM_NODES", "ntasks": "SLURM_NTASKS"}
# The seeds of the last `set_seeds` of this process: runs started later record them too.
_last_seeds: dict[str, Any] | None = None


# ---------------------------------------------------------------------- collection
# subprocess, platform, shutil, tempfile and importlib.metadata are imported where they
# are used, in the background thread: at module level they cost init ~20 ms (issue 6).
def _git(args: list[str], cwd: str | None) -> str | None:
    import subprocess

    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        proc = subprocess.run(["git", "-c", "core.quotepath=off", *args], cwd=cwd, env=env,
                              capture_output=True, timeout=GIT_TIMEOUT, check=False,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.decode("utf-8", "replace")


def git_short(cwd: str | None = None) -> str | None:
    """The current commit of the repository holding `cwd`, 7 characters; None outside one."""
    out = _git(["rev-parse", "--short=7", "HEAD"], cwd)
    return out.strip() if out else None


def git_info(cwd: str | os.PathLike[str] | None = None,
             skip: Sequence[os.PathLike[str] | str] = ()) -> tuple[dict[str, Any], str]:
    """(git metadata, diff text) of the repository holding `cwd`; ({}, "") outside one.
    Untracked files under `skip` (the run logs, W&B's folders) are not code."""
    where = None if cwd is None else str(cwd)
    head = _git(["rev-parse", "--show-toplevel", "HEAD", "--abbrev-ref", "HEAD"], where)
    if head is None:
        top = _git(["rev-parse", "--show-toplevel"], where)
        if top is None:
            return {}, ""
        branch = (_git(["symbolic-ref", "--short", "HEAD"], where) or "").strip()
        info: dict[str, Any] = {"root": top.strip(), "commit": None, "branch": branch or None}
    else:
        lines = head.split("\n")
        info = {"root": lines[0], "commit": lines[1], "short": lines[1][:7],
                "branch": lines[2] if lines[2] != "HEAD" else None}
    status = _git(["status", "--porcelain=v1"], where) or ""
    entries = [ln for ln in status.split("\n") if ln]
    changed = [ln for ln in entries if not ln.startswith("??")]
    info["dirty"] = bool(changed)
    info["changed_files"] = len(changed)
    info["untracked_files"] = len(entries) - len(changed)
    remotes = _git(["config", "--get-regexp", r"^remote\..*\.url$"], where) or ""
    urls = {}
    for line in remotes.split("\n"):
        name, _, url = line.partition(" ")
        if url:
            urls[name[len("remote."):-len(".url")]] = url
    if urls:
        name = "origin" if "origin" in urls else next(iter(urls))
        info["remote"] = redact_text(urls[name])
        info["remote_name"] = name
    diff = ""
    if changed and info.get("commit"):
        diff = _git(["diff", "HEAD", "--no-color", "--no-ext-diff"], where) or ""
    if len(entries) > len(changed):
        # New files git does not track yet (often the very script being run) belong to
        # the code state too (seed 003's "code saved with each run").
        diff += _untracked_patch(info["root"], skip)
    return info, diff


UNTRACKED_FILE_LIMIT = 256 << 10  # bytes: larger untracked files are data, not code


# Untracked files that hold credentials by their very name are never copied.
SECRET_FILES = (".env", ".env.*", "*.env", "*.pem", "*.key", "*.p12", "*.pfx", "id_rsa*",
                "id_dsa*", "id_ecdsa*", "id_ed25519*", ".netrc", "_netrc", ".pypirc",
                ".git-credentials", "*.kdbx", "credentials", "credentials.*",
                "*_credentials.*", "*-credentials.*", "secrets.*", "*.secret",
                "*secret*.json", "*secret*.yaml", "*secret*.yml", "*secret*.toml",
                "service-account*.json", "token.json", "*.token")


def _untracked_patch(root: str, skip: Sequence[os.PathLike[str] | str] = ()) -> str:
    """Untracked text files (not ignored, up to 256 KiB each) as a new-file patch."""
    import fnmatch

    listed = _git(["ls-files", "--others", "--exclude-standard", "-z"], root) or ""
    skipped = [Path(p).resolve() for p in skip]
    parts: list[str] = []
    total = 0
    for rel in sorted(p for p in listed.split("\0") if p):
        name = rel.rsplit("/", 1)[-1].lower()
        if "\n" in rel or any(fnmatch.fnmatch(name, pat) for pat in SECRET_FILES):
            continue
        path = Path(root) / rel
        try:
            if not path.is_file() or path.is_symlink() \
                    or path.stat().st_size > UNTRACKED_FILE_LIMIT \
                    or any(path.resolve().is_relative_to(d) for d in skipped):
                continue
            data = path.read_bytes()
        except OSError:
            continue
        if b"\0" in data:  # binary
            continue
        lines = data.decode("utf-8", "replace").split("\n")
        if lines[-1] == "":
            lines.pop()
        hunk = f"@@ -0,0 +1,{len(lines)} @@\n" if lines else ""
        parts.append(f"diff --git a/{rel} b/{rel}\nnew file mode 100644\n--- /dev/null\n"
                     f"+++ b/{rel}\n{hunk}" + "".join(f"+{ln}\n" for ln in lines))
        total += len(data)
        if total > DIFF_LIMIT:
            break
    return "".join(parts)


_PACKAGES = ("torch", "deepspeed", "wandb", "steadyrun", "numpy", "transformers",
             "accelerate", "lightning")


def _versions(installed: bool) -> dict[str, Any]:
    """Versions of imported packages; with `installed`, of installed ones too (slower:
    a search of the distributions' metadata, so it runs in the background thread)."""
    out: dict[str, Any] = {"python": ".".join(map(str, sys.version_info[:3]))}
    for name in _PACKAGES:
        mod = sys.modules.get(name)
        version = getattr(mod, "__version__", None) if mod is not None else None
        if version is None and installed:
            from importlib import metadata as _dist

            try:
                version = _dist.version(name)
            except _dist.PackageNotFoundError:
                continue
        if version is not None:
            out[name] = str(version)
    return out


def _torch_info() -> dict[str, Any]:
    """CUDA/cuDNN versions and GPU names from an already imported, initialised torch."""
    torch = sys.modules.get("torch")
    out: dict[str, Any] = {}
    if torch is None or not hasattr(torch, "version"):
        return out
    try:
        out["cuda"] = torch.version.cuda
        cudnn = getattr(torch.backends, "cudnn", None)
        if cudnn is not None and cudnn.is_available():
            out["cudnn"] = cudnn.version()
        if torch.cuda.is_initialized():
            out["gpus"] = [torch.cuda.get_device_name(i)
                           for i in range(torch.cuda.device_count())]
    except Exception:  # a half-imported or unusual torch: versions are best effort
        pass
    return out


def _gpu_names() -> list[str]:
    """GPU names without creating a CUDA context: nvidia-ml-py, else nvidia-smi."""
    try:
        import pynvml

        pynvml.nvmlInit()
        names = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            name = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(i))
            names.append(name.decode() if isinstance(name, bytes) else str(name))
        return names
    except Exception:
        pass
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        proc = subprocess.run([smi, "--query-gpu=name", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    return [ln.strip() for ln in proc.stdout.splitlines() if ln.strip()] \
        if proc.returncode == 0 else []


def _fast_part() -> dict[str, Any]:
    """What is read at once, on the caller's thread: host, command line, launcher, and
    the versions of what is imported (torch's CUDA/cuDNN/GPUs read here, never in a
    thread that could race the program's own `import torch`)."""
    from ..store.layout import hostname
    from .distributed import rank_info

    meta: dict[str, Any] = {
        "host": hostname(),
        "pid": os.getpid(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "command": redact_argv(sys.argv),
        "python_executable": sys.executable,
        "cwd": os.getcwd(),
        "world_size": rank_info()[1],
    }
    slurm = {}
    for field, names in _SLURM.items():
        for name in (names,) if isinstance(names, str) else names:
            if os.environ.get(name):
                slurm[field] = os.environ[name]
                break
    if slurm:
        meta["slurm"] = slurm
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        meta["cuda_visible_devices"] = os.environ["CUDA_VISIBLE_DEVICES"]
    versions = _versions(installed=False)
    torch_part = _torch_info()
    gpus = torch_part.pop("gpus", None)
    versions.update({k: v for k, v in torch_part.items() if v is not None})
    meta["versions"] = versions
    if gpus:
        meta["gpus"] = gpus
    if _last_seeds:
        meta["seeds"] = dict(_last_seeds)
    return meta


def get_metadata(cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Everything `init` records under the config key `steadyrun`, collected now.

    git metadata is that of the repository holding `cwd` (default: the working
    directory). The diff of a dirty tree is not included here; a run saves it as the
    file `git_diff.patch` and names it in `git.diff_file`.
    """
    meta = _fast_part()
    _slow_part(meta)
    git, _ = git_info(cwd)
    if git:
        meta["git"] = git
    if "gpus" not in meta:
        names = _gpu_names()
        if names:
            meta["gpus"] = names
    return meta


def _slow_part(meta: dict[str, Any]) -> None:
    """Platform string and installed versions: a few ms of file reads, off the caller."""
    import platform

    meta["platform"] = platform.platform()
    meta["versions"] = {**_versions(installed=True), **meta.get("versions", {})}


# ---------------------------------------------------------------------- the run's copy
class Collector:
    """Collects a run's metadata in a background thread and records it once.

    `set_seeds` after `init` lands here too (`note_seeds`): the seeds join the record, or
    the record is written again with them, so the config always holds one whole copy.
    """

    def __init__(self, run: RunPort, cwd: str | None = None) -> None:
        self.run = run
        self.cwd = cwd
        self.meta = _fast_part()
        self._lock = threading.Lock()
        self._done = False
        self.thread = threading.Thread(target=self._collect, name="steadyrun-metadata",
                                       daemon=True)
        self.thread.start()

    def _collect(self) -> None:
        try:
            _slow_part(self.meta)
            runs = self.run.dir.parent  # <root>/runs: the run logs are not code
            git, diff = git_info(self.cwd, skip=[runs, os.environ.get("WANDB_DIR") or runs])
            if git:
                if diff:
                    git["diff_file"] = self._save_diff(diff)
                self.meta["git"] = git
            if "gpus" not in self.meta:
                names = _gpu_names()
                if names:
                    self.meta["gpus"] = names
        except Exception as exc:  # metadata is best effort; the run goes on without it
            self.meta["error"] = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._done = True
            self._record()

    def _save_diff(self, diff: str) -> str | None:
        data = redact_text(diff)
        if len(data) > DIFF_LIMIT:
            data = data[:DIFF_LIMIT] + f"\n[steadyrun: diff cut at {DIFF_LIMIT} bytes]\n"
        import tempfile

        with tempfile.TemporaryDirectory(prefix="steadyrun-diff-") as tmp:
            path = Path(tmp) / "git_diff.patch"
            path.write_text(data, encoding="utf-8")
            saved = self.run.save(path)
        return f"{FILES}/{path.name}" if saved is not None else None

    def _record(self) -> None:
        if not self.run.finished():
            self.run.config.update({KEY: self.meta})

    def note_seeds(self, seeds: dict[str, Any]) -> None:
        with self._lock:
            self.meta["seeds"] = dict(seeds)
            if self._done:
                self._record()

    def wait(self, timeout: float = 15.0) -> None:
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout)


def start(run: RunPort) -> Collector:
    return Collector(run)


def note_seeds(seeds: dict[str, Any]) -> None:
    """`set_seeds` was called: keep the seeds for runs started later, and hand them to
    every open run of this process (into its metadata, or its config without one)."""
    global _last_seeds
    _last_seeds = dict(seeds)
    from . import live_runs

    for run in list(live_runs.active):
        run.note_seeds(seeds)
