"""When a relay stops: at the job's end, even if it ended before the relay subscribed."""

from __future__ import annotations

from orchestrator.events import Finished, Queued, Snapshot
from orchestrator.web.gateway.hub import _ended


def _snapshot(status: str) -> Snapshot:
    return Snapshot(job_id="p", status=status, progress=0.0, items=[])


def test_a_relay_ends_at_finished_or_at_a_snapshot_of_an_ended_job() -> None:
    assert _ended(Finished(job_id="p", status="succeeded"))
    assert _ended(_snapshot("canceled"))
    assert not _ended(_snapshot("running"))
    assert not _ended(Queued(job_id="p", count=1))
    assert not _ended(None)
