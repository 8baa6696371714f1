"""Websocket frames as a node sends them, split from the bytes of its socket (RFC 6455).

websocket-client reads each frame through several layers of pure Python (a frame object,
a buffer object, length checks, a mask step even for unmasked frames): about 60 us a
frame, and a trivial prompt sends a dozen. A node's frames are small, unmasked and rarely
fragmented, so ``Incoming`` splits them from whatever a socket read brought in a few
slices. Sans-I/O: bytes in, messages out; the event socket's reader does the reading.
"""

from __future__ import annotations

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_DATA = frozenset({TEXT, BINARY})
_CONTROL = frozenset({CLOSE, PING, PONG})
MAX_MESSAGE = 64 * 1024 * 1024  # bytes a message may grow to (a large preview image fits)


class BadFrame(Exception):
    """The bytes break the websocket framing: the connection cannot be read on."""


class Incoming:
    """Splits the bytes a socket gives into whole messages ``(opcode, payload)``:
    ``TEXT`` and ``BINARY`` with their fragments joined, and ``CLOSE``, ``PING`` and
    ``PONG`` as they come (between fragments too). Text is left as UTF-8 bytes."""

    def __init__(self) -> None:
        self._buf = b""
        self._opcode: int | None = None  # the fragmented message being joined
        self._parts: list[bytes] = []

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        """The messages completed by ``data``; a partial frame waits for more."""
        buf = self._buf + data if self._buf else data
        out: list[tuple[int, bytes]] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            size, at = second & 0x7F, pos + 2
            if size == 126:
                if end - at < 2:
                    break
                size, at = int.from_bytes(buf[at:at + 2], "big"), at + 2
            elif size == 127:
                if end - at < 8:
                    break
                size, at = int.from_bytes(buf[at:at + 8], "big"), at + 8
            mask = b""
            if second & 0x80:
                mask, at = buf[at:at + 4], at + 4
            if size > MAX_MESSAGE:
                raise BadFrame(f"a frame of {size} bytes")
            if end - at < size or len(mask) not in (0, 4):
                break
            payload = buf[at:at + size]
            pos = at + size
            message = self._frame(first, _unmasked(payload, mask) if mask else payload)
            if message is not None:
                out.append(message)
        self._buf = buf[pos:] if pos < end else b""
        return out

    def _frame(self, first: int, payload: bytes) -> tuple[int, bytes] | None:
        """One frame's part in a message: the message when it completes one."""
        if first & 0x70:
            raise BadFrame("reserved bits set, no extension was agreed")
        opcode, fin = first & 0x0F, bool(first & 0x80)
        if opcode in _CONTROL:
            if not fin or len(payload) > 125:
                raise BadFrame("a fragmented or oversized control frame")
            return opcode, payload
        if opcode in _DATA:
            if self._opcode is not None:
                raise BadFrame("a new message inside a fragmented one")
            if fin:
                return opcode, payload
            self._opcode, self._parts = opcode, [payload]
            return None
        if opcode != CONTINUATION or self._opcode is None:
            raise BadFrame(f"unexpected opcode {opcode:#x}")
        self._parts.append(payload)
        if sum(map(len, self._parts)) > MAX_MESSAGE:
            raise BadFrame("a fragmented message over the size limit")
        if not fin:
            return None
        whole, opcode = b"".join(self._parts), self._opcode
        self._opcode, self._parts = None, []
        return opcode, whole


def _unmasked(payload: bytes, mask: bytes) -> bytes:
    """A masked payload unmasked (a node never masks; the RFC allows no other reading)."""
    key = int.from_bytes((mask * (len(payload) // 4 + 1))[:len(payload)], "big")
    return (int.from_bytes(payload, "big") ^ key).to_bytes(len(payload), "big")
