"""Our jobs as v2 bodies (pure): states, progress, errors, metrics and links."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.events import ProgressEvent
from orchestrator.jobs import Item, ItemError, ItemStatus, Job, JobSpec
from orchestrator.web.v2 import mapping, queue

T0 = datetime(2026, 1, 1, tzinfo=UTC)
GRAPH = {str(n): {"class_type": "X", "inputs": {}} for n in range(1, 5)}


def job(status: ItemStatus, **item: Any) -> Job:
    return Job(id="j1", spec=JobSpec(graph=GRAPH, metadata={"a": "b"}), created_at=T0,
               items=[Item(id="i1", job_id="j1", index=0, status=status, **item)])


def event(fraction: float, item_fraction: float) -> ProgressEvent:
    return ProgressEvent(job_id="j1", item=0, node="n", node_id="2", class_type="KSampler",
                         value=3, max=10, item_fraction=item_fraction, fraction=fraction)


def test_a_queued_job_has_no_progress_and_keeps_its_position() -> None:
    body = mapping.job_of(job(ItemStatus.QUEUED), outputs=[], latest=None, fraction=0.0,
                          queue_position=3, base="http://h", now=T0)

    assert (body.status, body.progress, body.queue_position) == ("queued", None, 3)
    assert body.urls.self_ == "http://h/api/v2/jobs/j1"
    assert body.expires_at == mapping.NEVER  # the service keeps jobs by default
    kept_a_day = mapping.job_of(job(ItemStatus.QUEUED), outputs=[], latest=None, fraction=0.0,
                                queue_position=3, base="http://h", now=T0,
                                expires_at=T0 + timedelta(days=1))
    assert kept_a_day.expires_at == T0 + timedelta(days=1)


def test_running_progress_counts_every_node_of_the_graph_and_stays_below_one() -> None:
    running = job(ItemStatus.RUNNING, started_at=T0)

    early = mapping.progress_of(running, event(0.3, 0.3), 0.3)
    late = mapping.progress_of(running, event(1.0, 1.0), 1.0)

    assert early is not None and late is not None
    assert (early.nodes_done, early.nodes_total, early.message) == (1, 4, "KSampler 3/10")
    assert late.value == mapping.RUNNING_PROGRESS_CAP and late.nodes_done == 4


def test_progress_never_reads_below_the_runners_fraction() -> None:
    progress = mapping.progress_of(job(ItemStatus.RUNNING), event(0.2, 0.2), 0.5)

    assert progress is not None and progress.value == 0.5


def test_a_failed_job_carries_its_node_error_and_metrics() -> None:
    error = ItemError(code="execution_error", message="boom", node_id="2", class_type="Fail",
                      traceback=["line 1\n", "line 2\n"])
    failed = job(ItemStatus.FAILED, started_at=T0 + timedelta(seconds=1),
                 completed_at=T0 + timedelta(seconds=3), error=error)

    body = mapping.job_of(failed, outputs=[], latest=None, fraction=0.0, queue_position=None,
                          base="http://h", now=T0)

    assert body.error is not None and body.error.traceback == "line 1\nline 2\n"
    assert (body.error.node_id, body.error.class_type) == ("2", "Fail")
    assert body.metrics == {"queue_ms": 1000, "execution_ms": 2000}
    assert body.metadata == {"a": "b"}


def test_a_retried_failure_is_no_error_while_the_job_runs() -> None:
    running = job(ItemStatus.QUEUED, error=ItemError(code="node_unreachable", message="x"))

    assert mapping.error_of(running) is None


def test_a_job_waits_where_its_first_queued_item_waits() -> None:
    """``queue.place``, shared by a job's answer (claims asked of the store) and its event
    stream's first status (claims from the stream's opening read): 1-based, from the
    first item still queued; none once nothing waits or the item left the queue."""
    two = Job(id="j1", spec=JobSpec(graph=GRAPH), created_at=T0, items=[
        Item(id="i1", job_id="j1", index=0, status=ItemStatus.RUNNING),
        Item(id="i2", job_id="j1", index=1, status=ItemStatus.QUEUED)])
    assert queue.place(two, {"i2": 4}.get) == 5
    assert queue.place(two, {"i2": 0}.get) == 1
    assert queue.place(two, {}.get) is None  # dispatched meanwhile
    assert queue.place(job(ItemStatus.RUNNING), {"i1": 0}.get) is None
