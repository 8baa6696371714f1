"""The node's event socket against a real ComfyUI: read in large chunks, every frame of a
burst still arrives whole and in order."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

from orchestrator.comfy.client import ComfyClient
from orchestrator.comfy.messages import Executing, Progress, parse_message
from orchestrator.comfy.stream import RECV_POLL, BufferedWebSocket, NodeStream, open_event_socket
from tests import graphs


def burst_steps(comfy_url: str, reader: Callable[[Any], Callable[[], str | bytes]],
                *, socket_type: type | None = None) -> list[int]:
    """The step numbers of a 40-step prompt sent back to back (no sleep between steps),
    as ``reader(ws)``'s reads parse them, until the prompt's end."""
    client_id = uuid.uuid4().hex
    ws = open_event_socket(comfy_url, client_id, connect_timeout=10, poll=30)
    if socket_type is not None:
        assert isinstance(ws, socket_type)
    recv = reader(ws)
    try:
        with ComfyClient(comfy_url) as client:
            prompt = client.submit(graphs.sleep(seconds=0.0, steps=40,
                                                seed=uuid.uuid4().int % 10**9),
                                   client_id=client_id)
        steps = []
        while True:
            message = parse_message(recv())
            if message.prompt_id != prompt.prompt_id:
                continue
            if isinstance(message, Progress):
                steps.append(message.value)
            if isinstance(message, Executing) and message.node is None:
                return steps
    finally:
        ws.close()


def test_a_burst_of_frames_read_in_chunks_arrives_whole_and_in_order(comfy_url: str) -> None:
    steps = burst_steps(comfy_url, lambda ws: ws.recv, socket_type=BufferedWebSocket)
    # ComfyUI 0.30+ thins progress between the first and the last step; what it sends
    # arrives whole (parsed) and in order.
    assert steps[0] == 1 and steps[-1] == 40 and steps == sorted(set(steps))


def test_closing_the_stream_stops_its_reader_without_waiting_out_its_poll(
        comfy_url: str) -> None:
    """A reader waiting for a frame is woken by the close itself: a pool closing its
    nodes does not wait a poll (a second) on each."""
    stream = NodeStream(comfy_url)
    assert stream.wait_connected(30)
    time.sleep(0.1)  # the reader is waiting in recv() now, with nothing to read
    started = time.monotonic()
    stream.close()
    took = time.monotonic() - started
    assert not stream._thread.is_alive()
    assert took < RECV_POLL / 4, took
