"""Job retention: what is reported, and a sweep that deletes only finished jobs past it
with their outputs, releasing bytes nothing else names (a real store and blob store)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.errors import JobNotFound
from orchestrator.jobs import Job, JobSpec, JobStatus
from orchestrator.outputs import BlobStore, OutputKind, OutputRecord
from orchestrator.retention import RetentionSweep, expires_at
from orchestrator.store import DATABASE_NAME, SqliteJobStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
KEEP = timedelta(days=30)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Iterator[SqliteJobStore]:
    with SqliteJobStore(tmp_path / DATABASE_NAME, clock=clock) as opened:
        yield opened


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def release_with(store: SqliteJobStore, blobs: BlobStore, sha256: str) -> bool:
    return blobs.release(sha256, lambda: not (store.blob_references(sha256)
                                             or store.input_references(sha256)))


def finished(store: SqliteJobStore, blobs: BlobStore, data: bytes, *,
             images: dict[str, str] | None = None) -> tuple[Job, OutputRecord]:
    """A succeeded job with one output whose bytes are ``data``."""
    job = store.create_job(JobSpec(workflow="w", images=images or {}))
    item = job.items[0]
    store.claim_next("n", can_run=lambda claimed, _: claimed.id == job.id,
                     prompt_id=lambda _: uuid.uuid4().hex)
    ref = blobs.put(data)
    record = store.add_output(OutputRecord(
        sha256=ref.sha256, mime="image/png", size_bytes=ref.size_bytes,
        kind=OutputKind.IMAGE, filename="a.png", node_id="9", node="n", job_id=job.id,
        item_id=item.id, index=0, owner="alice"))
    store.mark_succeeded(item.id, [record.id])
    return store.get_job(job.id), record


def test_expires_at_is_creation_plus_retention_or_none_when_kept() -> None:
    assert expires_at(T0, KEEP) == T0 + KEEP
    assert expires_at(T0, None) is None


def test_the_sweep_deletes_finished_jobs_past_retention_with_their_outputs(
        store: SqliteJobStore, blobs: BlobStore, clock: Clock) -> None:
    """Given an old finished job, an old unfinished one and a recent finished one, when the
    sweep runs past the first two's deadline, then only the finished old job goes, with
    its output record and its bytes."""
    old, old_output = finished(store, blobs, b"old bytes")
    waiting = store.create_job(JobSpec(workflow="w"))
    clock.now = T0 + timedelta(days=10)
    recent, recent_output = finished(store, blobs, b"recent bytes")
    clock.now = T0 + KEEP + timedelta(seconds=1)
    sweep = RetentionSweep(store, lambda sha: release_with(store, blobs, sha), keep=KEEP,
                           clock=clock)

    assert sweep.run_once() == 1

    with pytest.raises(JobNotFound):
        store.get_job(old.id)
    with pytest.raises(JobNotFound):
        store.get_output(old_output.id)
    assert not blobs.exists(old_output.sha256)
    assert store.get_job(waiting.id).status == JobStatus.QUEUED
    assert store.get_output(recent_output.id) == recent_output
    assert blobs.exists(recent_output.sha256)
    assert sweep.run_once() == 0


def test_bytes_another_record_names_stay(store: SqliteJobStore, blobs: BlobStore,
                                         clock: Clock) -> None:
    """An expired job's output bytes that a kept job also produced, and its input image
    that a kept job also uses, stay; the expired job's own input image goes."""
    shared_input = blobs.put(b"shared avatar").sha256
    own_input = blobs.put(b"own avatar").sha256
    old, _ = finished(store, blobs, b"same picture",
                      images={"a": shared_input, "b": own_input})
    clock.now = T0 + timedelta(days=20)
    _, kept = finished(store, blobs, b"same picture", images={"a": shared_input})
    clock.now = T0 + KEEP + timedelta(days=1)

    RetentionSweep(store, lambda sha: release_with(store, blobs, sha), keep=KEEP,
                   clock=clock).run_once()

    assert blobs.exists(kept.sha256) and blobs.exists(shared_input)
    assert not blobs.exists(own_input)
    assert hashlib.sha256(blobs.path(kept.sha256).read_bytes()).hexdigest() == kept.sha256
