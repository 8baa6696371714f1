"""A job's events as Server-Sent Events, resumable with ``Last-Event-ID``.

Each event is sent as ``id: <seq>`` / ``event: <type>`` / ``data: <json>``; ``seq`` is the
event's number within its job (``events.py``), so a client that reconnects with the last
id it saw gets every later event the bus still holds. A comment line is sent whenever the
job is quiet for ``keepalive`` seconds, so proxies and clients keep the stream open. The
stream ends after the job's terminal event.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel

from orchestrator.events import Finished, PreviewEvent, Snapshot, Subscription
from orchestrator.jobs import JobStatus
from orchestrator.service import Orchestrator
from orchestrator.web.digits import parse_decimal
from orchestrator.web.errors import InvalidRequest

KEEPALIVE_COMMENT = b": keep-alive\n\n"


def parse_last_event_id(value: str | None) -> int | None:
    """The event number a client resumes after, or None for a fresh stream."""
    if value is None or value.strip() == "":
        return None
    seq = parse_decimal(value.strip())
    if seq is None:
        raise InvalidRequest(f"Last-Event-ID {value[:40]!r} is not an event id this "
                             "service sent")
    return seq


def subscribe(orch: Orchestrator, job_id: str, after: int | None) -> Subscription:
    """Resume after ``after`` when the bus still holds what follows it; otherwise start
    with a snapshot (a fresh client, ids from before a restart, or a job that ended)."""
    if after is None or after > orch.bus.last_seq(job_id):
        return orch.events(job_id)
    if after == orch.bus.last_seq(job_id) and orch.get(job_id).status.terminal:
        return orch.events(job_id)  # nothing newer will come: end with a snapshot
    return orch.events(job_id, after=after)


def encode(event: BaseModel) -> bytes:
    """One SSE frame for ``event``."""
    kind = getattr(event, "type", "message")
    seq = getattr(event, "seq", 0)
    data = json.dumps(_payload(event), separators=(",", ":"))
    return f"id: {seq}\nevent: {kind}\ndata: {data}\n\n".encode()


def _payload(event: BaseModel) -> dict[str, Any]:
    if isinstance(event, PreviewEvent):
        data = event.model_dump(mode="json", exclude={"image"})
        data["image"] = base64.b64encode(event.image).decode()
        return data
    return event.model_dump(mode="json")


def is_last(event: BaseModel) -> bool:
    """After this event nothing more comes for the job."""
    if isinstance(event, Finished):
        return True
    return isinstance(event, Snapshot) and JobStatus(event.status).terminal


async def stream(sub: Subscription, *, keepalive: float) -> AsyncIterator[bytes]:
    """The frames of ``sub`` until the job ends; closes ``sub`` however the stream stops."""
    try:
        while True:
            event = await sub.aget(keepalive)
            if event is None:
                if sub.closed:
                    return
                yield KEEPALIVE_COMMENT
                continue
            yield encode(event)
            if is_last(event):
                return
    finally:
        sub.close()
