"""The bytes of one segment file: where a record lands when the writer takes it.

Either way below, a record is in the kernel's page cache when `put` returns. The page
cache belongs to the kernel, not to the process, so the death of the process (SIGKILL,
the OOM killer, a segfault in a CUDA kernel) loses nothing that `run.log` returned; only
the loss of the machine does, which `flush()` and `finish()` cover with fsync.

- **mmap** (local filesystems: ext4, xfs, btrfs, tmpfs, ...). The file grows by a
  chunk at a time: `posix_fallocate` gives the chunk real blocks (so a full disk is an
  error here, never a SIGBUS on a store later), and a shared mapping of that window
  makes an append one copy into pages that already belong to the file, with no system
  call: about 0.1 to 0.2 µs for a 300-byte row. The file is therefore longer than its
  data while it is written: the rest of the chunk is zeros. JSON never holds a NUL byte,
  so the data ends at the first NUL (`store.segment_reader` cuts there), and `close()`
  truncates the file to its data. A writer killed before `close()` leaves the zeros;
  readers ignore them.
- **write** (NFS, Lustre, GPFS, CIFS, FUSE, any filesystem not known to be local, or
  `STEADYRUN_WRITE_MODE=write`). Shared writable mappings are not safe there (pages
  written back out of order, or never, across clients), so every append is one
  `pwrite` at the data's end: one system call, about 1 to 2 µs. Also the fallback where
  `posix_fallocate` is not supported.

Only the segment's one writer (SegmentWriter, under its lock) calls `put`.
"""

from __future__ import annotations

import errno
import mmap
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..store.segment_reader import data_end_fd

PAGE = mmap.ALLOCATIONGRANULARITY
# A window (allocated and mapped at a time) doubles from FIRST_WINDOW to MAX_WINDOW: a
# short run allocates little, a long one maps once per ~14,000 rows of 300 bytes. A
# writer killed mid-run leaves at most one window (and the one prepared after it) of
# zeros behind.
FIRST_WINDOW = 256 << 10
MAX_WINDOW = 4 << 20
MADV_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23)  # Linux 5.14
# Filesystems whose shared mappings of a file are written back like its writes, on this
# machine only. Anything else (nfs, lustre, gpfs, cifs, fuse.*, 9p, ceph...) gets `write`.
LOCAL_FILESYSTEMS = frozenset((
    "ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "f2fs", "zfs", "overlay", "bcachefs",
    "jfs", "reiserfs", "nilfs2"))
MODE_ENV = "STEADYRUN_WRITE_MODE"
_UNSUPPORTED = {errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL, errno.ENODEV, errno.ENOSYS}


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode("utf-8", "replace")


def filesystem_of(path: Path) -> str | None:
    """The type of the filesystem holding `path` (Linux's /proc/self/mountinfo), or None."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    real = os.path.realpath(path)
    best, fstype = "", None
    for line in lines:
        parts = line.split(" ")
        try:
            mount = _unescape(parts[4])
            kind = parts[parts.index("-", 6) + 1]
        except (IndexError, ValueError):
            continue
        inside = real == mount or real.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best):  # the deepest mount wins; later ones shadow
            best, fstype = mount, kind
    return fstype


def choose_mode(path: Path) -> tuple[str, str]:
    """('mmap' or 'write', why). `STEADYRUN_WRITE_MODE` forces one."""
    forced = os.environ.get(MODE_ENV, "").strip().lower()
    if forced in ("mmap", "write"):
        return forced, f"{MODE_ENV}={forced}"
    if not hasattr(os, "posix_fallocate") or sys.platform != "linux":
        return "write", "no posix_fallocate on this platform"
    fs = filesystem_of(path.parent)
    if fs in LOCAL_FILESYSTEMS:
        return "mmap", f"local filesystem {fs}"
    return "write", f"filesystem {fs or 'unknown'} is not known to be local"


class SegmentFile:
    """Appends to one segment file; `put` returns what it could not write (b"" when all).

    After a refusal (`error` says why) the caller keeps the rest and calls again later.
    In mmap mode a refused record was not written at all; in write mode a refused
    `pwrite` may have taken part of it (the caller's torn-line handling completes it).
    """

    def __init__(self, path: Path, mode: str | None = None) -> None:
        self.path = path
        self.mode, self.why = (mode, "asked") if mode else choose_mode(path)
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        size = os.fstat(self._fd).st_size
        # A new segment is empty; a reopened one continues after its data, not its zeros.
        self.pos = data_end_fd(self._fd, size) if size else 0
        self._allocated = size
        self._mm: mmap.mmap | None = None
        self._base = 0  # file offset of the mapped window
        self._off = 0  # the data's end inside the window
        self._wlen = 0  # the window's length; 0: nothing mapped yet
        self.error: OSError | None = None
        # The window after the current one, made ready by the writer thread.
        self._next: tuple[int, int, mmap.mmap] | None = None
        self.on_switch: Callable[[], None] | None = None  # the hot path moved on a window

    # ------------------------------------------------------------------ appending
    def put(self, data: bytes) -> bytes:
        """The hot path: one copy into the mapped window when the record fits."""
        off = self._off
        end = off + len(data)
        if end <= self._wlen:
            self._mm[off:end] = data  # type: ignore[index]
            self._off = end
            return b""
        return self._put_slow(data)

    def _put_slow(self, data: bytes) -> bytes:
        if self.mode == "mmap":
            if self._next is not None and self._continue(data):
                return b""
            try:
                self._map_for(len(data))
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED:
                    self.error = exc
                    return data  # nothing written: the writer keeps the record
                self._to_write_mode()
            else:
                self.error = None
                return self.put(data)  # the new window has room for it
        return self._pwrite(data)

    def _continue(self, data: bytes) -> bool:
        """Go on into the window the writer thread prepared, which starts where the
        current one ends: the record may begin in one and end in the other."""
        start, size, mm = self._next  # type: ignore[misc]
        head = self._wlen - self._off if self._wlen else 0
        if start != self._base + self._wlen or len(data) - head > size:
            return False
        if head > 0:
            self._mm[self._off:] = data[:head]  # type: ignore[index]
        mm[:len(data) - head] = data[head:]
        old, self._mm, self._next = self._mm, mm, None
        self._base, self._off, self._wlen = start, len(data) - head, size
        if old is not None:
            old.close()
        self.error = None
        if self.on_switch is not None:
            self.on_switch()
        return True

    # ------------------------------------------------------------------ windows ahead
    def next_window(self) -> tuple[int, int] | None:
        """(start, size) of the window to prepare next, or None: one is ready already,
        nothing is mapped yet, or the file is not mapped at all. Under the writer's lock."""
        if self.mode != "mmap" or self._next is not None or not self._wlen:
            return None
        return self._base + self._wlen, min(self._wlen * 2, MAX_WINDOW)

    def build_window(self, start: int, size: int) -> mmap.mmap | None:
        """Off the lock, on the writer thread: blocks allocated, pages mapped and faulted
        in for writing, so that the training thread never takes a page fault (3 to 8 µs
        a page here, against ~1.5 µs a page for one MADV_POPULATE_WRITE over a window)."""
        try:
            os.posix_fallocate(self._fd, start, size)
            mm = mmap.mmap(self._fd, size, offset=start)
        except (OSError, ValueError):
            return None  # the hot path maps for itself, and says why if it cannot
        _populate(mm)
        return mm

    def offer(self, start: int, size: int, mm: mmap.mmap) -> None:
        """Under the writer's lock: use a window `build_window` made, if still wanted."""
        if self._next is None and self.mode == "mmap" and start == self._base + self._wlen:
            self._next = (start, size, mm)
            self._allocated = max(self._allocated, start + size)
        else:
            mm.close()

    def _pwrite(self, data: bytes) -> bytes:
        view = memoryview(data)
        try:
            while view:
                n = os.pwrite(self._fd, view, self.pos)
                view = view[n:]
                self.pos += n
        except OSError as exc:
            self.error = exc
            return bytes(view)
        self.error = None
        return b""

    def _map_for(self, need: int) -> None:
        """Map a window from the data's page with room for `need` more bytes.

        Blocks come first (posix_fallocate: ENOSPC or EFBIG here, never a SIGBUS on a
        store later). A whole chunk when the disk has it, else just the pages needed, so
        a nearly full disk still takes the last records of a run.
        """
        pos = self._base + self._off if self._wlen else self.pos
        start = pos - pos % PAGE
        want = pos - start + need
        grow = min(self._wlen * 2, MAX_WINDOW) if self._wlen else FIRST_WINDOW
        sizes = [max(grow, -(-want // PAGE) * PAGE), -(-want // PAGE) * PAGE]
        for i, size in enumerate(sizes):
            try:
                if start + size > self._allocated:
                    os.posix_fallocate(self._fd, self._allocated, start + size - self._allocated)
                    self._allocated = start + size
                break
            except OSError as exc:
                if i == len(sizes) - 1 or exc.errno not in (errno.ENOSPC, errno.EFBIG,
                                                            errno.EDQUOT):
                    raise
        mm = mmap.mmap(self._fd, size, offset=start)
        _populate(mm)
        old, self._mm = self._mm, mm
        self._base, self._off, self._wlen = start, pos - start, size
        self.pos = pos
        if old is not None:
            old.close()  # its pages stay in the page cache, dirty, until written back
        if self._next is not None:  # made for a window this one replaced
            self._next[2].close()
            self._next = None
        if self.on_switch is not None:
            self.on_switch()

    def _to_write_mode(self) -> None:
        pos = self.data_end
        self._unmap()
        self.mode, self.why = "write", "posix_fallocate is not supported here"
        self.pos = pos
        os.ftruncate(self._fd, pos)
        self._allocated = pos

    def _unmap(self) -> None:
        if self._next is not None:
            self._next[2].close()
            self._next = None
        if self._mm is not None:
            self.pos = self._base + self._off
            self._mm.close()
            self._mm = None
            self._base = self._off = self._wlen = 0

    # ------------------------------------------------------------------ the rest
    @property
    def data_end(self) -> int:
        """Bytes of data written so far (the zeros of the window are not data)."""
        return self._base + self._off if self._wlen else self.pos

    def sync(self) -> None:
        """fsync: on Linux it writes back the dirty pages of the shared mapping too."""
        os.fsync(self._fd)

    def close(self) -> None:
        """Cut the zeros after the data, fsync and close. Raises OSError (the caller says)."""
        try:
            end = self.data_end
            self._unmap()
            if os.fstat(self._fd).st_size > end:
                os.ftruncate(self._fd, end)
            self._allocated = end
            os.fsync(self._fd)
        finally:
            os.close(self._fd)


def _populate(mm: mmap.mmap) -> None:
    """Fault a window's pages in for writing, in one call (Linux 5.14+; a no-op before)."""
    try:
        mm.madvise(MADV_POPULATE_WRITE)
    except (OSError, ValueError, AttributeError):
        pass
