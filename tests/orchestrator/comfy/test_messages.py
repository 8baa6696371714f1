"""Websocket frames become typed messages; foreign frames are named, not crashed on."""

import json
import struct

import pytest

from orchestrator.comfy.messages import (
    Executed,
    Executing,
    ExecutionCached,
    ExecutionError,
    Preview,
    Progress,
    ProgressState,
    Status,
    Unknown,
    parse_message,
)
from orchestrator.errors import NodeProtocolError


def frame(kind: str, **data: object) -> str:
    return json.dumps({"type": kind, "data": data})


def test_status_carries_queue_remaining() -> None:
    msg = parse_message(json.dumps({"type": "status",
                                    "data": {"status": {"exec_info": {"queue_remaining": 3}}}}))
    assert msg == Status(None, 3)


def test_executing_null_node_is_the_end_marker() -> None:
    msg = parse_message(frame("executing", node=None, prompt_id="p1"))
    assert isinstance(msg, Executing) and msg.node is None and msg.prompt_id == "p1"


def test_progress_and_cached_nodes_keep_ids_as_strings() -> None:
    assert parse_message(frame("progress", value=2, max=4, node=3, prompt_id="p")) == Progress(
        "p", "3", 2, 4)
    cached = parse_message(frame("execution_cached", nodes=[4, "6"], prompt_id="p"))
    assert cached == ExecutionCached("p", ("4", "6"))


def test_progress_state_maps_each_node() -> None:
    msg = parse_message(frame("progress_state", prompt_id="p",
                              nodes={"3": {"value": 1, "max": 4, "state": "running"}}))
    assert isinstance(msg, ProgressState)
    assert msg.nodes["3"].state == "running" and msg.nodes["3"].max == 4


def test_execution_error_keeps_node_class_and_message() -> None:
    msg = parse_message(frame("execution_error", prompt_id="p", node_id="2",
                              node_type="OrchTestFail", exception_message="boom\n",
                              exception_type="RuntimeError", traceback=["a", "b"]))
    assert msg == ExecutionError("p", "2", "OrchTestFail", "boom\n", "RuntimeError", ("a", "b"))


def test_executed_keeps_the_ui_output() -> None:
    out = {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}
    assert parse_message(frame("executed", node="9", output=out, prompt_id="p")) == Executed(
        "p", "9", out)


def test_binary_preview_without_metadata() -> None:
    msg = parse_message(struct.pack(">II", 1, 2) + b"PNGDATA")
    assert msg == Preview(None, b"PNGDATA", "image/png")


def test_binary_preview_with_metadata_names_its_prompt() -> None:
    meta = json.dumps({"prompt_id": "p", "node_id": "3", "image_type": "image/jpeg"}).encode()
    msg = parse_message(struct.pack(">II", 4, len(meta)) + meta + b"JPEG")
    assert msg == Preview("p", b"JPEG", "image/jpeg", "3")


def test_unknown_events_are_kept_for_relays() -> None:
    msg = parse_message(frame("crystools.monitor", cpu=3))
    assert isinstance(msg, Unknown) and msg.type == "crystools.monitor"


@pytest.mark.parametrize("bad", ["not json", json.dumps({"data": {}}), b"\x00\x01"])
def test_garbage_frames_raise_protocol_error(bad: str | bytes) -> None:
    with pytest.raises(NodeProtocolError):
        parse_message(bad)
