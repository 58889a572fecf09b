"""One big W&B log imported by several processes at once, each reading a range of its
32 KiB blocks, with the same result as one pass.

Why: reading a W&B run of a million rows costs about 20 s of Python on one core (three
million records: each row, and the two summaries wandb-core derives from it), and issue
16 asks for 10 s. The log's block format lets a reader start at any block
(txlog/chunks.py: `first_block`, `stop_block`), so each process converts its range
into a part file of steadyrun records, and the parts are joined in order.

What makes it exact:
- A row converts by the run's state at that point: its metric definitions (which key is
  drawn over which step metric) and whether the summary is rebuilt from rows. A worker
  starts from the state the log's first records give (definitions come before the rows
  in nearly every run) and says which state it started from. Parts are joined in order
  while the state the earlier parts end in is the one the next part started from; at
  the first part that started from another state, the rest of the log is read by this
  process in one pass, as without workers.
- Each part's records other than rows (config, summary, metric, files, exit) are handed
  back and replayed here in order; rows' summary ops come back with their record
  numbers, offset by the records before the part.
- The parts' digests are joined with store/digest.extend (later values win).
The main process reads the first range itself, so two cores need one worker.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..ship.wandb.txlog.ranges import read_in_ranges
from .batch import Batches
from .scan import SKIP_TAGS, Scan


def scan_parallel(path: Path, scan: Scan, rows: Any, batches: Batches, *,
                  verify_crc: bool, procs: int) -> None:
    """Feed `scan` (and the import's `rows` writer) with the whole of `path`, read by
    `procs` processes. `rows.out` must have written what comes before the rows."""
    rows.out.flush()  # a forked child must not inherit unwritten bytes

    def job(i: int, first: int, stop: int | None, prefix: list[bytes]) -> dict[str, Any]:
        return {"path": path, "first": first, "stop": stop, "prefix": prefix,
                "part": rows.rdir / f".part-{i}", "rdir": rows.rdir,
                "writer": rows.out.writer, "start": rows.start,
                "metrics": rows.first_metrics, "verify_crc": verify_crc}

    read_in_ranges(
        path, procs, SKIP_TAGS, job=job, worker=convert_part, state=scan.state,
        feed=lambda first, stop: scan.feed(path, verify_crc=verify_crc, batches=batches,
                                           first_block=first, stop_block=stop),
        join=lambda part: _join(scan, rows, part), discard=_drop_parts)


def convert_part(job: dict[str, Any]) -> dict[str, Any]:
    """A worker: the records that start in blocks [first, stop) of the log, converted
    into the part file, from the state the prefix gives."""
    from .rows import Counts, Rows, set_rule
    from .steps import StepRule
    from .write import SegmentOut

    out = SegmentOut(job["rdir"], job["writer"], path=job["part"])
    rows = Rows(out, job["rdir"], Counts(), job["start"])
    rows.first_metrics = job["metrics"]
    rows.rule = StepRule(job["metrics"])
    scan = Scan([job["path"]], rows, rule_for=lambda m: set_rule(rows, m))
    for payload in job["prefix"]:
        rec = scan.parse(payload, 0)
        if rec is not None:
            scan.control(rec, 0, {})  # the state only: these records are not this part's
    scan.records = 0
    state = scan.state()
    controls: list[tuple[int, bytes]] = []
    scan.feed(job["path"], verify_crc=job["verify_crc"], batches=Batches(rows, scan),
              first_block=job["first"], stop_block=job["stop"], controls=controls,
              control_ops={})
    return {"state": state, "controls": controls, "ops": scan.ops, "seq": scan.seq,
            "records": scan.records, "rows": scan.rows, "skipped": scan.skip.count,
            "stats": scan.stats, "counts": rows.counts, "t": rows.t,
            "seen": list(rows.seen), "part": job["part"], "size": out.bytes,
            "digest": out.end_part()}


def _join(scan: Scan, rows: Any, part: dict[str, Any]) -> None:
    """A worker's part, after what `scan` and `rows` hold so far."""
    offset = scan.seq
    for seq, payload in part["controls"]:
        rec = scan.parse(payload, offset + seq)
        if rec is not None:
            scan.records -= 1  # counted by the worker
            scan.control(rec, offset + seq, scan.ops)
    ops = scan.ops
    for path, (seq, value) in part["ops"].items():
        have = ops.get(path)
        if have is None or have[0] < offset + seq:
            ops[path] = (offset + seq, value)
    scan.seq += part["seq"]
    scan.records += part["records"]
    scan.rows += part["rows"]
    scan.skip.count += part["skipped"]
    scan.stats.absorb(part["stats"])
    rows.out.append(part["part"], part["size"], part["digest"])
    rows.join(part["counts"], part["t"], part["seen"])


def _drop_parts(jobs: list[dict[str, Any]]) -> None:
    for job in jobs:
        try:
            os.unlink(job["part"])
        except FileNotFoundError:
            pass
