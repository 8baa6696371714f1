"""Copies of output files without embedded metadata: the picture stays byte for byte."""

from __future__ import annotations

import io

import pytest
from PIL import Image, PngImagePlugin

from orchestrator.embedded import Unreadable, strippable, stripped

SECRET = '{"3": {"inputs": {"text": "a private prompt", "image": "iVBORw0KGgo..."}}}'


def picture() -> Image.Image:
    image = Image.new("RGB", (12, 8), "#102030")
    image.putpixel((3, 4), (250, 1, 2))
    return image


def png_with_text() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", SECRET)
    info.add_text("workflow", SECRET, zip=True)
    info.add_itxt("parameters", SECRET)
    buffer = io.BytesIO()
    picture().save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def exif_bytes() -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "workflow:" + SECRET  # Make: where ComfyUI's WEBP saver puts it
    return exif.tobytes()


def saved(fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    picture().save(buffer, format=fmt, exif=exif_bytes(), **options)
    return buffer.getvalue()


def pixels(data: bytes) -> bytes:
    with Image.open(io.BytesIO(data)) as image:
        return image.convert("RGB").tobytes()


def test_png_text_chunks_go_and_every_other_chunk_stays_as_it_was() -> None:
    original = png_with_text()
    assert b"private prompt" in original
    clean = stripped(original, "image/png")
    assert b"private prompt" not in clean and b"prompt" not in clean
    for chunk in (b"tEXt", b"zTXt", b"iTXt"):
        assert chunk not in clean
    assert pixels(clean) == pixels(original)
    idat = original[original.index(b"IDAT") - 4:original.index(b"IEND")]
    assert idat in clean  # the image data itself is copied, not encoded again
    with Image.open(io.BytesIO(clean)) as image:
        assert image.info == {}


@pytest.mark.parametrize(("fmt", "mime", "options"), [
    ("JPEG", "image/jpeg", {"quality": 95}),
    ("WEBP", "image/webp", {"lossless": True}),
])
def test_exif_goes_from_jpeg_and_webp(fmt: str, mime: str, options: dict[str, object]) -> None:
    original = saved(fmt, **options)
    assert b"private prompt" in original
    clean = stripped(original, mime)
    assert b"private prompt" not in clean
    with Image.open(io.BytesIO(clean)) as image:
        assert "exif" not in image.info
    if fmt == "WEBP":
        assert pixels(clean) == pixels(original)


def test_an_animated_webp_keeps_its_frames() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ("#ff0000", "#00ff00")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="WEBP", save_all=True, append_images=frames[1:],
                   duration=100, lossless=True, exif=exif_bytes())
    clean = stripped(buffer.getvalue(), "image/webp")
    assert b"private prompt" not in clean
    with Image.open(io.BytesIO(clean)) as image:
        assert getattr(image, "n_frames", 1) == 2


def test_other_types_come_back_as_given() -> None:
    assert not strippable("image/gif") and not strippable("audio/mpeg")
    assert stripped(b"GIF89a comment", "image/gif") == b"GIF89a comment"


@pytest.mark.parametrize("mime", ["image/png", "image/jpeg", "image/webp"])
def test_a_broken_file_is_unreadable_not_passed_through(mime: str) -> None:
    with pytest.raises(Unreadable):
        stripped(b"not an image at all, with a private prompt", mime)


def test_a_truncated_png_is_unreadable() -> None:
    with pytest.raises(Unreadable, match="runs past the end"):
        stripped(png_with_text()[:60], "image/png")


def _box(kind: bytes, payload: bytes) -> bytes:
    return (8 + len(payload)).to_bytes(4, "big") + kind + payload


def test_mp4_metadata_boxes_become_free_space_of_the_same_size() -> None:
    moov = _box(b"moov", _box(b"mvhd", b"\x00" * 8) + _box(b"udta", b"prompt " + SECRET.encode())
                + _box(b"meta", b"workflow"))
    original = _box(b"ftyp", b"isom") + moov + _box(b"mdat", b"frames")
    clean = stripped(original, "video/mp4")
    assert len(clean) == len(original) and b"private prompt" not in clean
    assert clean.count(b"free") == 2 and b"udta" not in clean and clean.endswith(b"mdatframes")


@pytest.mark.parametrize(("mime", "data"), [
    ("video/mp4", _box(b"ftyp", b"isom") + _box(b"mdat", b"x")),  # no moov
    ("video/mp4", b"\x00\x00\x00\xffmoov"),  # runs past the end
    ("video/webm", b"\x1a\x45\xdf\xa3\x88webm"),  # runs past the end
    ("audio/flac", b"fLaC\x00\x00\x00\x22"),  # a block cut off
])
def test_broken_containers_are_unreadable(mime: str, data: bytes) -> None:
    with pytest.raises(Unreadable):
        stripped(data, mime)
