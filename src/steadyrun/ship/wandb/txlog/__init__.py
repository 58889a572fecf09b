"""Read W&B's transaction log (``run-<id>.wandb``) without the W&B service.

The transaction log is the only artifact of an offline run that records every
history row, summary change, config change and metric definition in the order
they happened, so it is what we check our own output against.  W&B writes it
from ``wandb-core`` (Go) as a LevelDB-style log:

* a 7-byte file header: ``":W&B"``, a little-endian uint16 magic ``0xBEE1`` and
  a uint8 version ``0``;
* then 32 KiB blocks (the file header counts toward the first block), each
  holding chunks with a 7-byte header: uint32 CRC-32 (IEEE, over the type byte
  followed by the payload), uint16 payload length, uint8 type (FULL=1,
  FIRST=2, MIDDLE=3, LAST=4).  A block tail shorter than a chunk header is
  zero padding;
* each reassembled payload is a serialized ``wandb_internal_pb2.Record``.

The reader tolerates what a crashed or still-running writer leaves behind: a
torn tail (``wandb-core`` only writes whole 32 KiB blocks between flushes, so a
killed run typically ends in a FIRST/MIDDLE chunk without its LAST) and
corrupt chunks.  Such damage is counted in :attr:`ScanStats.torn` instead of
raising, because a partial log is still the best evidence of what was logged.

``wandb`` is imported lazily (inside the functions that need the protobuf
classes) because ``import wandb`` costs most of a second, and code that only
lists run files should not pay for it.
"""


from __future__ import annotations

from .chunks import (
    BLOCK_SIZE,
    CHUNK_HEADER,
    FIRST,
    FULL,
    HEADER_IDENT,
    HEADER_LEN,
    HEADER_MAGIC,
    HEADER_VERSION,
    LAST,
    MIDDLE,
    ScanStats,
    has_exit_record,
    iter_payloads,
    iter_records,
)
from .decode import TxLog, load
from .files import find_run_files, run_id_of, wait_complete


def main(argv: list[str] | None = None) -> int:
    from .__main__ import main as _main

    return _main(argv)


__all__ = [
    "BLOCK_SIZE", "CHUNK_HEADER", "FIRST", "FULL", "HEADER_IDENT", "HEADER_LEN", "HEADER_MAGIC",
    "HEADER_VERSION", "LAST", "MIDDLE", "ScanStats", "TxLog", "find_run_files",
    "has_exit_record", "iter_payloads", "iter_records", "load", "main", "run_id_of",
    "wait_complete",
]
