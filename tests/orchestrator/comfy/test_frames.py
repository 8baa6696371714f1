"""Websocket frames split from a node's bytes: every kind a server may send, in any cut of
the bytes, and the event socket's reader over them (pings answered, closes noticed)."""

from __future__ import annotations

import os
import socket

import pytest
import websocket

from orchestrator.comfy import frames
from orchestrator.comfy.frames import BINARY, CLOSE, PING, PONG, TEXT, BadFrame, Incoming
from orchestrator.comfy.stream import EventFrames
from tests.orchestrator.comfy.test_stream import burst_steps


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes = b"") -> bytes:
    """A frame as a server (no mask) or a client (``mask``) writes it."""
    size = len(payload)
    if size < 126:
        head = bytes([size | (0x80 if mask else 0)])
    elif size < 65536:
        head = bytes([126 | (0x80 if mask else 0)]) + size.to_bytes(2, "big")
    else:
        head = bytes([127 | (0x80 if mask else 0)]) + size.to_bytes(8, "big")
    if mask:
        payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    return bytes([opcode | (0x80 if fin else 0)]) + head + mask + payload


def test_text_and_binary_frames_of_every_length_form_come_out_whole() -> None:
    big, huge = os.urandom(300), os.urandom(70_000)
    data = frame(TEXT, b'{"type": "status"}') + frame(BINARY, big) + frame(BINARY, huge)
    assert Incoming().feed(data) == [(TEXT, b'{"type": "status"}'), (BINARY, big),
                                     (BINARY, huge)]


def test_frames_cut_anywhere_wait_for_their_rest() -> None:
    data = frame(TEXT, b"a" * 200) + frame(BINARY, b"\x00\x01") + frame(PING, b"hi")
    incoming, got = Incoming(), []
    for i in range(len(data)):  # one byte at a time: every cut point
        got += incoming.feed(data[i:i + 1])
    assert got == [(TEXT, b"a" * 200), (BINARY, b"\x00\x01"), (PING, b"hi")]


def test_fragments_are_joined_with_control_frames_passed_between() -> None:
    data = (frame(TEXT, b"hel", fin=False) + frame(PING, b"p") +
            frame(0, b"lo ", fin=False) + frame(0, b"world") + frame(PONG, b""))
    assert Incoming().feed(data) == [(PING, b"p"), (TEXT, b"hello world"), (PONG, b"")]


def test_a_masked_frame_is_unmasked() -> None:
    data = frame(TEXT, b"masked text", mask=b"\x01\x02\x03\x04") + frame(CLOSE, b"\x03\xe8")
    assert Incoming().feed(data) == [(TEXT, b"masked text"), (CLOSE, b"\x03\xe8")]


@pytest.mark.parametrize("data", [
    bytes([0xC1, 0x00]),                                   # a reserved bit
    frame(0, b"orphan"),                                    # continuation of nothing
    frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"),      # a message inside another
    frame(PING, b"x", fin=False),                          # a fragmented control frame
    frame(0x3, b""),                                        # an unknown opcode
])
def test_broken_framing_is_refused(data: bytes) -> None:
    with pytest.raises(BadFrame):
        Incoming().feed(data)


def test_an_oversized_frame_is_refused_from_its_header() -> None:
    head = bytes([0x82, 127]) + (frames.MAX_MESSAGE + 1).to_bytes(8, "big")
    with pytest.raises(BadFrame, match="a frame of"):
        Incoming().feed(head)


# --- the reader over a socket ------------------------------------------------------------------

def connected_pair() -> tuple[websocket.WebSocket, socket.socket]:
    """A websocket-client socket wired to a plain socket standing for the node."""
    ours, node = socket.socketpair()
    ws = websocket.WebSocket()
    ws.sock, ws.connected = ours, True
    return ws, node


def test_the_reader_answers_a_ping_and_gives_text_as_str_binary_as_bytes() -> None:
    ws, node = connected_pair()
    node.sendall(frame(PING, b"beat") + frame(TEXT, "é".encode()) + frame(BINARY, b"\x01"))
    reader = EventFrames(ws)
    assert reader.recv() == "é"
    assert reader.recv() == b"\x01"
    pong = Incoming().feed(node.recv(100))
    assert pong == [(PONG, b"beat")]
    node.close()
    ws.sock.close()


def test_the_reader_raises_closed_on_a_close_frame_and_on_a_dropped_socket() -> None:
    ws, node = connected_pair()
    node.sendall(frame(CLOSE, b"\x03\xe8"))
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        EventFrames(ws).recv()
    node.close()
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        EventFrames(ws).recv()
    ws.sock.close()


def test_the_reader_times_out_and_keeps_a_partial_frame() -> None:
    ws, node = connected_pair()
    ws.sock.settimeout(0.05)
    data = frame(TEXT, b"split")
    node.sendall(data[:3])
    reader = EventFrames(ws)
    with pytest.raises(TimeoutError):
        reader.recv()
    node.sendall(data[3:])
    assert reader.recv() == "split"
    node.close()
    ws.sock.close()


def test_a_real_nodes_burst_of_frames_comes_through_the_reader_in_order(comfy_url: str) -> None:
    steps = burst_steps(comfy_url, lambda ws: EventFrames(ws).recv)
    assert steps[0] == 1 and steps[-1] == 40 and steps == sorted(set(steps))
