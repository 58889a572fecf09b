"""The seam between the shipping loop and a sink (ship/sink.py, ship/sinks.py).

A second sink must need nothing but its own code and one line in `SINKS`. The sink here
is a small JSON-lines file of what it was given, defined in this file and registered by
that one line: the shipper, the cursor and `build_shippers` serve it unchanged, with
exactly-once numbering of the kinds it sequences, its own cursor and lock, and a resume
that asks the sink how far its own file got.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from steadyrun.ship import sinks
from steadyrun.store.cursor import Cursor


class FileSink:
    """Appends every record it is given, with its sequence number, to one file."""

    name = "jsonfile"
    label = "a JSON file"
    sequenced = frozenset(("row",))

    def __init__(self, rdir: Path) -> None:
        self.path = rdir / "sinks" / "shipped.jsonl"
        self.closed: tuple[int, str] | None = None

    def lines(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines()]

    def open(self, manifest: dict[str, Any], first_seq: int) -> None:
        self.run_id = manifest["id"]

    def durable_seq(self) -> int | None:
        seqs = [line["seq"] for line in self.lines() if line["seq"] is not None]
        return max(seqs) if seqs else None

    def settled(self) -> bool:
        return any(line["rec"]["k"] == "<closed>" for line in self.lines())

    def ship(self, rec: dict[str, Any], seq: int | None) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps({"seq": seq, "rec": rec}) + "\n")

    def close(self, exit_code: int, state: str) -> None:
        self.ship({"k": "<closed>", "state": state}, None)


def make(rdir: Path, mode: str, **options: Any) -> FileSink:
    return FileSink(rdir)


@pytest.fixture
def only_file_sink(monkeypatch: pytest.MonkeyPatch) -> None:
    # The one registration line a new sink needs (here in place of W&B's, to stay offline).
    monkeypatch.setattr(sinks, "SINKS", {"jsonfile": f"{__name__}:make"})


def _finished_run(new_run: Any) -> Path:
    run = new_run()
    for i in range(5):
        run.log({"train/loss": 1.0 / (i + 1)})
    run.log({"val/acc": 0.5}, step=0)
    run.log_table("eval/t", columns=["a"], rows=[[1]])
    run.summary["best"] = 0.9
    run.finish()
    return run.dir


def test_a_registered_sink_gets_every_record_once_in_order(new_run, only_file_sink) -> None:
    rdir = _finished_run(new_run)
    (shipper,) = sinks.build_shippers(rdir, "offline", follow=False)
    outcome = shipper.run()
    assert outcome.state == "finished" and outcome.rows == 6
    shipped = FileSink(rdir).lines()
    rows = [line for line in shipped if line["rec"]["k"] == "row"]
    assert [line["seq"] for line in rows] == list(range(6))  # only its kinds are numbered
    assert [line["rec"]["v"].get("train/loss") for line in rows[:5]] == \
        [1.0 / (i + 1) for i in range(5)]
    assert {line["rec"]["k"] for line in shipped} >= {"open", "table", "summary", "close"}
    assert all(line["seq"] is None for line in shipped if line["rec"]["k"] != "row")
    # Its own files under sinks/, named by the sink.
    assert (rdir / "sinks" / "jsonfile.cursor").exists()
    assert (rdir / "sinks" / "jsonfile.lock").exists()
    assert Cursor.load(rdir / "sinks" / "jsonfile.cursor").rows == 6
    # Again: nothing new, nothing twice.
    (again,) = sinks.build_shippers(rdir, "offline", follow=False)
    assert again.run().state == "up-to-date"
    assert FileSink(rdir).lines() == shipped


def test_a_resumed_shipper_asks_the_sink_how_far_it_got(new_run, only_file_sink) -> None:
    """A batch journaled and given to the sink, then the shipper killed before its
    commit: the next shipper ships none of it again, because the sink's own file holds
    it (`durable_seq`)."""
    rdir = _finished_run(new_run)
    (shipper,) = sinks.build_shippers(rdir, "offline", follow=False)
    shipper.sink.open({"id": rdir.name}, 0)
    start = dict(shipper.cursor.offsets)
    batch, end = shipper._read_batch(start)
    seqs, rows = shipper._count(batch)
    shipper.cursor.begin(start, end, seqs, rows)
    shipper._ship(batch, shipper.cursor.next_seq)  # given to the sink; no commit: "killed"
    given = FileSink(rdir).lines()

    (resumed,) = sinks.build_shippers(rdir, "offline", follow=False)
    resumed.run()
    after = FileSink(rdir).lines()
    assert after[:len(given)] == given
    assert [line["rec"]["k"] for line in after[len(given):]] == ["<closed>"]
    assert Cursor.load(rdir / "sinks" / "jsonfile.cursor").rows == 6


def test_the_sink_registry_names_wandb_by_one_line() -> None:
    from steadyrun.ship.wandb.sink import WandbSink

    assert sinks.SINKS == {"wandb": "steadyrun.ship.wandb.sink:make_sink"}
    # W&B numbers its history rows: tables, images and histograms are rows there too.
    assert WandbSink.sequenced == frozenset(("row", "table", "image", "histogram"))
