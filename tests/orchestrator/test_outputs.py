"""Output files: stored once and atomically by content, identified by their bytes, thumbnailed.

Test media is made at test time: images with Pillow, WAV with ``wave``, and minimal
headers for the containers Pillow cannot write (MP4, MOV, WEBM, FLAC, MP3, OGG).
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import subprocess
import sys
import threading
import wave
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image

from orchestrator import outputs
from orchestrator.errors import JobNotFound, NotFound, StoreError
from orchestrator.jobs import Item, Job, JobSpec, Visibility
from orchestrator.outputs import BlobRef, BlobStore, Media, OutputKind, new_output, probe
from orchestrator.service import Orchestrator


def image_bytes(fmt: str, size: tuple[int, int] = (40, 30), color: str = "red") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def animation_bytes(fmt: str, colors: tuple[str, ...] = ("red", "blue", "green")) -> bytes:
    frames = [Image.new("RGB", (20, 10), color) for color in colors]
    buffer = io.BytesIO()
    frames[0].save(buffer, format=fmt, save_all=True, append_images=frames[1:],
                   duration=100, loop=0)
    return buffer.getvalue()


def wav_bytes(seconds: float = 0.5, rate: int = 8000) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\x00\x00" * int(seconds * rate))
    return buffer.getvalue()


def flac_bytes(rate: int = 44100, samples: int = 88200) -> bytes:
    """``fLaC`` and a STREAMINFO block: 20-bit rate, 3-bit channels-1, 5-bit bits-1, 36-bit n."""
    packed = (rate << 44) | (1 << 41) | (15 << 36) | samples
    info = struct.pack(">HH", 4096, 4096) + b"\x00" * 6 + packed.to_bytes(8, "big") + b"\0" * 16
    return b"fLaC" + b"\x80" + len(info).to_bytes(3, "big") + info


MP4 = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x08free"
MOV = b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00qt  " + b"\x00\x00\x00\x08wide"
WEBM = b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01\x42\xf7\x81\x01\x42\x82\x84webm" + b"\x00" * 8
MKV = b"\x1a\x45\xdf\xa3\xa3\x42\x86\x81\x01\x42\x82\x88matroska" + b"\x00" * 8
MP3_ID3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x00" + b"\x00" * 32
MP3_FRAME = b"\xff\xfb\x90\x00" + b"\x00" * 32
OGG = b"OggS\x00\x02" + b"\x00" * 20 + b"\x01\x1e\x01vorbis"


@pytest.mark.parametrize(("data", "filename", "mime", "kind"), [
    (MP4, "clip.bin", "video/mp4", OutputKind.VIDEO),
    (MOV, "clip.bin", "video/quicktime", OutputKind.VIDEO),
    (WEBM, "clip.bin", "video/webm", OutputKind.VIDEO),
    (MKV, "clip.bin", "video/x-matroska", OutputKind.VIDEO),
    (MP3_ID3, "song.bin", "audio/mpeg", OutputKind.AUDIO),
    (MP3_FRAME, "song.bin", "audio/mpeg", OutputKind.AUDIO),
    (OGG, "song.bin", "audio/ogg", OutputKind.AUDIO),
    (b"hello", "notes.txt", "text/plain", OutputKind.FILE),
    (b"\x00\x01\x02", "mystery", "application/octet-stream", OutputKind.FILE),
    (b"\x00\x01\x02", "clip.mp4", "video/mp4", OutputKind.VIDEO),
])
def test_magic_bytes_decide_the_mime_and_the_extension_is_the_fallback(
        data: bytes, filename: str, mime: str, kind: OutputKind) -> None:
    assert probe(data, filename) == Media(mime=mime, kind=kind)


@pytest.mark.parametrize(("fmt", "mime"), [
    ("PNG", "image/png"), ("JPEG", "image/jpeg"), ("GIF", "image/gif"),
    ("WEBP", "image/webp"),
])
def test_still_images_report_their_size(fmt: str, mime: str) -> None:
    media = probe(image_bytes(fmt), "ComfyUI_00001_.bin")
    assert media == Media(mime=mime, kind=OutputKind.IMAGE, width=40, height=30)


@pytest.mark.parametrize(("fmt", "mime"), [("GIF", "image/gif"), ("WEBP", "image/webp")])
def test_animated_images_are_marked_with_their_duration(fmt: str, mime: str) -> None:
    media = probe(animation_bytes(fmt), "anim")
    assert (media.mime, media.width, media.height, media.animated) == (mime, 20, 10, True)
    assert media.duration == pytest.approx(0.3)


def test_audio_headers_give_durations() -> None:
    assert probe(wav_bytes(0.5), "a.wav") == Media(mime="audio/wav", kind=OutputKind.AUDIO,
                                                   duration=0.5)
    assert probe(flac_bytes(), "a") == Media(mime="audio/flac", kind=OutputKind.AUDIO,
                                             duration=2.0)


def test_a_damaged_image_keeps_its_mime_without_a_size() -> None:
    damaged = image_bytes("PNG")[:20]
    assert probe(damaged, "x.png") == Media(mime="image/png", kind=OutputKind.IMAGE)


# --- blobs --------------------------------------------------------------------------------


@pytest.fixture
def blobs(tmp_path: Path) -> BlobStore:
    return BlobStore(tmp_path / "blobs")


def test_put_stores_bytes_under_their_sha256(blobs: BlobStore) -> None:
    data = image_bytes("PNG")
    ref = blobs.put(data)
    sha256 = hashlib.sha256(data).hexdigest()
    assert ref.sha256 == sha256 and ref.size_bytes == len(data)
    assert blobs.path(sha256) == blobs.root / sha256[:2] / sha256
    assert blobs.exists(sha256) and blobs.path(sha256).read_bytes() == data
    with blobs.open(sha256) as handle:
        assert handle.read() == data


def test_the_same_bytes_are_stored_once(blobs: BlobStore,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    first = blobs.put(b"same")
    renames: list[object] = []
    monkeypatch.setattr(os, "replace", lambda *args: renames.append(args))
    assert blobs.put(b"same") == first
    assert renames == [] and _files(blobs.root) == [blobs.path(first.sha256)]


def test_a_failed_write_leaves_neither_a_blob_nor_a_temporary_file(
        blobs: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(*args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(StoreError, match="No space left"):
        blobs.put(b"doomed")
    assert _files(blobs.root) == []


def test_concurrent_writers_of_the_same_bytes_leave_one_whole_file(blobs: BlobStore) -> None:
    data = os.urandom(256 * 1024)
    refs: list[BlobRef] = []
    threads = [threading.Thread(target=lambda: refs.append(blobs.put(data))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(refs)) == 1
    assert _files(blobs.root) == [blobs.path(refs[0].sha256)]
    assert blobs.path(refs[0].sha256).read_bytes() == data


def test_blake3_is_recorded_when_the_package_is_installed(
        blobs: BlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(outputs, "_BLAKE3", None)
    assert blobs.put(b"x").blake3 is None
    fake = SimpleNamespace(blake3=lambda data: SimpleNamespace(hexdigest=lambda: "b3" * 32))
    monkeypatch.setattr(outputs, "_BLAKE3", fake)
    assert blobs.put(b"y").blake3 == "b3" * 32


def test_unknown_or_malformed_hashes_are_not_found(blobs: BlobStore) -> None:
    for bad in ("../../etc/passwd", "AB" * 32, "ab" * 31):
        assert not blobs.exists(bad)
        with pytest.raises(NotFound):
            blobs.path(bad)
    with pytest.raises(NotFound) as caught:
        blobs.open("ab" * 32)
    assert caught.value.what == "blob"
    assert not isinstance(caught.value, JobNotFound)  # a blob is not a job


def test_delete_removes_the_blob_and_its_thumbnails(blobs: BlobStore) -> None:
    ref = blobs.put(image_bytes("PNG"))
    assert blobs.thumbnail(ref.sha256) is not None
    blobs.delete(ref.sha256)
    blobs.delete(ref.sha256)
    assert not blobs.exists(ref.sha256) and _files(blobs.root) == []


def test_release_removes_bytes_nothing_names(blobs: BlobStore) -> None:
    ref = blobs.put(image_bytes("PNG"))
    assert blobs.release(ref.sha256, lambda: True)
    assert not blobs.exists(ref.sha256)
    assert blobs.release(ref.sha256, lambda: True)  # harmless when already gone


def test_release_keeps_bytes_a_record_names(blobs: BlobStore) -> None:
    ref = blobs.put(image_bytes("PNG"))
    assert not blobs.release(ref.sha256, lambda: False)
    assert blobs.exists(ref.sha256)


def test_bytes_stored_again_during_the_check_are_kept(blobs: BlobStore) -> None:
    """Given a release whose check finds no record, when the same bytes are stored and
    recorded between the check and the removal, then the bytes stay."""
    data = image_bytes("PNG")
    ref = blobs.put(data)
    recorded: list[str] = []

    def check_then_an_upload_lands() -> bool:
        unused = not recorded
        with blobs.storing(data) as again:  # an upload of the same bytes, recorded at once
            recorded.append(again.sha256)
        return unused

    assert not blobs.release(ref.sha256, check_then_an_upload_lands)
    assert recorded == [ref.sha256] and blobs.exists(ref.sha256)


def test_bytes_a_writer_holds_until_it_records_them_are_kept(blobs: BlobStore) -> None:
    """A writer that stored the bytes before the check and records them after it keeps
    them; once it has recorded, a later release decides from the records again."""
    data = image_bytes("PNG")
    with blobs.storing(data) as ref:
        assert not blobs.release(ref.sha256, lambda: True)
        assert blobs.exists(ref.sha256)
    assert blobs.release(ref.sha256, lambda: True)


def test_a_writer_after_a_release_writes_the_bytes_again(blobs: BlobStore) -> None:
    data = image_bytes("PNG")
    ref = blobs.put(data)
    assert blobs.release(ref.sha256, lambda: True)
    with blobs.storing(data) as again:
        assert blobs.path(again.sha256).read_bytes() == data


def _in_another_process(root: Path, code: str) -> subprocess.Popen[str]:
    """A replica sharing the blob directory ``root``: runs ``code`` with ``blobs`` open
    there and ``data`` the test image; prints "held" when it says so."""
    script = ("import sys\nfrom pathlib import Path\nfrom orchestrator.outputs import "
              "BlobStore\nfrom tests.orchestrator.test_outputs import image_bytes\n"
              f"blobs = BlobStore(Path({str(root)!r}))\ndata = image_bytes('PNG')\n{code}")
    return subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def test_a_hold_in_another_process_keeps_the_bytes(blobs: BlobStore) -> None:
    """Two replicas share the blob directory: one storing bytes it has not recorded yet
    keeps them from the other's release, until it is done."""
    ref = blobs.put(image_bytes("PNG"))
    other = _in_another_process(blobs.root, "with blobs.storing(data):\n"
                                "    print('held', flush=True)\n    sys.stdin.readline()\n")
    assert other.stdout is not None and other.stdin is not None
    assert other.stdout.readline().strip() == "held"
    assert not blobs.release(ref.sha256, lambda: True)
    assert blobs.exists(ref.sha256)
    other.communicate("done\n", timeout=60)
    assert other.returncode == 0
    assert blobs.release(ref.sha256, lambda: True) and not blobs.exists(ref.sha256)
    assert list((blobs.root / outputs.HOLDS_DIR).iterdir()) == []  # no lock file left


def test_bytes_another_process_stores_during_the_check_are_kept(blobs: BlobStore) -> None:
    """A replica stores and records the same bytes while this one's release checks the
    records (and finds none): the bytes stay."""
    ref = blobs.put(image_bytes("PNG"))

    def check_while_another_replica_uploads() -> bool:
        other = _in_another_process(blobs.root, "blobs.put(data)\n")
        other.communicate(timeout=60)
        return other.returncode == 0

    assert not blobs.release(ref.sha256, check_while_another_replica_uploads)
    assert blobs.exists(ref.sha256)


AVATAR_GRAPH = {
    "1": {"class_type": "LoadImage", "inputs": {"image": "char_avatar"}},
    "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "a"}},
}


# --- thumbnails ---------------------------------------------------------------------------


def test_thumbnails_fit_the_size_and_are_made_once(blobs: BlobStore) -> None:
    ref = blobs.put(image_bytes("PNG", (1024, 512)))
    thumb = blobs.thumbnail(ref.sha256, size=256)
    assert thumb is not None and thumb.parent == blobs.path(ref.sha256).parent
    with Image.open(thumb) as image:
        assert image.size == (256, 128) and image.format == outputs.THUMBNAIL_FORMAT
    made = thumb.stat().st_mtime_ns
    assert blobs.thumbnail(ref.sha256, size=256) == thumb
    assert thumb.stat().st_mtime_ns == made


def test_an_animation_is_thumbnailed_from_its_first_frame(blobs: BlobStore) -> None:
    ref = blobs.put(animation_bytes("GIF", ("blue", "red", "red")))
    thumb = blobs.thumbnail(ref.sha256, size=8)
    assert thumb is not None
    with Image.open(thumb) as image:
        red, green, blue = image.convert("RGB").getpixel((2, 2))  # type: ignore[misc]
    assert blue > 200 and red < 50


def test_non_images_have_no_thumbnail(blobs: BlobStore) -> None:
    assert blobs.thumbnail(blobs.put(wav_bytes()).sha256) is None
    assert blobs.thumbnail(blobs.put(MP4).sha256) is None
    with pytest.raises(NotFound):
        blobs.thumbnail("cd" * 32)


# --- records ------------------------------------------------------------------------------


def test_a_record_copies_the_jobs_context() -> None:
    spec = JobSpec(workflow="portrait", values={"prompt": "a cat"}, owner="ann",
                   character="kit", conversation="c1", visibility=Visibility.PUBLIC)
    item = Item(id="j-1", job_id="j", index=1, seed=42)
    job = Job(id="j", spec=spec, items=[Item(id="j-0", job_id="j", index=0), item])
    blob = BlobRef(sha256="ab" * 32, size_bytes=10, blake3="cd" * 32)
    media = Media(mime="image/png", kind=OutputKind.IMAGE, width=4, height=3)
    record = new_output(job, item, blob, media, filename="ComfyUI_00001_.png", node_id="9",
                        node="gpu-1")
    assert record.model_dump(exclude={"id", "created_at"}) == {
        "sha256": "ab" * 32, "blake3": "cd" * 32, "mime": "image/png", "size_bytes": 10,
        "width": 4, "height": 3, "animated": False, "duration": None,
        "kind": OutputKind.IMAGE, "filename": "ComfyUI_00001_.png", "node_id": "9",
        "seed": 42, "workflow": "portrait", "values": {"prompt": "a cat"}, "node": "gpu-1",
        "job_id": "j", "item_id": "j-1", "index": 1, "owner": "ann", "character": "kit",
        "conversation": "c1", "visibility": Visibility.PUBLIC, "key": None, "value": None,
    }
    assert record.created_at.utcoffset() is not None


def _files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_a_jobs_input_images_are_held_until_the_job_names_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A release of an input image's bytes while its job is being recorded (after the
    bytes were stored, before the job row exists) keeps them."""
    data = image_bytes("PNG")
    with Orchestrator(data_dir=tmp_path, start=False) as orch:
        create = orch._store.create_job_idempotent
        released: list[bool] = []

        def release_then_create(spec: JobSpec, **kwargs: Any) -> tuple[Job, bool]:
            sha256 = spec.images["char_avatar"]
            released.append(orch._blobs.release(sha256, lambda: True))
            return create(spec, **kwargs)

        monkeypatch.setattr(orch._store, "create_job_idempotent", release_then_create)
        job = orch.submit(graph=AVATAR_GRAPH, images={"char_avatar": data}).get()
        assert released == [False]
        assert orch._blobs.path(job.spec.images["char_avatar"]).read_bytes() == data
