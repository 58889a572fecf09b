"""The seam between the shipping loop and a destination: the `Sink` protocol.

A sink knows nothing of segments, cursors or writers; the shipper knows nothing of the
destination. The shipper reads a run's records in time order and hands each one to the
sink. Records of the kinds the sink names in `sequenced` also get the next sequence
number of that sink (W&B: its `_step`, so W&B never reorders or drops a row), which the
cursor journals for exactly-once delivery: after a crash, `durable_seq` says how far the
sink's own files really got, and only the rest is shipped again.

A sink that keeps state over the records it is given (W&B's row budget) may have a
`replay` attribute, a callable or None: a new pass hands it every record an earlier pass
handled, in order, to learn from without shipping (Shipper._replay).

A new sink is a folder under ship/ with a class that has these methods, and one line in
ship/sinks.py.
"""

from __future__ import annotations

from typing import Any, Protocol


class Sink(Protocol):
    name: str  # its files under the run are sinks/<name>.cursor, .lock and .json
    label: str  # how messages call it ("W&B")
    sequenced: frozenset[str]  # record kinds (`k`) that take a sequence number

    def open(self, manifest: dict[str, Any], first_seq: int) -> int | None:
        """Start (or resume) the destination of the run; `first_seq` is the next number.
        A destination that already holds later numbers for this run (W&B resumed on its
        server) returns the number to continue from; else None."""

    def durable_seq(self) -> int | None:
        """The highest sequence number the destination's own storage holds for this run,
        or None when it holds none (or cannot tell: then journaled batches ship again)."""

    def settled(self) -> bool:
        """The destination was closed after the last record it was given: nothing to redo."""

    def ship(self, rec: dict[str, Any], seq: int | None) -> None:
        """One record; `seq` is its sequence number when its kind is sequenced, else None."""

    def close(self, exit_code: int, state: str) -> None:
        """The run ended (`finished`, `failed`, `crashed`) or this pass ended (`partial`)."""
