"""A job's events as Server-Sent Events, resumable with ``Last-Event-ID``.

Each event is sent as ``id: <seq>`` / ``event: <type>`` / ``data: <json>``; ``seq`` is the
event's number within its job (``events.py``), so a client that reconnects with the last
id it saw gets every later event the bus still holds. A comment line is sent whenever the
job is quiet for ``keepalive`` seconds, so proxies and clients keep the stream open. The
stream is the core's (``Orchestrator.follow``): it ends after the job's terminal event.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, Protocol

from pydantic import BaseModel

from orchestrator.events import PreviewEvent
from orchestrator.web.digits import parse_decimal
from orchestrator.web.errors import InvalidRequest

KEEPALIVE_COMMENT = b": keep-alive\n\n"


class Events(Protocol):
    """A job's events as the façade gives them (``follow``, ``follow_for``): iterated,
    then closed however the stream stops."""

    def __aiter__(self) -> AsyncIterator[BaseModel | None]: ...

    async def aclose(self) -> None: ...


def parse_last_event_id(value: str | None) -> int | None:
    """The event number a client resumes after, or None for a fresh stream."""
    if value is None or value.strip() == "":
        return None
    seq = parse_decimal(value.strip())
    if seq is None:
        raise InvalidRequest(f"Last-Event-ID {value[:40]!r} is not an event id this "
                             "service sent")
    return seq


def frame(name: str, data: Any, *, event_id: int | None = None) -> bytes:
    """One SSE frame, the one way every face writes one: ``id:`` (only for a stream a
    client can resume), ``event:`` and one compact JSON ``data:`` line."""
    head = "" if event_id is None else f"id: {event_id}\n"
    text = json.dumps(data, separators=(",", ":"))
    return f"{head}event: {name}\ndata: {text}\n\n".encode()


def encode(event: BaseModel) -> bytes:
    """One SSE frame for ``event``."""
    return frame(getattr(event, "type", "message"), _payload(event),
                 event_id=getattr(event, "seq", 0))


def _payload(event: BaseModel) -> dict[str, Any]:
    if isinstance(event, PreviewEvent):
        data = event.model_dump(mode="json", exclude={"image"})
        data["image"] = base64.b64encode(event.image).decode()
        return data
    return event.model_dump(mode="json")


async def stream(events: Events) -> AsyncIterator[bytes]:
    """The frames of a job's events (``Orchestrator.follow`` with a ``keepalive``): a
    keep-alive comment for each quiet ``None``; ends when the events end, and closes
    them however the stream stops (a client that left releases its subscription)."""
    async with contextlib.aclosing(events):
        async for event in events:
            yield KEEPALIVE_COMMENT if event is None else encode(event)
