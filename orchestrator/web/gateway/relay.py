"""Our job events → the websocket messages a ComfyUI client expects for its prompt (pure).

The pool runs each prompt on some node under a prompt id of its own; a ComfyUI client knows
only the id ``POST /prompt`` gave it. ``PromptRelay`` folds one job's events (``events.py``)
into ComfyUI's sequence: ``status``, ``execution_start``, ``execution_cached``, then
``executing`` / ``progress_state`` / ``progress`` per node, binary previews, ``executed``
per output node, ``execution_success`` / ``_error`` / ``_interrupted``, ``status`` and
finally ``executing`` with ``node: null`` (the real end). Output files are named as the
gateway's ``/view`` serves them.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel

from orchestrator.events import OutputEvent, PreviewEvent, ProgressEvent, Queued, Started
from orchestrator.jobs import Job
from orchestrator.web.gateway import history
from orchestrator.web.gateway.nodehistory import NodeResult

PREVIEW_IMAGE = 1
PREVIEW_IMAGE_WITH_METADATA = 4
_IMAGE_TYPES = {"image/jpeg": 1, "image/png": 2}


@dataclass(frozen=True)
class PreviewFrame:
    """A preview image; each socket encodes it as type 1 or 4 (``encode_preview``)."""

    prompt_id: str
    node_id: str | None
    mime: str
    image: bytes = field(repr=False)


Frame = str | PreviewFrame


def message(kind: str, data: dict[str, Any]) -> str:
    """One text frame ``{"type": kind, "data": data}``."""
    return json.dumps({"type": kind, "data": data}, separators=(",", ":"))


def status_message(queue_remaining: int, sid: str | None = None) -> str:
    data: dict[str, Any] = {"status": {"exec_info": {"queue_remaining": queue_remaining}}}
    if sid is not None:
        data["sid"] = sid
    return message("status", data)


def executing_message(prompt_id: str, node: str | None) -> str:
    if node is None:
        return message("executing", {"node": None, "prompt_id": prompt_id})
    return message("executing", {"node": node, "display_node": node, "prompt_id": prompt_id})


def encode_preview(frame: PreviewFrame, *, with_metadata: bool) -> bytes:
    """The binary frame: type 1 + image type + bytes, or type 4 with a JSON header for a
    client that asked for ``supports_preview_metadata``."""
    if not with_metadata:
        head = struct.pack(">II", PREVIEW_IMAGE, _IMAGE_TYPES.get(frame.mime, 1))
        return head + frame.image
    meta = json.dumps({"node_id": frame.node_id, "prompt_id": frame.prompt_id,
                       "display_node_id": frame.node_id, "parent_node_id": None,
                       "real_node_id": frame.node_id, "image_type": frame.mime}).encode()
    return struct.pack(">II", PREVIEW_IMAGE_WITH_METADATA, len(meta)) + meta + frame.image


@dataclass
class PromptRelay:
    """One prompt's translation state: which node runs, which finished, what it output."""

    prompt_id: str
    current: str | None = None
    step: tuple[int, int] | None = None
    finished: list[str] = field(default_factory=list)
    outputs: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    animated: set[str] = field(default_factory=set)
    started: bool = False

    def translate(self, event: BaseModel, *, queue_remaining: Callable[[], int]
                  ) -> list[Frame]:
        """The frames for one event (none for events ComfyUI has no word for).

        ``queue_remaining`` is asked only when a ``status`` frame is due. Call ``finish``
        for the job's terminal event instead.
        """
        if isinstance(event, Queued):
            return [status_message(queue_remaining())]
        if isinstance(event, Started):
            return self._start(history.ms(event.at), queue_remaining)
        if isinstance(event, ProgressEvent):
            return self._progress(event)
        if isinstance(event, PreviewEvent):
            return [PreviewFrame(self.prompt_id, self.current, event.mime, event.image)]
        if isinstance(event, OutputEvent):
            self._remember(event)
        return []

    def _start(self, at: int, queue_remaining: Callable[[], int]) -> list[Frame]:
        if self.started:
            return []  # the item moved to another node: the client already saw the start
        self.started = True
        ids = {"prompt_id": self.prompt_id, "timestamp": at}
        return [status_message(queue_remaining()), message("execution_start", ids),
                message("execution_cached", {"nodes": [], **ids})]

    def _progress(self, event: ProgressEvent) -> list[Frame]:
        frames: list[Frame] = []
        node = event.node_id
        if node is not None and node != self.current:
            if self.current is not None and self.current not in self.finished:
                self.finished.append(self.current)
            self.current, self.step = node, None
            frames += [executing_message(self.prompt_id, node), self._progress_state()]
        if event.value is not None and event.max is not None and node == self.current:
            if (event.value, event.max) != self.step:
                self.step = (event.value, event.max)
                frames += [self._progress_state(), message("progress", {
                    "value": event.value, "max": event.max, "prompt_id": self.prompt_id,
                    "node": node})]
        return frames

    def _progress_state(self) -> str:
        nodes = {node_id: self._node_state(node_id, "finished", 1, 1)
                 for node_id in self.finished}
        if self.current is not None:
            value, most = self.step or (0, 1)
            nodes[self.current] = self._node_state(self.current, "running", value, most)
        return message("progress_state", {"prompt_id": self.prompt_id, "nodes": nodes})

    def _node_state(self, node_id: str, state: str, value: int, most: int) -> dict[str, Any]:
        return {"value": value, "max": most, "state": state, "node_id": node_id,
                "prompt_id": self.prompt_id, "display_node_id": node_id,
                "parent_node_id": None, "real_node_id": node_id}

    def _remember(self, event: OutputEvent) -> None:
        name = event.output_id + PurePosixPath(event.filename).suffix
        key = "audio" if event.mime.startswith("audio/") else "images"
        files = self.outputs.setdefault(event.node_id, [])
        files.append({"filename": name, "subfolder": "", "type": "output", "key": key})
        if event.mime.startswith("video/"):
            self.animated.add(event.node_id)

    def current_executing(self) -> str | None:
        """The ``executing`` frame to resend to a client that reconnects mid-prompt."""
        if not self.started or self.current is None:
            return None
        return executing_message(self.prompt_id, self.current)

    def finish(self, job: Job, *, queue_remaining: int,
               node: NodeResult | None = None) -> list[Frame]:
        """The closing frames once ``job`` is terminal, ending with ``executing`` null.

        ``node`` is what the node that ran it reported (every UI key, the cached nodes);
        without it the output nodes' files are told from our own events.
        """
        kind, data = history.end_message(job)
        data = {**data, "prompt_id": self.prompt_id}
        frames: list[Frame] = []
        if kind == "execution_success":
            frames += self._node_outputs(node) if node is not None else [
                self._executed(node_id) for node_id in self.outputs]
        elif kind == "execution_interrupted":
            data |= {"node_id": self.current, "executed": list(self.finished),
                     "node_type": _class_of(job, self.current)}
        else:
            data["executed"] = list(self.finished)
        return frames + [message(kind, data), status_message(queue_remaining),
                         executing_message(self.prompt_id, None)]

    def _node_outputs(self, node: NodeResult) -> list[Frame]:
        # The cached nodes are known once the node has written its history: told late,
        # before the outputs, so a client still learns which nodes did not run again.
        frames: list[Frame] = []
        if node.cached:
            frames.append(message("execution_cached", {"nodes": list(node.cached),
                                                       "prompt_id": self.prompt_id}))
        return frames + [message("executed", {"node": node_id, "display_node": node_id,
                                              "output": output, "prompt_id": self.prompt_id})
                         for node_id, output in node.outputs.items()]

    def _executed(self, node_id: str) -> str:
        output: dict[str, Any] = {}
        for file in self.outputs[node_id]:
            output.setdefault(file["key"], []).append(
                {k: v for k, v in file.items() if k != "key"})
        if node_id in self.animated:
            output["animated"] = [True]
        return message("executed", {"node": node_id, "display_node": node_id,
                                    "output": output, "prompt_id": self.prompt_id})


def _class_of(job: Job, node_id: str | None) -> str | None:
    node = history.graph_of(job).get(node_id or "")
    return str(node.get("class_type")) if isinstance(node, dict) else None
