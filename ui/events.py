"""A job's event stream read into what a job card shows (pure).

``parse_frames`` turns Server-Sent Events lines into frames; ``apply`` folds one frame into
a :class:`JobProgress`: overall percent, and per image the ComfyUI node server, the graph
node that runs now, its step, and the latest preview image. Only the stream carries these
(``GET /v1/jobs/{id}`` has statuses, not steps or previews), so the card reads both.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

TERMINAL = frozenset({"succeeded", "partially_failed", "failed", "canceled", "expired"})


@dataclass(frozen=True)
class Frame:
    """One SSE event: ``id`` is the event's number within its job (for resuming)."""

    id: int | None
    event: str
    data: dict[str, Any]


def parse_frames(lines: Iterable[str | bytes]) -> Iterator[Frame]:
    """The frames in ``lines`` (comments and keep-alives skipped, bad data skipped)."""
    fields: dict[str, str] = {}
    for raw in lines:
        line = raw.decode() if isinstance(raw, bytes) else raw
        if line == "":
            frame = _frame(fields)
            fields = {}
            if frame is not None:
                yield frame
        elif not line.startswith(":"):
            key, _, value = line.partition(":")
            fields[key] = fields.get(key, "") + value.removeprefix(" ")


def _frame(fields: dict[str, str]) -> Frame | None:
    try:
        data = json.loads(fields["data"])
    except (KeyError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    ident = fields.get("id", "")
    return Frame(int(ident) if ident.isdigit() else None, fields.get("event", "message"), data)


@dataclass(frozen=True)
class ItemProgress:
    """One image of a job while it runs."""

    status: str = "queued"
    server: str | None = None  # the ComfyUI node server (pool member) running it
    node_id: str | None = None  # the graph node executing now
    class_type: str | None = None
    step: int | None = None
    steps: int | None = None
    fraction: float = 0.0
    preview: bytes | None = field(default=None, repr=False)
    preview_mime: str = "image/jpeg"
    error: str | None = None


@dataclass(frozen=True)
class JobProgress:
    """What the stream said so far; ``last_id`` resumes it after a reconnect."""

    job_id: str
    status: str = "queued"
    fraction: float = 0.0
    items: dict[int, ItemProgress] = field(default_factory=dict)
    last_id: int | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL

    def item(self, index: int) -> ItemProgress:
        return self.items.get(index, ItemProgress())


def apply(progress: JobProgress, frame: Frame) -> JobProgress:
    """``progress`` after ``frame``; unknown event types only advance ``last_id``."""
    handler = _HANDLERS.get(frame.event)
    updated = handler(progress, frame.data) if handler else progress
    if frame.id is not None:
        updated = replace(updated, last_id=frame.id)
    return updated


def _with_item(progress: JobProgress, index: int, **changes: Any) -> JobProgress:
    items = dict(progress.items)
    items[index] = replace(progress.item(index), **changes)
    return replace(progress, items=items)


def _snapshot(progress: JobProgress, data: dict[str, Any]) -> JobProgress:
    updated = replace(progress, status=str(data.get("status", progress.status)),
                      fraction=float(data.get("progress", progress.fraction)))
    for item in data.get("items", []):
        updated = _with_item(updated, int(item["index"]), status=str(item["status"]),
                             server=item.get("node"), error=item.get("error"))
    return updated


def _dispatched(progress: JobProgress, data: dict[str, Any]) -> JobProgress:
    return _with_item(replace(progress, status="running"), int(data["item"]),
                      status="dispatched", server=data.get("node"), error=None)


def _started(progress: JobProgress, data: dict[str, Any]) -> JobProgress:
    return _with_item(replace(progress, status="running"), int(data["item"]),
                      status="running", server=data.get("node"))


def _progress(progress: JobProgress, data: dict[str, Any]) -> JobProgress:
    updated = replace(progress, status="running", fraction=float(data.get("fraction", 0.0)))
    return _with_item(updated, int(data["item"]), status="running", server=data.get("node"),
                      node_id=data.get("node_id"), class_type=data.get("class_type"),
                      step=data.get("value"), steps=data.get("max"),
                      fraction=float(data.get("item_fraction", 0.0)))


def _preview(progress: JobProgress, data: dict[str, Any]) -> JobProgress:
    try:
        image = base64.b64decode(str(data.get("image", "")), validate=True)
    except (binascii.Error, ValueError):
        return progress
    return _with_item(progress, int(data["item"]), preview=image,
                      preview_mime=str(data.get("mime", "image/jpeg")))


def _output(progress: JobProgress, data: dict[str, Any]) -> JobProgress:
    return _with_item(progress, int(data["item"]), status="succeeded", fraction=1.0)


def _item_failed(progress: JobProgress, data: dict[str, Any]) -> JobProgress:
    status = "queued" if data.get("will_retry") else "failed"
    return _with_item(progress, int(data["item"]), status=status,
                      error=str(data.get("message", "")))


def _finished(progress: JobProgress, data: dict[str, Any]) -> JobProgress:
    status = str(data.get("status", "succeeded"))
    fraction = 1.0 if status == "succeeded" else progress.fraction
    return replace(progress, status=status, fraction=fraction)


_HANDLERS = {
    "snapshot": _snapshot, "dispatched": _dispatched, "started": _started,
    "progress": _progress, "preview": _preview, "output": _output,
    "item_failed": _item_failed, "finished": _finished,
}
