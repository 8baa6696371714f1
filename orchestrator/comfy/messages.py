"""ComfyUI websocket frames → typed messages (pure: no sockets here).

Text frames are ``{"type": EVENT, "data": {...}}``; binary frames start with a 4-byte
big-endian event type (1 = preview image, 4 = preview with JSON metadata, 3 = progress
text). See ``comfyui-protocol.md`` for when each is sent.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from typing import Any

from orchestrator.errors import NodeProtocolError


@dataclass(frozen=True)
class Message:
    """Base of every parsed frame; ``prompt_id`` is None when the frame carries none."""

    prompt_id: str | None


@dataclass(frozen=True)
class Status(Message):
    queue_remaining: int


@dataclass(frozen=True)
class ExecutionStart(Message):
    timestamp: int | None = None


@dataclass(frozen=True)
class ExecutionCached(Message):
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Executing(Message):
    """A node is about to run; ``node`` None is the real end of the prompt."""

    node: str | None = None
    display_node: str | None = None


@dataclass(frozen=True)
class Progress(Message):
    node: str | None = None
    value: int = 0
    max: int = 1


@dataclass(frozen=True)
class NodeState:
    value: float
    max: float
    state: str


@dataclass(frozen=True)
class ProgressState(Message):
    nodes: dict[str, NodeState] = field(default_factory=dict)


@dataclass(frozen=True)
class Executed(Message):
    node: str = ""
    output: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ExecutionSuccess(Message):
    timestamp: int | None = None


@dataclass(frozen=True)
class ExecutionError(Message):
    node_id: str | None = None
    node_type: str | None = None
    exception_message: str = ""
    exception_type: str = ""
    traceback: tuple[str, ...] = ()


@dataclass(frozen=True)
class ExecutionInterrupted(Message):
    node_id: str | None = None
    node_type: str | None = None


@dataclass(frozen=True)
class Preview(Message):
    """A binary preview frame; ``prompt_id`` is only known for the metadata variant."""

    image: bytes = b""
    mime: str = "image/jpeg"
    node_id: str | None = None


@dataclass(frozen=True)
class Unknown(Message):
    """An event this client does not interpret (kept so relays can pass it on)."""

    type: str = ""
    data: Any = None


_IMAGE_TYPES = {1: "image/jpeg", 2: "image/png"}
PREVIEW_IMAGE = 1
PROGRESS_TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4


def parse_message(frame: str | bytes) -> Message:
    """Turn one websocket frame into a typed message.

    Raises ``NodeProtocolError`` (with url "") for frames that are not ComfyUI's: the
    client fills the URL in when it re-raises.
    """
    if isinstance(frame, bytes):
        return _parse_binary(frame)
    try:
        obj = json.loads(frame)
        kind, data = obj["type"], obj.get("data") or {}
    except (ValueError, KeyError, TypeError) as exc:
        raise NodeProtocolError("", f"unreadable websocket frame {frame[:80]!r}") from exc
    parser = _TEXT_PARSERS.get(kind)
    if parser is None:
        return Unknown(data.get("prompt_id") if isinstance(data, dict) else None, kind, data)
    try:
        message: Message = parser(data)
        return message
    except (KeyError, TypeError, ValueError) as exc:
        raise NodeProtocolError("", f"malformed {kind!r} event: {data!r:.200}") from exc


def _parse_binary(frame: bytes) -> Message:
    if len(frame) < 4:
        raise NodeProtocolError("", "binary websocket frame shorter than 4 bytes")
    (event,) = struct.unpack(">I", frame[:4])
    if event == PREVIEW_IMAGE and len(frame) >= 8:
        (image_type,) = struct.unpack(">I", frame[4:8])
        return Preview(None, frame[8:], _IMAGE_TYPES.get(image_type, "image/jpeg"))
    if event == PREVIEW_IMAGE_WITH_METADATA and len(frame) >= 8:
        (length,) = struct.unpack(">I", frame[4:8])
        meta = json.loads(frame[8:8 + length])
        image = frame[8 + length:]
        mime = meta.get("image_type") or "image/jpeg"
        return Preview(meta.get("prompt_id"), image, mime, str(meta.get("node_id") or "") or None)
    return Unknown(None, f"binary:{event}", frame[4:])


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _status(d: dict[str, Any]) -> Message:
    info = d.get("status", {}).get("exec_info", {})
    return Status(None, int(info.get("queue_remaining", 0)))


def _progress_state(d: dict[str, Any]) -> Message:
    nodes = {
        str(k): NodeState(float(v.get("value", 0)), float(v.get("max", 1)), str(v.get("state", "")))
        for k, v in (d.get("nodes") or {}).items()
    }
    return ProgressState(d.get("prompt_id"), nodes)


def _execution_error(d: dict[str, Any]) -> Message:
    return ExecutionError(
        d.get("prompt_id"), _opt_str(d.get("node_id")), _opt_str(d.get("node_type")),
        str(d.get("exception_message", "")), str(d.get("exception_type", "")),
        tuple(str(line) for line in d.get("traceback") or ()),
    )


_TEXT_PARSERS: dict[str, Any] = {
    "status": _status,
    "execution_start": lambda d: ExecutionStart(d["prompt_id"], d.get("timestamp")),
    "execution_cached": lambda d: ExecutionCached(
        d["prompt_id"], tuple(str(n) for n in d.get("nodes") or ())
    ),
    "executing": lambda d: Executing(
        d.get("prompt_id"), _opt_str(d.get("node")), _opt_str(d.get("display_node"))
    ),
    "progress": lambda d: Progress(
        d.get("prompt_id"), _opt_str(d.get("node")), int(d["value"]), int(d["max"])
    ),
    "progress_state": _progress_state,
    "executed": lambda d: Executed(d.get("prompt_id"), str(d["node"]), d.get("output") or {}),
    "execution_success": lambda d: ExecutionSuccess(d["prompt_id"], d.get("timestamp")),
    "execution_error": _execution_error,
    "execution_interrupted": lambda d: ExecutionInterrupted(
        d["prompt_id"], _opt_str(d.get("node_id")), _opt_str(d.get("node_type"))
    ),
}
