"""Our jobs, outputs and assets as Comfy API v2 bodies (pure: values in, models out).

A v2 job is one of our jobs, normally with one item and a raw graph. The caller passes
in everything that is not in the ``Job`` itself (its outputs, its latest progress event,
its queue position, the service's base URL, the time), so these functions read no store,
clock or bus and are tested without a server.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from orchestrator.events import ProgressEvent
from orchestrator.jobs import Job, JobStatus
from orchestrator.outputs import OutputKind, OutputRecord
from orchestrator.web.v2 import schemas

API_PREFIX = "/api/v2"
# The deadline reported for a job the service keeps until it is deleted (no retention):
# the contract wants a timestamp (the SDK refuses null), and this one never comes.
NEVER = datetime.max.replace(tzinfo=UTC)
# Content URLs are served by this service under the caller's token, so they never expire
# on their own; the contract still wants a deadline, and a day outlives any client wait.
CONTENT_URL_TTL = timedelta(days=1)
# Below 1.0 until the job is recorded terminal: the last node can finish while outputs are
# still being fetched, and a client must never read "done" before the job is.
RUNNING_PROGRESS_CAP = 0.99

_STATUS: dict[JobStatus, schemas.JobStatusName] = {
    JobStatus.QUEUED: "queued",
    JobStatus.RUNNING: "running",
    JobStatus.CANCELING: "canceling",
    JobStatus.SUCCEEDED: "succeeded",
    JobStatus.PARTIALLY_FAILED: "failed",  # v2 has no partial success: some item failed
    JobStatus.FAILED: "failed",
    JobStatus.CANCELED: "canceled",
    JobStatus.EXPIRED: "expired",
}


def status_of(job: Job) -> schemas.JobStatusName:
    return _STATUS[job.status]


def links(base: str, job_id: str) -> schemas.JobUrls:
    """Absolute follow-up links: the SDK follows them as given, whatever the mount."""
    root = f"{base}{API_PREFIX}/jobs/{job_id}"
    return schemas.JobUrls(self=root, events=f"{root}/events", cancel=f"{root}/cancel")


def content_url(base: str, asset_id: str) -> str:
    return f"{base}{API_PREFIX}/assets/{asset_id}/content"


def blake3_ref(hexdigest: str | None) -> str | None:
    """The contract's hash spelling, ``blake3:<hex>``."""
    return None if hexdigest is None else f"blake3:{hexdigest}"


def nodes_total(job: Job) -> int:
    """Nodes in the job's graph: progress counts against all of them from the start."""
    graph = job.spec.graph if job.spec.graph is not None else job.items[0].graph
    return len(graph or {})


def progress_of(job: Job, latest: ProgressEvent | None, fraction: float) -> schemas.Progress | None:
    """The job's progress snapshot: None while queued, complete once terminal.

    ``latest`` is the newest progress event (None after a restart or before the first
    one); ``fraction`` the job-level fraction the runner keeps (never decreasing).
    """
    total = nodes_total(job)
    status = job.status
    if status == JobStatus.QUEUED:
        return None
    if status == JobStatus.SUCCEEDED:
        return complete_progress(total)
    value = max(fraction, latest.fraction if latest else 0.0)
    if not status.terminal:
        value = min(value, RUNNING_PROGRESS_CAP)
    return _snapshot(value, total, latest)


def complete_progress(total: int) -> schemas.Progress:
    """A succeeded job's progress: every one of its graph's ``total`` nodes done."""
    return schemas.Progress(value=1.0, nodes_done=total, nodes_total=total,
                            current_node=None, current_node_class=None, step=None,
                            steps=None, message=None)


def live_progress(job: Job, event: ProgressEvent) -> schemas.Progress:
    """The snapshot a live progress event stands for (the job is running)."""
    return _snapshot(min(event.fraction, RUNNING_PROGRESS_CAP), nodes_total(job), event)


def _snapshot(value: float, total: int, latest: ProgressEvent | None) -> schemas.Progress:
    item_fraction = latest.item_fraction if latest else value
    done = min(math.floor(item_fraction * total + 1e-9), total)
    node = latest.node_id if latest else None
    klass = latest.class_type if latest else None
    step, steps = (latest.value, latest.max) if latest else (None, None)
    message = f"{klass} {step}/{steps}" if klass and step is not None and steps else klass
    return schemas.Progress(value=round(value, 6), nodes_done=done, nodes_total=total,
                            current_node=node, current_node_class=klass, step=step,
                            steps=steps, message=message)


# A node's UI value (its JSON, named by its key) is text to the contract.
_OUTPUT_TYPE: dict[OutputKind, schemas.OutputTypeName] = {
    OutputKind.IMAGE: "image", OutputKind.VIDEO: "video", OutputKind.AUDIO: "audio",
    OutputKind.FILE: "file", OutputKind.VALUE: "text"}


def output_type(record: OutputRecord) -> schemas.OutputTypeName:
    return _OUTPUT_TYPE[record.kind]


def output_of(record: OutputRecord, base: str, now: datetime) -> schemas.Output:
    return schemas.Output(
        node_id=record.node_id, name=record.filename, type=output_type(record),
        content_type=record.mime, size_bytes=record.size_bytes, id=record.id,
        hash=blake3_ref(record.blake3), url=content_url(base, record.id),
        url_expires_at=now + CONTENT_URL_TTL, job_id=record.job_id)


def error_of(job: Job) -> schemas.JobErrorInfo | None:
    """The first item error, once the job failed (a retried failure is not an error)."""
    if job.status not in (JobStatus.FAILED, JobStatus.PARTIALLY_FAILED):
        return None
    for item in job.items:
        if item.error is not None:
            e = item.error
            trace = "".join(e.traceback) if e.traceback else None
            return schemas.JobErrorInfo(code=e.code, message=e.message, node_id=e.node_id,
                                    class_type=e.class_type, traceback=trace)
    return schemas.JobErrorInfo(code="failed", message="the job failed", node_id=None,
                            class_type=None, traceback=None)


def metrics_of(job: Job) -> dict[str, int | None]:
    """Milliseconds waiting and running; null until the job got that far."""
    started, completed = job.started_at, job.completed_at
    return {
        "queue_ms": _ms(started - job.created_at) if started else None,
        "execution_ms": _ms(completed - started) if started and completed else None,
    }


def _ms(delta: timedelta) -> int:
    return max(int(delta.total_seconds() * 1000), 0)


def job_of(job: Job, *, outputs: list[OutputRecord], latest: ProgressEvent | None,
           fraction: float, queue_position: int | None, base: str,
           now: datetime, expires_at: datetime | None = None,
           eta_ms: int | None = None) -> schemas.Job:
    """The full v2 ``Job`` body for ``job``; ``expires_at`` is when the service may
    delete it (None: kept until deleted, reported as ``NEVER``); ``eta_ms``, while the
    job waits, goes into its metrics beside ``queue_position``."""
    metrics = metrics_of(job)
    if eta_ms is not None and job.status == JobStatus.QUEUED:
        metrics["eta_ms"] = eta_ms
    return schemas.Job(
        id=job.id, status=status_of(job), created_at=job.created_at,
        started_at=job.started_at, completed_at=job.completed_at,
        expires_at=expires_at or NEVER,
        queue_position=queue_position if job.status == JobStatus.QUEUED else None,
        progress=progress_of(job, latest, fraction),
        outputs=[output_of(r, base, now) for r in outputs],
        error=error_of(job), metrics=metrics, urls=links(base, job.id),
        metadata=dict(job.spec.metadata))


def summary_of(job: Job, base: str) -> schemas.JobSummary:
    """A list item: the job without outputs or progress."""
    updated = job.completed_at or job.started_at or job.created_at
    return schemas.JobSummary(
        id=job.id, status=status_of(job), created_at=job.created_at,
        started_at=job.started_at, completed_at=job.completed_at,
        create_time=job.created_at, update_time=updated,
        metadata=dict(job.spec.metadata), urls=links(base, job.id))


def workflow_of(job: Job) -> schemas.JobWorkflow:
    """The graph the job runs (``format: api``); for a registry job, as rendered."""
    graph = job.spec.graph if job.spec.graph is not None else job.items[0].graph
    return schemas.JobWorkflow(workflow=dict(graph or {}), format="api")
