"""Our job events → ComfyUI websocket frames (pure)."""

from __future__ import annotations

import json
import struct
from typing import Any

from orchestrator.events import OutputEvent, PreviewEvent, ProgressEvent, Queued, Started
from orchestrator.jobs import Item, ItemError, ItemStatus, Job, JobSpec
from orchestrator.web.gateway.relay import (
    PreviewFrame,
    PromptRelay,
    encode_preview,
    status_message,
)

GRAPH = {"1": {"class_type": "OrchTestSleep", "inputs": {}},
         "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}}}
OUTPUT_ID = "0123456789abcdef0123456789abcdef"


def _job(status: ItemStatus, error: ItemError | None = None) -> Job:
    return Job(id="p1", spec=JobSpec(graph=GRAPH),
               items=[Item(id="i1", job_id="p1", index=0, status=status, error=error)])


def _progress(node: str | None, value: int | None = None, most: int | None = None
              ) -> ProgressEvent:
    return ProgressEvent(job_id="p1", item=0, node="n", node_id=node, class_type=None,
                         value=value, max=most, item_fraction=0.0, fraction=0.0)


def _texts(frames: list[Any]) -> list[dict[str, Any]]:
    return [json.loads(f) for f in frames if isinstance(f, str)]


def _run(relay: PromptRelay, *events: Any) -> list[dict[str, Any]]:
    frames: list[Any] = []
    for event in events:
        frames += relay.translate(event, queue_remaining=lambda: 3)
    return _texts(frames)


def test_queued_and_started_become_status_start_and_cached() -> None:
    relay = PromptRelay("p1")

    out = _run(relay, Queued(job_id="p1", count=1), Started(job_id="p1", item=0, node="n"),
               Started(job_id="p1", item=0, node="other"))

    assert [m["type"] for m in out] == ["status", "status", "execution_start",
                                        "execution_cached"]
    assert out[0]["data"] == {"status": {"exec_info": {"queue_remaining": 3}}}
    assert out[3]["data"]["nodes"] == [] and out[3]["data"]["prompt_id"] == "p1"


def test_a_new_node_is_executing_and_steps_are_progress() -> None:
    relay = PromptRelay("p1")

    out = _run(relay, _progress(None), _progress("1"), _progress("1", 1, 4),
               _progress("1", 1, 4), _progress("1", 2, 4), _progress("2"))

    assert [m["type"] for m in out] == [
        "executing", "progress_state", "progress_state", "progress", "progress_state",
        "progress", "executing", "progress_state"]
    assert out[0]["data"] == {"node": "1", "display_node": "1", "prompt_id": "p1"}
    assert out[3]["data"] == {"value": 1, "max": 4, "prompt_id": "p1", "node": "1"}
    assert out[-1]["data"]["nodes"]["1"]["state"] == "finished"
    assert out[-1]["data"]["nodes"]["2"]["state"] == "running"


def test_success_sends_executed_per_node_then_success_status_and_the_end() -> None:
    relay = PromptRelay("p1")
    _run(relay, Started(job_id="p1", item=0, node="n"), _progress("2"),
         OutputEvent(job_id="p1", item=0, output_id=OUTPUT_ID, node_id="2",
                     mime="image/png", filename="ComfyUI_00001_.png"))

    out = _texts(relay.finish(_job(ItemStatus.SUCCEEDED), queue_remaining=0))

    assert [m["type"] for m in out] == ["executed", "execution_success", "status", "executing"]
    assert out[0]["data"]["output"] == {"images": [
        {"filename": OUTPUT_ID + ".png", "subfolder": "", "type": "output"}]}
    assert out[-1]["data"] == {"node": None, "prompt_id": "p1"}


def test_failure_sends_execution_error_with_the_node_and_exception() -> None:
    error = ItemError(code="execution_error", node_id="1", class_type="OrchTestSleep",
                      message="node 1 (OrchTestSleep) failed: ValueError: bad input",
                      traceback=["line 1"])
    relay = PromptRelay("p1")

    out = _texts(relay.finish(_job(ItemStatus.FAILED, error), queue_remaining=0))

    data = out[0]["data"]
    assert out[0]["type"] == "execution_error"
    assert (data["node_id"], data["node_type"]) == ("1", "OrchTestSleep")
    assert (data["exception_type"], data["exception_message"]) == ("ValueError", "bad input\n")
    assert data["traceback"] == ["line 1"]


def test_cancel_sends_execution_interrupted_naming_the_running_node() -> None:
    relay = PromptRelay("p1")
    _run(relay, _progress("1"))

    out = _texts(relay.finish(_job(ItemStatus.CANCELED), queue_remaining=0))

    assert out[0]["type"] == "execution_interrupted"
    assert (out[0]["data"]["node_id"], out[0]["data"]["node_type"]) == ("1", "OrchTestSleep")


def test_previews_are_type_1_or_type_4_with_metadata() -> None:
    relay = PromptRelay("p1")
    _run(relay, _progress("1"))
    frame = relay.translate(PreviewEvent(job_id="p1", item=0, mime="image/png", image=b"IMG"),
                            queue_remaining=lambda: 0)[0]
    assert isinstance(frame, PreviewFrame)

    plain = encode_preview(frame, with_metadata=False)
    tagged = encode_preview(frame, with_metadata=True)

    assert plain == struct.pack(">II", 1, 2) + b"IMG"
    kind, length = struct.unpack(">II", tagged[:8])
    assert kind == 4 and tagged.endswith(b"IMG")
    assert json.loads(tagged[8:8 + length])["node_id"] == "1"


def test_a_reconnecting_client_is_told_the_running_node() -> None:
    relay = PromptRelay("p1")
    assert relay.current_executing() is None

    _run(relay, Started(job_id="p1", item=0, node="n"), _progress("1"))

    assert json.loads(relay.current_executing() or "")["data"]["node"] == "1"
    assert json.loads(status_message(2, sid="c"))["data"]["sid"] == "c"
