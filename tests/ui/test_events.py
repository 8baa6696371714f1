"""Reading a job's event stream into what a card shows (pure)."""

from __future__ import annotations

import base64
import json
from typing import Any

from ui.events import Frame, JobProgress, apply, parse_frames


def _sse(*events: tuple[int, str, dict[str, Any]]) -> list[str]:
    lines = [": keep-alive", ""]
    for ident, kind, data in events:
        lines += [f"id: {ident}", f"event: {kind}", f"data: {json.dumps(data)}", ""]
    return lines


def _fold(*events: tuple[int, str, dict[str, Any]]) -> JobProgress:
    progress = JobProgress("j1")
    for frame in parse_frames(_sse(*events)):
        progress = apply(progress, frame)
    return progress


def test_frames_are_parsed_and_keep_alives_skipped() -> None:
    frames = list(parse_frames(_sse((3, "queued", {"count": 1}))))
    assert frames == [Frame(3, "queued", {"count": 1})]


def test_a_frame_without_valid_json_data_is_skipped() -> None:
    assert list(parse_frames(["event: x", "data: {nope", "", "event: y", ""])) == []


def test_progress_names_the_server_the_graph_node_and_the_step() -> None:
    progress = _fold(
        (1, "dispatched", {"item": 0, "node": "gpu-a", "prompt_id": "p", "attempt": 1}),
        (2, "progress", {"item": 0, "node": "gpu-a", "node_id": "3", "class_type": "KSampler",
                         "value": 5, "max": 20, "item_fraction": 0.25, "fraction": 0.25}))
    item = progress.item(0)
    assert (item.server, item.node_id, item.class_type, item.step, item.steps) == (
        "gpu-a", "3", "KSampler", 5, 20)
    assert progress.fraction == 0.25 and progress.status == "running"
    assert progress.last_id == 2


def test_the_latest_preview_replaces_the_one_before() -> None:
    first, second = base64.b64encode(b"one").decode(), base64.b64encode(b"two").decode()
    progress = _fold((1, "preview", {"item": 0, "mime": "image/png", "image": first}),
                     (2, "preview", {"item": 0, "mime": "image/png", "image": second}))
    assert progress.item(0).preview == b"two"


def test_a_failure_that_will_be_retried_puts_the_image_back_in_the_queue() -> None:
    progress = _fold((1, "item_failed", {"item": 1, "node": "a", "message": "reset",
                                         "will_retry": True}))
    assert (progress.item(1).status, progress.item(1).error) == ("queued", "reset")


def test_the_snapshot_then_finished_end_the_stream_state() -> None:
    progress = _fold((4, "snapshot", {"status": "running", "progress": 0.5,
                                      "items": [{"index": 0, "status": "running",
                                                 "node": "b", "seed": 1, "error": None}]}),
                     (5, "output", {"item": 0, "output_id": "o", "node_id": "9",
                                    "mime": "image/png", "filename": "x.png"}),
                     (6, "finished", {"status": "succeeded"}))
    assert progress.finished and progress.fraction == 1.0
    assert progress.item(0).server == "b" and progress.item(0).status == "succeeded"
