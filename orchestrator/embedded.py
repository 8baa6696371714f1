"""What an output file carries besides its picture, and a copy of it that carries nothing.

ComfyUI writes the graph that made an image into the file: SaveImage puts ``prompt`` and
``workflow`` PNG text chunks (prompt text, and base64 input images such as avatars);
SaveAnimatedWEBP puts them in EXIF. An output shown to anyone but its owner must not give
that away, so ``stripped`` returns the same picture without text, EXIF or XMP: the image
data is copied byte for byte, never decoded and encoded again.

Videos (MP4, WEBM) and FLAC audio from ComfyUI's savers carry the same graph in their
container's metadata; there it is overwritten in place by padding of the same length, so
no offset inside the file moves. Pure: bytes in, bytes out. Formats it does not know
(GIF, MP3, Ogg) come back as they are.
"""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Text (tEXt, zTXt, iTXt), EXIF and the time of the last change: what ComfyUI and
# editors write about an image, never what draws it.
PNG_DROPPED = frozenset({b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME"})
# JPEG APP1 (EXIF, XMP), APP13 (IPTC) and comments; APP0 (JFIF) and APP2 (ICC colour) stay.
JPEG_DROPPED = frozenset({0xE1, 0xED, 0xFE})
JPEG_START_OF_SCAN = 0xDA
WEBP_DROPPED = frozenset({b"EXIF", b"XMP "})
WEBP_VP8X_METADATA_FLAGS = 0x08 | 0x04  # "has EXIF", "has XMP"


MP4_METADATA = frozenset({b"udta", b"meta"})  # children of moov
EBML_SEGMENT, EBML_TAGS, EBML_VOID = 0x18538067, 0x1254C367, 0xEC
FLAC_PADDING, FLAC_VORBIS_COMMENT = 1, 4


class Unreadable(ValueError):
    """The file does not follow its own format far enough to be rewritten."""


def strippable(mime: str) -> bool:
    """Whether ``stripped`` rewrites files of this type (others come back as given)."""
    return mime in _STRIPPERS


def stripped(data: bytes, mime: str) -> bytes:
    """``data`` without embedded text, EXIF or XMP; unknown formats are returned as given.

    Raises ``Unreadable`` for a PNG, JPEG or WEBP whose structure is broken: the caller
    must then not serve the original to someone who may not see its metadata.
    """
    strip = _STRIPPERS.get(mime)
    return data if strip is None else strip(data)


def _png(data: bytes) -> bytes:
    if not data.startswith(PNG_SIGNATURE):
        raise Unreadable("not a PNG: the signature is missing")
    kept = [PNG_SIGNATURE]
    offset = len(PNG_SIGNATURE)
    while offset < len(data):
        if offset + 8 > len(data):
            raise Unreadable(f"a PNG chunk header is cut off at byte {offset}")
        length, kind = struct.unpack_from(">I4s", data, offset)
        end = offset + 12 + length  # length, type, data, CRC
        if end > len(data):
            raise Unreadable(f"PNG chunk {kind!r} at byte {offset} runs past the end")
        if kind not in PNG_DROPPED:
            kept.append(data[offset:end])
        offset = end
        if kind == b"IEND":
            break
    return b"".join(kept)


def _jpeg(data: bytes) -> bytes:
    if not data.startswith(b"\xff\xd8"):
        raise Unreadable("not a JPEG: the start-of-image marker is missing")
    kept = [data[:2]]
    offset = 2
    while offset + 4 <= len(data):
        if data[offset] != 0xFF:
            raise Unreadable(f"no JPEG marker at byte {offset}")
        marker = data[offset + 1]
        if marker == JPEG_START_OF_SCAN:
            kept.append(data[offset:])  # the entropy-coded image and everything after
            return b"".join(kept)
        end = offset + 2 + struct.unpack_from(">H", data, offset + 2)[0]
        if marker not in JPEG_DROPPED:
            kept.append(data[offset:end])
        offset = end
    raise Unreadable("the JPEG has no image data (no start-of-scan marker)")


def _webp(data: bytes) -> bytes:
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise Unreadable("not a WEBP: the RIFF header is missing")
    chunks = []
    offset = 12
    while offset + 8 <= len(data):
        kind, size = data[offset:offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        end = offset + 8 + size + (size & 1)  # chunks are padded to an even size
        if offset + 8 + size > len(data):
            raise Unreadable(f"WEBP chunk {kind!r} at byte {offset} runs past the end")
        if kind == b"VP8X":
            flags = data[offset + 8] & ~WEBP_VP8X_METADATA_FLAGS
            chunks.append(data[offset:offset + 8] + bytes([flags]) + data[offset + 9:end])
        elif kind not in WEBP_DROPPED:
            chunks.append(data[offset:end])
        offset = end
    body = b"WEBP" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


# --- video and audio: metadata overwritten in place, so no offset inside the file moves --


def _mp4(data: bytes) -> bytes:
    """ComfyUI's SaveVideo writes its metadata as ``moov/udta`` and ``moov/meta`` boxes;
    each becomes a ``free`` box of the same size, zeroed (players skip those), so the
    sample offsets in ``stco``/``co64`` stay right."""
    moov = next((box for box in _boxes(data, 0, len(data)) if box[3] == b"moov"), None)
    if moov is None:
        raise Unreadable("the MP4 has no moov box")
    out = bytearray(data)
    for start, header, end, kind in _boxes(data, moov[0] + moov[1], moov[2]):
        if kind in MP4_METADATA:
            out[start + 4:start + 8] = b"free"
            out[start + header:end] = bytes(end - start - header)
    return bytes(out)


def _boxes(data: bytes, offset: int, end: int) -> list[tuple[int, int, int, bytes]]:
    """(start, header length, end, type) of each box between ``offset`` and ``end``."""
    found = []
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, offset + 8)[0], 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise Unreadable(f"MP4 box {kind!r} at byte {offset} runs past its parent")
        found.append((offset, header, offset + size, kind))
        offset += size
    return found


def _matroska(data: bytes) -> bytes:
    """ComfyUI's SaveWEBM writes its metadata as the segment's ``Tags``; it becomes a
    ``Void`` element of the same length, zeroed."""
    out = bytearray(data)
    for start, id_length, size_length, end, element in _ebml(data, 0, len(data)):
        if element == EBML_SEGMENT:
            payload = start + id_length + size_length
            for child in _ebml(data, payload, end, unknown_size=False):
                if child[4] == EBML_TAGS:
                    _void(out, child[0], child[3])
    return bytes(out)


def _void(out: bytearray, start: int, end: int) -> None:
    """Overwrite ``out[start:end]`` with one Void element of the same length."""
    width = min(8, max(1, (end - start - 1).bit_length() // 7 + 1))
    payload = end - start - 1 - width
    out[start:end] = (bytes([EBML_VOID]) + ((1 << (7 * width)) | payload).to_bytes(width, "big")
                      + bytes(payload))


def _ebml(data: bytes, offset: int, end: int, *, unknown_size: bool = True
          ) -> list[tuple[int, int, int, int, int]]:
    """(start, id length, size length, end, id) of each element between offset and end.

    An element of unknown size (a live stream's) runs to ``end``; where the elements after
    it could not be found (``unknown_size`` False), it is ``Unreadable``.
    """
    found = []
    while offset < end:
        element, id_length = _vint(data, offset, keep_marker=True)
        size, size_length = _vint(data, offset + id_length)
        payload = offset + id_length + size_length
        unknown = size == (1 << (7 * size_length)) - 1
        if unknown and not unknown_size:
            raise Unreadable(f"Matroska element {element:#x} at byte {offset} has no size")
        stop = end if unknown else payload + size
        if stop > end:
            raise Unreadable(f"Matroska element {element:#x} at byte {offset} runs past its "
                             "parent")
        found.append((offset, id_length, size_length, stop, element))
        offset = stop
    return found


def _vint(data: bytes, offset: int, *, keep_marker: bool = False) -> tuple[int, int]:
    if offset >= len(data) or data[offset] == 0:
        raise Unreadable(f"no Matroska number at byte {offset}")
    length = 9 - data[offset].bit_length()
    value = int.from_bytes(data[offset:offset + length], "big")
    return (value if keep_marker else value & ((1 << (7 * length)) - 1)), length


def _flac(data: bytes) -> bytes:
    """ComfyUI's SaveAudio writes its metadata as a VORBIS_COMMENT block; it becomes a
    PADDING block of the same length, zeroed."""
    if not data.startswith(b"fLaC"):
        raise Unreadable("not a FLAC file: the marker is missing")
    out = bytearray(data)
    offset, last = 4, False
    while not last:
        if offset + 4 > len(data):
            raise Unreadable(f"a FLAC metadata block is cut off at byte {offset}")
        last, kind = bool(data[offset] & 0x80), data[offset] & 0x7F
        end = offset + 4 + int.from_bytes(data[offset + 1:offset + 4], "big")
        if kind == FLAC_VORBIS_COMMENT:
            out[offset] = (data[offset] & 0x80) | FLAC_PADDING
            out[offset + 4:end] = bytes(end - offset - 4)
        offset = end
    return bytes(out)


_STRIPPERS = {"image/png": _png, "image/apng": _png, "image/jpeg": _jpeg,
              "image/webp": _webp, "video/mp4": _mp4, "video/quicktime": _mp4,
              "audio/mp4": _mp4, "video/webm": _matroska, "video/x-matroska": _matroska,
              "audio/flac": _flac}
