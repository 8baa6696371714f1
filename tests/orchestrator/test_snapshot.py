"""A subscriber's first event (the snapshot) lists every output the job has recorded."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import JobNotFound
from orchestrator.events import Snapshot
from orchestrator.outputs import BlobRef, Media, OutputKind, new_output
from orchestrator.service import Orchestrator


@pytest.fixture()
def orch(tmp_path: Path) -> Iterator[Orchestrator]:
    with Orchestrator(data_dir=tmp_path, start=False) as opened:  # nothing dispatched
        yield opened


def test_an_output_recorded_before_its_item_succeeds_is_in_the_snapshot(
        orch: Orchestrator) -> None:
    """The runner publishes an output when it is stored and writes the item's output ids
    only at its success: a stream opened in between once never learned the output."""
    handle = orch.submit(graph={"1": {"class_type": "SaveImage", "inputs": {}}})
    job = orch.get(handle.id)
    blob = orch._blobs.put(b"not really a picture")
    record = orch._store.add_output(new_output(
        job, job.items[0], BlobRef(sha256=blob.sha256, size_bytes=blob.size_bytes),
        Media(mime="image/png", kind=OutputKind.IMAGE), filename="a.png", node_id="1",
        node="n", key="images"))
    assert orch.get(handle.id).items[0].output_ids == []  # the item has not succeeded

    with orch.events(handle.id) as sub:
        first = sub.get(timeout=5)
    assert isinstance(first, Snapshot)
    assert first.outputs == [record.id]


def test_a_subscription_reads_the_job_once_and_an_unknown_job_subscribes_nothing(
        orch: Orchestrator, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot is the subscription's one read (job, outputs, positions in one
    transaction); its ``JobNotFound`` reaches the caller with nothing left subscribed."""
    handle = orch.submit(graph={"1": {"class_type": "SaveImage", "inputs": {}}})
    store = orch._store
    opened = type(store)._tx
    whats: list[str] = []

    def counted(this: object, what: str, *, write: bool = True) -> object:
        whats.append(what)
        return opened(this, what, write=write)  # type: ignore[arg-type]

    monkeypatch.setattr(type(store), "_tx", counted)
    with orch.events(handle.id) as sub:
        first = sub.get(timeout=5)
    assert isinstance(first, Snapshot)
    assert first.items[0]["queue_position"] == 0
    assert whats == [f"reading job {handle.id}"]
    with pytest.raises(JobNotFound):
        orch.events("no-such-job")
    assert not orch._bus._subs.get("no-such-job")
