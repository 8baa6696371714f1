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
    assert not strippable("video/mp4")
    assert stripped(b"\x00\x00\x00\x18ftypmp42", "video/mp4") == b"\x00\x00\x00\x18ftypmp42"


@pytest.mark.parametrize("mime", ["image/png", "image/jpeg", "image/webp"])
def test_a_broken_file_is_unreadable_not_passed_through(mime: str) -> None:
    with pytest.raises(Unreadable):
        stripped(b"not an image at all, with a private prompt", mime)


def test_a_truncated_png_is_unreadable() -> None:
    with pytest.raises(Unreadable, match="runs past the end"):
        stripped(png_with_text()[:60], "image/png")
