"""Output files: content-addressed blobs, what they are (probing), thumbnails, records.

A blob is stored once per content at ``root/<sha256[:2]>/<sha256>``, written to a
temporary file and renamed into place, so a reader never sees half a file and the same
bytes are never stored twice. ``OutputRecord`` is the metadata of one output file of
one item; records live in the job store (``JobStore.add_output``) and galleries are
queries over them. ``probe`` is pure: bytes and a file name in, ``Media`` out.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import io
import json
import mimetypes
import os
import re
import struct
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

from PIL import Image, ImageSequence, UnidentifiedImageError, features
from pydantic import BaseModel, ConfigDict, Field

from orchestrator import embedded
from orchestrator.errors import NotFound, StoreError
from orchestrator.jobs import Item, Job, Visibility, utcnow

BLOBS_DIR = "blobs"  # under the data directory
DEFAULT_THUMBNAIL_SIZE = 256  # pixels, longest side
# WEBP keeps transparency and is smaller; JPEG is the fallback for a Pillow without it.
THUMBNAIL_FORMAT = "WEBP" if features.check("webp") else "JPEG"
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _optional(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


# A later issue addresses blobs by blake3 as well; computed when the package is installed.
_BLAKE3: Any = _optional("blake3")


class OutputKind(StrEnum):
    IMAGE = "image"
    VIDEO = "video"
    AUDIO = "audio"
    FILE = "file"
    VALUE = "value"  # a non-file key of a node's UI result (text, numbers...), kept as JSON


VALUE_MIME = "application/json"


# --- probing (pure) -----------------------------------------------------------------------


@dataclass(frozen=True)
class Media:
    """What a file is: mime type, kind, and for images their size and animation."""

    mime: str
    kind: OutputKind
    width: int | None = None
    height: int | None = None
    animated: bool = False
    duration: float | None = None  # seconds, when cheaply known


def probe(data: bytes, filename: str) -> Media:
    """Identify ``data`` by its magic bytes, falling back to ``filename``'s extension.

    Never raises: unreadable images keep width/height None, unknown content is
    ``application/octet-stream`` of kind ``file``.
    """
    mime = sniff_mime(data) or _guess_mime(filename)
    kind = kind_of(mime)
    if kind is OutputKind.IMAGE:
        return _probe_image(data, mime)
    return Media(mime=mime, kind=kind, duration=_audio_duration(data, mime))


def sniff_mime(data: bytes) -> str | None:
    """The mime type announced by the first bytes of ``data``, or None."""
    head = data[:64]
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    return _sniff_container(head)


_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"fLaC", "audio/flac"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
)


def _sniff_container(head: bytes) -> str | None:
    if head[:4] == b"RIFF":
        return {b"WEBP": "image/webp", b"WAVE": "audio/wav"}.get(head[8:12])
    if head[4:8] == b"ftyp":
        return _ftyp_mime(head[8:12])
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video/webm" if b"webm" in head else "video/x-matroska"
    if len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "audio/mpeg"  # an MPEG audio frame sync without an ID3 tag
    return None


def _ftyp_mime(brand: bytes) -> str:
    if brand == b"qt  ":
        return "video/quicktime"
    if brand in (b"M4A ", b"M4B "):
        return "audio/mp4"
    return "video/mp4"


def _guess_mime(filename: str) -> str:
    guessed, _ = mimetypes.guess_type(filename)
    return guessed or "application/octet-stream"


def kind_of(mime: str) -> OutputKind:
    """The output kind for a mime type."""
    family = mime.partition("/")[0]
    return {"image": OutputKind.IMAGE, "video": OutputKind.VIDEO,
            "audio": OutputKind.AUDIO}.get(family, OutputKind.FILE)


def _probe_image(data: bytes, mime: str) -> Media:
    try:
        with Image.open(io.BytesIO(data)) as image:
            animated = bool(getattr(image, "is_animated", False))
            duration = _animation_seconds(image) if animated else None
            return Media(mime=mime, kind=OutputKind.IMAGE, width=image.width,
                         height=image.height, animated=animated, duration=duration)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return Media(mime=mime, kind=OutputKind.IMAGE)


def _animation_seconds(image: Image.Image) -> float:
    millis = 0.0
    for frame in ImageSequence.Iterator(image):
        frame.load()  # WEBP sets a frame's duration only once it is decoded
        millis += frame.info.get("duration", 0)
    return millis / 1000


def _audio_duration(data: bytes, mime: str) -> float | None:
    if mime == "audio/wav":
        return _wav_seconds(data)
    if mime == "audio/flac":
        return _flac_seconds(data)
    return None


def _wav_seconds(data: bytes) -> float | None:
    """Duration from the canonical RIFF layout (fmt chunk, then data chunk)."""
    fmt = data.find(b"fmt ")
    chunk = data.find(b"data", fmt)
    if fmt < 0 or chunk < 0 or len(data) < max(fmt + 16, chunk + 8):
        return None
    byte_rate = struct.unpack_from("<I", data, fmt + 16)[0]
    size = struct.unpack_from("<I", data, chunk + 4)[0]
    return size / byte_rate if byte_rate else None


def _flac_seconds(data: bytes) -> float | None:
    """Duration from STREAMINFO: 20-bit sample rate and 36-bit sample count."""
    if len(data) < 26:
        return None
    packed = int.from_bytes(data[18:26], "big")
    rate = packed >> 44
    samples = packed & ((1 << 36) - 1)
    return samples / rate if rate and samples else None


# --- blobs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlobRef:
    """A stored blob: its sha256 (its address), size, and blake3 when available."""

    sha256: str
    size_bytes: int
    blake3: str | None = None


@contextlib.contextmanager
def _disk(what: str) -> Iterator[None]:
    """Translate file-system failures of the blob store into ``StoreError``, once."""
    try:
        yield
    except OSError as exc:
        raise StoreError(f"{what} failed: {exc}; check the data directory's space and "
                         "permissions") from exc


# Under a blob root: one lock file per blob being held or released (``BlobStore.holding``).
HOLDS_DIR = ".holds"


def _checked(sha256: str) -> str:
    if not _SHA256.fullmatch(sha256):
        raise NotFound("blob", sha256)
    return sha256


class BlobStore:
    """Content-addressed files under ``root``; safe for threads and processes.

    Writes are atomic (temporary file, fsync, rename), so concurrent writers of the
    same bytes both succeed and one copy remains. Deleting a blob that no record names
    goes through ``release``, which never removes bytes that a writer - in this process
    or in another replica sharing ``root`` - is recording (see ``storing``): a hold is
    a shared lock on the blob's file under ``root/.holds``, a release its exclusive lock.
    """

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def put(self, data: bytes) -> BlobRef:
        """Store ``data`` (once per content) and return its reference.

        A caller that then writes a record naming the blob should use ``storing``
        instead, so a concurrent ``release`` cannot remove the bytes in between.
        """
        with self.storing(data) as ref:
            return ref

    @contextlib.contextmanager
    def storing(self, data: bytes) -> Iterator[BlobRef]:
        """Store ``data`` and keep it from being released until the block ends.

        Write the record that names the blob inside the block: a ``release`` whose
        check ran before the record existed then keeps the bytes.
        """
        sha256 = hashlib.sha256(data).hexdigest()
        with self.holding(sha256):
            yield self._write(data, sha256)

    @contextlib.contextmanager
    def holding(self, sha256: str) -> Iterator[None]:
        """Keep the blob from being released while the block runs, by any process that
        shares ``root``. A hold waits only for a release already removing the blob."""
        path = self._hold_path(sha256)
        with _disk(f"holding blob {sha256} under {self.root}"):
            fd = _hold_lock(path, fcntl.LOCK_SH)
        if fd is None:  # never: a blocking lock waits instead of being refused
            raise StoreError(f"could not hold blob {sha256} under {self.root}")
        try:
            os.write(fd, b"h")  # a release whose check runs now sees the file grow
            yield
        finally:
            _let_go(fd, path)

    def _hold_path(self, sha256: str) -> Path:
        return self.root / HOLDS_DIR / _checked(sha256)

    def _write(self, data: bytes, sha256: str) -> BlobRef:
        blake3 = None if _BLAKE3 is None else str(_BLAKE3.blake3(data).hexdigest())
        target = self.path(sha256)
        if not target.exists():  # a release that ran first removed it: write it again
            with _disk(f"storing blob {sha256} under {self.root}"):
                _write_atomic(target, data)
        return BlobRef(sha256=sha256, size_bytes=len(data), blake3=blake3)

    def release(self, sha256: str, unused: Callable[[], bool]) -> bool:
        """Delete the blob if ``unused()`` (which asks every kind of record) says nothing
        names it; True if it went.

        The check reads databases and takes time: a writer (of any process sharing
        ``root``) may store the same bytes meanwhile and record them after the check.
        So the removal happens, under the blob's exclusive lock, only if no writer holds
        the blob and none held it since the check began (each hold adds a byte to the
        lock file, and the last holder removes it); otherwise the bytes stay (an unnamed
        blob costs disk space, a record without bytes loses data).
        """
        path = self._hold_path(sha256)
        with _disk(f"releasing blob {sha256} under {self.root}"):
            fd = _open_lock(path)
        try:
            before = os.fstat(fd)
            if not unused():
                return False
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if not _is_file_at(fd, path) or os.fstat(fd).st_size != before.st_size:
                return False
            self.delete(sha256)
            return True
        except BlockingIOError:
            return False  # a writer holds it now
        finally:
            _let_go(fd, path)

    def path(self, sha256: str) -> Path:
        """Where the blob lives (whether or not it exists); NotFound for a bad hash."""
        sha256 = _checked(sha256)
        return self.root / sha256[:2] / sha256

    def exists(self, sha256: str) -> bool:
        """Whether a blob with that sha256 is stored."""
        return _SHA256.fullmatch(sha256) is not None and self.path(sha256).is_file()

    def open(self, sha256: str) -> BinaryIO:
        """The blob opened for binary reading; the caller closes it. NotFound if absent."""
        try:
            return self.path(sha256).open("rb")
        except FileNotFoundError:
            raise NotFound("blob", sha256) from None

    def delete(self, sha256: str) -> None:
        """Remove the blob, its thumbnails and its public copy; absent blobs are ignored."""
        folder = self.path(sha256).parent
        with _disk(f"deleting blob {sha256}"):
            for path in (self.path(sha256), *folder.glob(f"{sha256}.thumb*"),
                         *folder.glob(f"{sha256}.public")):
                path.unlink(missing_ok=True)

    def public_copy(self, sha256: str, mime: str) -> Path:
        """The blob as anyone but its owner gets it: without the graph, prompt and input
        images ComfyUI embeds (``embedded.stripped``). Made on first use and kept beside
        the blob; the blob itself for types that carry nothing to strip.

        NotFound if the blob is absent, or broken so that its metadata cannot be
        removed (then it is served to no one but its owner).
        """
        if not embedded.strippable(mime):
            return self.path(sha256)
        target = self.path(sha256).with_name(f"{sha256}.public")
        if target.exists():
            return target
        with self.open(sha256) as source:
            try:
                data = embedded.stripped(source.read(), mime)
            except embedded.Unreadable:
                raise NotFound("shareable copy of blob", sha256) from None
        with _disk(f"writing the public copy of blob {sha256}"):
            _write_atomic(target, data)
        return target

    def thumbnail(self, sha256: str, size: int = DEFAULT_THUMBNAIL_SIZE) -> Path | None:
        """A cached thumbnail (longest side ``size``) made on first use; None for non-images.

        Animated images use their first frame. NotFound if the blob is absent.
        """
        extension = THUMBNAIL_FORMAT.lower()
        target = self.path(sha256).with_name(f"{sha256}.thumb{size}.{extension}")
        if target.exists():
            return target
        with self.open(sha256) as source:
            data = _thumbnail_bytes(source, size)
        if data is None:
            return None
        with _disk(f"writing the thumbnail of blob {sha256}"):
            _write_atomic(target, data)
        return target


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        # No fsync: the job store commits with synchronous=NORMAL (durable across process
        # crashes, not power loss), and a blob is worth no more than its record. The
        # rename still makes a half-written blob impossible to see.
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _hold_lock(path: Path, mode: int) -> int | None:
    """A descriptor of ``path`` locked with ``mode`` (``flock``), or None when a
    non-blocking lock is refused. The last holder may remove the file between our
    opening and locking it; then the lock is taken again on the file now there."""
    while True:
        fd = _open_lock(path)
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _is_file_at(fd, path):
            return fd
        os.close(fd)


def _open_lock(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)


def _is_file_at(fd: int, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False


def _let_go(fd: int, path: Path) -> None:
    """Unlock ``fd``; the last holder (the one that then gets it alone) removes the
    file, so ``root/.holds`` keeps only the files of blobs held now."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if _is_file_at(fd, path):
            path.unlink(missing_ok=True)
    except BlockingIOError:
        pass  # others hold it still: the last of them removes it
    finally:
        os.close(fd)


def _thumbnail_bytes(source: BinaryIO, size: int) -> bytes | None:
    try:
        with Image.open(source) as image:
            image.seek(0)
            frame = image.convert("RGBA" if THUMBNAIL_FORMAT == "WEBP" else "RGB")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None
    frame.thumbnail((size, size))
    buffer = io.BytesIO()
    frame.save(buffer, format=THUMBNAIL_FORMAT, quality=85)
    return buffer.getvalue()


# --- records ------------------------------------------------------------------------------


class OutputRecord(BaseModel):
    """One output file of one item: where its bytes are, what it is, where it came from."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    sha256: str
    blake3: str | None = None
    mime: str
    size_bytes: int
    width: int | None = None
    height: int | None = None
    animated: bool = False
    duration: float | None = None
    kind: OutputKind
    filename: str  # as the ComfyUI node named it; for a value, its key
    node_id: str  # the ComfyUI graph node that produced it
    # The key of the node's UI result it came under (images, gifs, audio, text...); None
    # for records made before keys were kept. A value's JSON is ``value`` (also its blob).
    key: str | None = None
    value: Any = None
    seed: int | None = None
    workflow: str | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    node: str  # our name for the ComfyUI server
    job_id: str
    item_id: str
    index: int
    owner: str
    character: str | None = None
    conversation: str | None = None
    visibility: Visibility = Visibility.PRIVATE
    created_at: datetime = Field(default_factory=utcnow)


def new_output(job: Job, item: Item, blob: BlobRef, media: Media, *, filename: str,
               node_id: str, node: str, now: datetime | None = None,
               key: str | None = None) -> OutputRecord:
    """The record of a file that ``item`` produced, with the job's context copied in."""
    spec = job.spec
    return OutputRecord(
        sha256=blob.sha256, blake3=blob.blake3, size_bytes=blob.size_bytes, mime=media.mime,
        kind=media.kind, width=media.width, height=media.height, animated=media.animated,
        duration=media.duration, filename=filename, node_id=node_id, node=node, key=key,
        seed=item.seed, workflow=spec.workflow, values=dict(spec.values), job_id=job.id,
        item_id=item.id, index=item.index, owner=spec.owner, character=spec.character,
        conversation=spec.conversation, visibility=spec.visibility,
        created_at=now or utcnow(),
    )


def value_bytes(value: Any) -> bytes:
    """A UI value as the JSON its blob holds (the bytes its content download serves)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def new_value_output(job: Job, item: Item, blob: BlobRef, *, key: str, value: Any,
                     node_id: str, node: str) -> OutputRecord:
    """The record of a non-file key of a node's UI result (``{"text": ["hello"]}``): kind
    ``value``, named by its key, its JSON in ``value`` and in the blob ``value_bytes``
    made, so every face that lists or downloads outputs has it as it has files."""
    media = Media(mime=VALUE_MIME, kind=OutputKind.VALUE)
    record = new_output(job, item, blob, media, filename=key, node_id=node_id, node=node,
                        key=key)
    return record.model_copy(update={"value": value})
