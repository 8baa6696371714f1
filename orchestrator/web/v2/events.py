"""``GET /api/v2/jobs/{id}/events``: the job's live state as v2 Server-Sent Events.

A translation of the façade's one event stream (``Orchestrator.follow``). It starts with
a snapshot, on which the job is read from the store (``Translator.connected``), so a
client that connects late (even after the job ended) never waits for an event that
already happened; an event that lands between the snapshot and the read is seen twice,
which the translator absorbs (status changes, monotonic progress and outputs are each
sent once). Frames are ``event: NAME`` / ``data: JSON`` with no ids
(the contract has no resume):

- on connect: ``status`` (unless the job already ended), the latest ``progress`` and
  ``preview``, and every ``output`` recorded so far;
- then ``status`` on each change, ``progress``, ``preview``, ``output``;
- at the end every output not yet sent, then the terminal ``status``, after which the
  SDK stops reading — so no output may come after it.
  A success is told from its ``finished`` event alone: each of its outputs was
  recorded and announced before it, so none is left unsent.

``Translator`` is the state machine (events in, frames out); ``stream`` is its async shell,
sending a keep-alive comment whenever the job is quiet for ``keepalive`` seconds.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

import anyio
from pydantic import BaseModel

from orchestrator.errors import JobNotFound
from orchestrator.events import (
    Dispatched,
    Finished,
    OutputEvent,
    PreviewEvent,
    ProgressEvent,
    Snapshot,
    Started,
)
from orchestrator.jobs import Job, JobStatus
from orchestrator.outputs import OutputRecord
from orchestrator.service import Orchestrator
from orchestrator.web import sse
from orchestrator.web.v2 import mapping, queue, schemas

Frame = tuple[str, BaseModel]


@dataclass
class Translator:
    """Turns one job's bus events into v2 frames; ``done`` once the terminal status is out."""

    orch: Orchestrator
    job_id: str
    base: str
    position: Callable[[Job], int | None]
    now: Callable[[], datetime]
    done: bool = False
    sent_outputs: set[str] = field(default_factory=set)
    last_status: str | None = None
    best_progress: float = -1.0
    job: Job | None = None
    # The stream's first snapshot was answered already (``greet``): it needs no frames.
    greeted: bool = False

    def reads_store(self, event: BaseModel) -> bool:
        """Whether translating ``event`` reads the store (then it belongs in a worker
        thread, off the event loop); progress, previews and status changes do not."""
        if isinstance(event, ProgressEvent):
            return self.job is None
        if isinstance(event, Snapshot):
            return not self.greeted
        if isinstance(event, Finished):
            return not self._told_by(event)
        return isinstance(event, OutputEvent)

    def greet(self, seen: Job | None = None,
              positions: Mapping[str, int | None] | None = None) -> list[Frame]:
        """``connected``, made where the stream is opened (in the same worker thread, after
        subscribing), so the snapshot that then arrives first costs no second read.
        ``seen`` and ``positions``: the job and its queued items' places as the stream's
        opening read found them (``Following.view``), so the job is not read again."""
        self.greeted = True
        return self.connected(seen, positions)

    def frames(self, event: BaseModel) -> list[Frame]:
        """The frames ``event`` calls for (often none)."""
        if isinstance(event, Snapshot):
            if self.greeted:
                self.greeted = False  # a later snapshot (a retried job) is answered
                return []
            return self.connected()
        if isinstance(event, Dispatched | Started):
            return self._status("running", None)
        if isinstance(event, ProgressEvent):
            return self._progress(mapping.live_progress(self.job or self._job(), event))
        if isinstance(event, PreviewEvent):
            return [("preview", _preview(event, self._current_node()))]
        if isinstance(event, OutputEvent):
            return self._outputs([self.orch.output(event.output_id)])
        if isinstance(event, Finished):
            return self._succeeded() if self._told_by(event) else self._ended()
        return []

    def _told_by(self, event: Finished) -> bool:
        """Whether the end's frames need nothing but ``event``: a success is final (a retry
        requeues only failed or canceled items) and every output it made was announced,
        each recorded, before it and went through this stream (its opening frames listed
        those recorded before it, its events the rest); the graph, for the progress, was
        kept from the job's first read."""
        return event.status == JobStatus.SUCCEEDED.value and self.job is not None

    def _succeeded(self) -> list[Frame]:
        assert self.job is not None  # ``_told_by``
        frames = self._progress(mapping.complete_progress(mapping.nodes_total(self.job)))
        frames.append(("status", schemas.StatusEvent(status="succeeded", queue_position=None)))
        self.done = True
        return frames

    def connected(self, seen: Job | None = None,
                  positions: Mapping[str, int | None] | None = None) -> list[Frame]:
        """The frames for a client that just connected: where the job stands now (as
        ``seen``, when the caller has just read it, with its items' ``positions``)."""
        job = self._job() if seen is None else self._keep(seen)
        if job.status.terminal:
            return self._finished(job)
        status = mapping.status_of(job)
        queued = job.status == JobStatus.QUEUED
        frames = self._status(status, self._position(job, positions) if queued else None)
        frames += self._progress_now(job)
        preview = self.orch.latest_event(job.id, PreviewEvent)
        if preview is not None:
            frames.append(("preview", _preview(preview, self._current_node())))
        return frames + self._outputs(self.orch.outputs_of(job.id))

    def _position(self, job: Job, positions: Mapping[str, int | None] | None
                  ) -> int | None:
        """The job's 1-based place in the queue: from ``positions`` (claims ahead of each
        queued item) when given, else asked of the store."""
        return self.position(job) if positions is None else queue.place(job, positions.get)

    def _ended(self) -> list[Frame]:
        """The job's end: the job and its outputs' ids in one read of the store, and only
        the outputs not sent yet (most were, as their events came) read each."""
        view = self.orch.job_view(self.job_id)
        job = self._keep(view.job)
        ids = [oid for item in job.items for oid in item.output_ids] + view.unlisted_outputs
        unsent = [oid for oid in ids if oid not in self.sent_outputs]
        return self._finished(job, self._records(unsent))

    def _records(self, output_ids: list[str]) -> list[OutputRecord]:
        records = []
        for output_id in output_ids:
            try:
                records.append(self.orch.output(output_id))
            except JobNotFound:
                continue  # deleted meanwhile: nothing to send
        return records

    def _finished(self, job: Job, records: list[OutputRecord] | None = None
                  ) -> list[Frame]:
        if not job.status.terminal:
            return []  # a Finished of an earlier run (a retried job): it goes on
        frames = self._progress_now(job)
        frames += self._outputs(self.orch.outputs_of(job.id) if records is None else records)
        frames.append(("status", schemas.StatusEvent(status=mapping.status_of(job),
                                                     queue_position=None)))
        self.done = True
        return frames

    def _status(self, status: schemas.JobStatusName, position: int | None) -> list[Frame]:
        if status == self.last_status or self.done:
            return []
        self.last_status = status
        return [("status", schemas.StatusEvent(status=status, queue_position=position))]

    def _progress_now(self, job: Job) -> list[Frame]:
        """The job's progress snapshot as it stands (none while it waits)."""
        progress = mapping.progress_of(job, self.orch.latest_event(job.id, ProgressEvent),
                                       self.orch.progress_of(job))
        return self._progress(progress) if progress is not None else []

    def _progress(self, progress: schemas.Progress) -> list[Frame]:
        if progress.value < self.best_progress:
            return []  # a late event from before a failover: never go backwards
        self.best_progress = progress.value
        return [("progress", progress)]

    def _outputs(self, records: list[OutputRecord]) -> list[Frame]:
        now = self.now()
        fresh = [r for r in records if r.id not in self.sent_outputs]
        self.sent_outputs.update(r.id for r in fresh)
        return [("output", mapping.output_of(r, self.base, now)) for r in fresh]

    def _job(self) -> Job:
        """The job as the store has it now; kept for progress, which needs only its graph
        (that never changes)."""
        return self._keep(self.orch.get(self.job_id))

    def _keep(self, job: Job) -> Job:
        self.job = job
        return job

    def _current_node(self) -> str:
        found = self.orch.latest_event(self.job_id, ProgressEvent)
        return (found.node_id or "") if found else ""



def _preview(event: PreviewEvent, node_id: str) -> schemas.PreviewEvent:
    return schemas.PreviewEvent(node_id=node_id, content_type=event.mime,
                                data_base64=base64.b64encode(event.image).decode())


def encode(frame: Frame) -> bytes:
    """One SSE frame: ``event:`` and ``data:`` lines, no id (the stream has no resume)."""
    name, payload = frame
    return sse.frame(name, schemas.dump(payload))


async def stream(orch: Orchestrator, translator: Translator, *, keepalive: float,
                 opened: sse.Events | None = None,
                 greeting: list[Frame] | None = None) -> AsyncIterator[bytes]:
    """The job's frames until its terminal status: where it stands on connect, then each
    change, and a keep-alive comment after each quiet ``keepalive`` seconds.

    ``opened``: the job's events already followed (``Orchestrator.follow_for``, which
    checked the caller's access), used first and closed however the stream stops;
    ``greeting``: the frames ``Translator.greet`` made for it, sent first. A stream that
    ends on an earlier run's end (a retried job) follows the job again; one that ends
    because the service closes just stops.
    """
    try:
        for frame in greeting or ():
            yield encode(frame)
        again = True
        while again and not translator.done:
            again = False
            followed: sse.Events = opened if opened is not None else orch.follow(
                translator.job_id, keepalive=keepalive)
            opened = None
            # Closed here, not whenever it is collected: a client that leaves ends its
            # subscription at once.
            async with contextlib.aclosing(followed) as events:
                async for event in events:
                    if event is None:
                        yield sse.KEEPALIVE_COMMENT
                        continue
                    for frame in await _frames(translator, event):
                        yield encode(frame)
                    again = _ends(event)
    finally:
        if opened is not None:  # never iterated: a greeting that ended the job, or a
            await opened.aclose()  # client that left during it


def _ends(event: BaseModel) -> bool:
    """Whether ``follow`` stops after ``event`` (the job's end, as it saw it)."""
    return isinstance(event, Finished) or (
        isinstance(event, Snapshot) and JobStatus(event.status).terminal)


async def _frames(translator: Translator, event: BaseModel) -> list[Frame]:
    if translator.reads_store(event):
        return await anyio.to_thread.run_sync(translator.frames, event)
    return translator.frames(event)
