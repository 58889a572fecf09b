"""The process's console (file descriptors 1 and 2) teed into the run: issue 17.

Why: a crashed SLURM job's traceback, its warnings and its prints are what people open
its page for (seed 004), and the run held none of them. Capture is at the descriptor
level, so output from C extensions, `warnings`, `logging`, tqdm and child processes
that inherit the descriptors is included:

- each of fd 1 and fd 2 is pointed at a pipe (`dup2`); the original descriptor is kept;
- one reader thread drains both pipes: it writes every byte on to the original
  descriptor first (the terminal sees what it always saw, unchanged: a tee, not a
  theft), then cuts the bytes into lines and appends them to
  `console/<writer>.jsonl` (`{"t", "s": "out"|"err", "l"}`), redacted like every
  text a run stores;
- a line rewritten with carriage returns (tqdm) keeps only its final state, as W&B's
  `console="wrap"` does;
- the training thread pays nothing per `print` beyond the write it always made (to the
  pipe instead of the terminal): no lock, no extra syscall.

What it cannot do: bytes still in the pipe when the process is SIGKILLed are lost (to
the terminal too); a line still without its newline at `stop` is written as it is;
stdout and stderr are two pipes, so between the two the order is that of arrival at
the reader (lines written in the same instant keep stdout's before stderr's), as in
W&B's own capture. A
process keeps one capture, for its first run (a second `init` in the process shares
it); a forked child writes into its parent's pipe, so its lines are its parent's.
Off with `init(console="off")` or `STEADYRUN_CONSOLE=off`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import sys
import threading
import time
from pathlib import Path

import orjson

from ..store.layout import console_path
from ..store.redact import redact_text

_STREAMS = ((1, "out"), (2, "err"))
_PARTIAL_MAX = 1 << 20
_PIPE_BYTES = 1 << 20
_GATHER_S = 0.02
_active: Capture | None = None
_lock = threading.Lock()


def enabled(console: str | None) -> bool:
    """`init(console=...)` first, else STEADYRUN_CONSOLE; on unless "off"."""
    value = console if console is not None else os.environ.get("STEADYRUN_CONSOLE", "on")
    return str(value).strip().lower() not in ("off", "0", "false", "no")


def start(rdir: Path, writer: str) -> Capture | None:
    """This process's capture into the run at `rdir`, or None (one already runs here,
    or the descriptors cannot be captured)."""
    global _active
    with _lock:
        if _active is not None or _inherited():
            return None
        cap = Capture(console_path(rdir, writer))
        if not cap.start():
            return None
        _active = cap
        return cap


_ENV = "STEADYRUN_CONSOLE_PIPES"  # the capturing process's pipes, for its children


def _inherited() -> bool:
    """fd 1 is a pipe of a capturing parent (a child started with `run.child_env()`
    writes into it): the parent already records these lines, so this process does not
    capture them a second time."""
    pipes = os.environ.get(_ENV, "").split(",")
    try:
        st = os.fstat(1)
    except OSError:
        return False
    return f"{st.st_dev}:{st.st_ino}" in pipes


def forget_after_fork() -> None:
    """A forked child has no reader thread: its output goes into the parent's pipe."""
    global _active
    _active = None


class Capture:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._pipes: list[tuple[int, int, int, str]] = []  # fd, saved copy, read end, stream
        self._partial: dict[str, bytes] = {}
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._out = -1

    def start(self) -> bool:
        try:
            path = self.path
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._out = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            for fd, _ in _STREAMS:
                os.fstat(fd)  # closed descriptors (a daemon): nothing to capture
            _flush_python()
            for fd, stream in _STREAMS:
                saved = os.dup(fd)
                r, w = os.pipe()
                with contextlib.suppress(AttributeError, OSError):  # Linux only
                    fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
                os.dup2(w, fd)
                os.close(w)
                os.set_inheritable(saved, False)
                os.set_inheritable(r, False)
                self._pipes.append((fd, saved, r, stream))
            ids = []
            for fd, _ in _STREAMS:
                st = os.fstat(fd)
                ids.append(f"{st.st_dev}:{st.st_ino}")
            os.environ[_ENV] = ",".join(ids)
        except OSError:
            self._restore()
            return False
        self._thread = threading.Thread(target=self._pump, name="steadyrun-console",
                                        daemon=True)
        self._thread.start()
        return True

    def stop(self, timeout: float = 30.0) -> None:
        """Put fd 1 and 2 back, write what the pipes still hold, end the thread."""
        global _active
        _flush_python()
        for fd, saved, _, _ in self._pipes:
            with contextlib.suppress(OSError):
                os.dup2(saved, fd)
        os.environ.pop(_ENV, None)
        self._stopping.set()
        with _lock:
            if _active is self:
                _active = None
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                # Never close descriptors the reader still uses: a number closed here is
                # soon another file's (a segment's), which it would then write into.
                print("steadyrun: the console reader is still writing after "
                      f"{timeout:.0f} s; its last lines may be missing from the run",
                      file=sys.stderr)
                return
        self._restore()

    def _restore(self) -> None:
        for _, saved, r, _ in self._pipes:
            for d in (saved, r):
                with contextlib.suppress(OSError):
                    os.close(d)
        self._pipes = []
        if self._out >= 0:
            with contextlib.suppress(OSError):
                os.close(self._out)
            self._out = -1

    # ------------------------------------------------------------------ reader thread
    def _pump(self) -> None:
        sel = selectors.DefaultSelector()
        for _, saved, r, stream in self._pipes:
            sel.register(r, selectors.EVENT_READ, (saved, stream))
        try:
            while True:
                events = sel.select(0.05 if self._stopping.is_set() else 0.5)
                if not events and self._stopping.is_set():
                    break  # drained: children may still hold the pipe, no EOF to wait for
                for key, _ in events:
                    saved, stream = key.data
                    try:
                        data = os.read(key.fd, 65536)
                    except OSError:
                        data = b""
                    if not data:
                        sel.unregister(key.fd)
                        continue
                    _write_all(saved, data)
                    self._take(stream, data)
                if not sel.get_map():
                    break
                # Let lines gather (the pipe holds them; 1 MiB where Linux allows): one
                # wake-up and one redaction per 20 ms, not per print, so the training
                # thread finds the GIL free far more often.
                self._stopping.wait(_GATHER_S)
        finally:
            sel.close()
            for stream, rest in self._partial.items():
                if rest:
                    self._emit([(stream, rest)])
            self._partial = {}

    def _take(self, stream: str, data: bytes) -> None:
        buf = self._partial.get(stream, b"") + data
        *lines, rest = buf.split(b"\n")
        # A line still being rewritten (a progress bar): keep its latest state only (not
        # past a final \r, which may be the start of \r\n), and never more than 1 MiB.
        cut = rest.rfind(b"\r", 0, len(rest) - 1)
        if cut >= 0:
            rest = rest[cut + 1:]
        if len(rest) > _PARTIAL_MAX:
            lines.append(rest)
            rest = b""
        self._partial[stream] = rest
        if lines:
            self._emit([(stream, line) for line in lines])

    def _emit(self, lines: list[tuple[str, bytes]]) -> None:
        t = time.time()
        out = []
        by_stream: dict[str, list[bytes]] = {}
        for stream, raw in lines:
            if raw.endswith(b"\r"):
                raw = raw[:-1]  # a \r\n line end
            if b"\r" in raw:  # a line rewritten in place (tqdm): its final state
                raw = raw.rsplit(b"\r", 1)[1]
            by_stream.setdefault(stream, []).append(raw)
        for stream, raws in by_stream.items():
            # One redaction over the chunk's lines (a call costs about 60 us whatever its
            # length; per line, 10,000 lines/s would hold the GIL most of each second).
            # A secret spread over lines (a PEM key) is caught too, and becomes one line.
            text = redact_text(b"\n".join(raws).decode("utf-8", errors="replace"))
            out.extend(orjson.dumps({"t": t, "s": stream, "l": line}) + b"\n"
                       for line in text.split("\n"))
        if self._out >= 0:
            with contextlib.suppress(OSError):
                _write_all(self._out, b"".join(out))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            n = os.write(fd, view)
        except InterruptedError:
            continue
        except OSError:
            return  # the terminal went away: the run still keeps the lines
        view = view[n:]


def _flush_python() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            if stream is not None:
                stream.flush()
