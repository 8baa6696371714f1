"""Expired uploads: invisible at once, and swept (record and unshared bytes) on uploads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from orchestrator.outputs import BlobStore
from orchestrator.web.v2.assets import SCHEMA, AssetStore, ExpirySweep, Upload
from orchestrator.web.v2.db import Database


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def _store(tmp_path: Path, clock: Clock) -> AssetStore:
    return AssetStore(Database(tmp_path / "v2.sqlite", SCHEMA), BlobStore(tmp_path / "blobs"),
                      clock=clock)


def _upload(store: AssetStore, data: bytes, name: str, expires_in: int | None) -> str:
    upload = Upload(content_type="image/png", file_path=name, expires_in=expires_in)
    return store.upload("ann", data, upload, "image/png").id


def test_the_sweep_deletes_expired_records_and_hands_their_bytes_to_release(
        tmp_path: Path) -> None:
    clock = Clock()
    store = _store(tmp_path, clock)
    short = _upload(store, b"short-lived", "a.png", expires_in=60)
    kept = _upload(store, b"kept", "b.png", expires_in=None)
    later = _upload(store, b"later", "c.png", expires_in=3600)
    released: list[str] = []
    ticks = iter([0.0, 1.0, 100.0])
    sweep = ExpirySweep(store, released.append, clock=lambda: next(ticks))

    assert sweep.maybe_run() == 0  # nothing has expired yet
    clock.now += timedelta(minutes=5)
    assert store.get("ann", short) is None  # expired: reads as missing before any sweep
    assert sweep.maybe_run() == 0  # too soon after the last sweep
    assert sweep.maybe_run() == 1
    assert released == [store.blobs.put(b"short-lived").sha256]
    assert store.get("ann", kept) is not None and store.get("ann", later) is not None


def test_expired_records_are_deleted_in_bounded_batches(tmp_path: Path) -> None:
    clock = Clock()
    store = _store(tmp_path, clock)
    for n in range(5):
        _upload(store, f"bytes {n}".encode(), f"{n}.png", expires_in=1)
    clock.now += timedelta(seconds=2)
    assert len(store.delete_expired(3)) == 3
    assert len(store.delete_expired(3)) == 2
    assert store.delete_expired(3) == []
