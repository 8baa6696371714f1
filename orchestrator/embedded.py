"""What an output file carries besides its picture, and a copy of it that carries nothing.

ComfyUI writes the graph that made an image into the file: SaveImage puts ``prompt`` and
``workflow`` PNG text chunks (prompt text, and base64 input images such as avatars);
SaveAnimatedWEBP puts them in EXIF. An output shown to anyone but its owner must not give
that away, so ``stripped`` returns the same picture without text, EXIF or XMP: the image
data is copied byte for byte, never decoded and encoded again.

Pure: bytes in, bytes out. Formats it does not know (video, audio, GIF) come back as they
are; ComfyUI's own savers write metadata into none of those that reach the gallery as
images, and the containers of the others need a muxer to rewrite.
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


_STRIPPERS = {"image/png": _png, "image/apng": _png, "image/jpeg": _jpeg,
              "image/webp": _webp}
