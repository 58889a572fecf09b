"""A W&B log read in block ranges by several processes at once: the shared part of
importer/parallel.py and doctor/parallel.py.

Why: a W&B run of a million rows holds three million records, and Python walks its
chunks at about 2 us each: one core cannot read it in the 10 s issue 16 asks. The
log's 32 KiB blocks let a reader start at any block (chunks.iter_payloads:
`first_block`, `stop_block`), so each process reads a range, and the caller joins the
results in order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

from .chunks import BLOCK_SIZE, Skip, iter_payloads

PART_BYTES = 32 << 20  # below this a log is read in one pass: a fork costs more
MAX_PROCS = 4


def processes(size: int) -> int:
    """How many processes to read a log of `size` bytes with (1: one pass, also where
    processes cannot be forked: Windows)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_PROCS, size // PART_BYTES))


def block_cuts(path: Path, procs: int) -> list[int | None]:
    """procs + 1 block numbers: range i is [cuts[i], cuts[i + 1]); the last is open."""
    blocks = -(-path.stat().st_size // BLOCK_SIZE)
    return [blocks * i // procs for i in range(procs)] + [None]


def prefix(path: Path, skip_tags: frozenset[int], row_tag: int = 0x12,
           limit: int = 10_000) -> list[bytes]:
    """The records before the first row (the run, its config, metric definitions):
    what a process reading a later range replays to guess the state its rows start in."""
    out = []
    for n, payload in enumerate(iter_payloads(path, skip=Skip(tags=skip_tags))):
        if n >= limit or kind_tag(payload) == row_tag:
            break
        out.append(payload)
    return out


def kind_tag(p: bytes) -> int:
    """A record payload's kind, as its first field tag after the optional `num`."""
    i = 0
    if p and p[0] == 0x08:  # `num`, a varint
        i = 1
        while i < len(p) and p[i] & 0x80:
            i += 1
        i += 1
    return p[i] if i < len(p) else -1


def fork_pool(workers: int) -> ProcessPoolExecutor:
    """Workers forked from this process (the modules already imported, nothing to
    pickle but the jobs). A caller flushes its open files first."""
    return ProcessPoolExecutor(max_workers=workers,
                               mp_context=multiprocessing.get_context("fork"))


def read_in_ranges(path: Path, procs: int, skip_tags: frozenset[int], *,
                   job: Callable[[int, int, int | None, list[bytes]], dict[str, Any]],
                   worker: Callable[[dict[str, Any]], dict[str, Any]],
                   feed: Callable[[int, int | None], None], state: Callable[[], Any],
                   join: Callable[[dict[str, Any]], None],
                   discard: Callable[[list[dict[str, Any]]], None] | None = None) -> None:
    """Read `path` with `procs` processes, in order. This process reads the first range
    itself (`feed(0, stop)`) while forked `worker`s read the others (`job(i, first,
    stop, prefix)` makes range i's job; `prefix` is the log's records before its first
    row). Each worker's part says the state it started from (`part["state"]`); parts
    are joined in order (`join(part)`) while `state()` here equals it. At the first that
    differs, the workers' output is dropped (`discard(jobs)`) and the rest of the log is
    read here (`feed(first, None)`), as without workers."""
    cuts = block_cuts(path, procs)
    first = prefix(path, skip_tags)
    jobs = [job(i, cuts[i] or 0, cuts[i + 1], first) for i in range(1, procs)]
    with fork_pool(len(jobs)) as pool:
        futures = [pool.submit(worker, j) for j in jobs]
        feed(0, cuts[1])
        for i, fut in enumerate(futures, 1):
            part = fut.result()
            if part["state"] != state():  # it guessed the state wrong: go on here
                for later in futures[i:]:
                    later.cancel()
                wait(futures)
                if discard is not None:
                    discard(jobs)
                feed(cuts[i] or 0, None)
                return
            join(part)
