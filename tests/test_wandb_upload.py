"""Uploading a run's earlier W&B offline folders before it goes online (ship/wandb/upload.py).

No W&B server can run here, so the upload itself is never seen to succeed against a
server (docs/reliability.md says so). What can be checked offline is checked here, with
the real `wandb sync`: folders go in the order the sink recorded them, a folder counts as
uploaded only when wandb marked every log in it synced, the first failure stops the rest,
a second pass repeats nothing, and an online pass refuses to ship above pieces that are
still pending.

`wandb sync` of a folder holding no transaction log says "No runs to sync" and exits 0:
a real, fast success. A folder holding a damaged log makes it print an error and exit 0
too (wandb 0.31), which is the case the marker check exists for.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from steadyrun.ship.wandb import upload
from steadyrun.ship.wandb.sink import make_sink
from steadyrun.store.layout import read_sink_status, update_sink_status

FAKE_KEY = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def rdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # A key so `wandb sync` gets past authentication; nothing listens on the URL.
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "runs" / "r1"
    (run / "sinks").mkdir(parents=True)
    return run


def _folders(rdir: Path, *kinds: str) -> list[str]:
    """Offline folders in the order given: "empty" (nothing to sync), "damaged" (a log
    wandb cannot read), "marked" (a damaged log that wandb's marker says is synced)."""
    out = []
    for n, kind in enumerate(kinds):
        # Names sort against the recorded order: the recorded order must be what counts.
        folder = rdir / "wandb" / f"offline-run-2026010{9 - n}_000000-r1"
        folder.mkdir(parents=True)
        if kind in ("damaged", "marked"):
            (folder / "run-r1.wandb").write_bytes(b"\x00not a W&B log" * 8)
        if kind == "marked":
            (folder / "run-r1.wandb.synced").write_bytes(b"")
        out.append(str(folder))
    update_sink_status(rdir, "wandb", run_dirs=out)
    return out


def test_folders_go_in_recorded_order_once(rdir: Path) -> None:
    dirs = _folders(rdir, "marked", "empty")
    assert upload.pending_offline_dirs(rdir) == dirs
    assert upload.upload_offline_dirs(rdir) == dirs
    assert read_sink_status(rdir, "wandb")["uploaded"] == dirs
    assert upload.pending_offline_dirs(rdir) == []
    assert upload.upload_offline_dirs(rdir) == []  # a second pass repeats nothing


def test_a_log_wandb_did_not_mark_synced_stops_the_upload_there(
        rdir: Path, capfd: pytest.CaptureFixture[str]) -> None:
    first, damaged, last = _folders(rdir, "empty", "damaged", "empty")
    # wandb sync exits 0 here; the missing marker is what tells the failure.
    assert upload.upload_offline_dirs(rdir) == [first]
    assert read_sink_status(rdir, "wandb")["uploaded"] == [first]
    assert upload.pending_offline_dirs(rdir) == [damaged, last]  # the later one untried
    said = capfd.readouterr().err
    assert f"wandb sync {damaged} failed (exit 0; 1 log(s) not marked synced)" in said


def test_an_online_pass_refuses_to_ship_above_pending_pieces(rdir: Path) -> None:
    import wandb

    _folders(rdir, "damaged")
    with pytest.raises(wandb.Error, match="could not be uploaded"):
        make_sink(rdir, "online")
