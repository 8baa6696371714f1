"""Input files: the files an owner gave us for their graphs, by name and by hash.

One concept behind two wire formats: a ComfyUI client uploads ``photo.png`` to
``/upload/image`` and names it in ``LoadImage``; a Comfy API v2 client uploads an asset and
gets an id and a ``blake3:`` hash back. Both are an ``InputFile``: an owner's record over
one blob of the blob store, found by its name (ComfyUI's folder type and
``subfolder/name``), by its id, or by the hash of its bytes. The records live in the job
store (one database); the bytes in the blob store, once per content, shared with outputs
and jobs' input images. A blob goes when the last record of any kind naming it goes
(``JobStore.blob_in_use``).

Names follow ComfyUI's rules (``choose_name``): a new file under a taken name becomes
``name (1).ext`` unless it replaces it (``overwrite``) or holds the same bytes.
``InputFiles`` is the use case the façade calls; the name rules here are pure.
"""

from __future__ import annotations

import json
import posixpath
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from orchestrator.jobs import utcnow

if TYPE_CHECKING:  # the store imports this module's models
    from orchestrator.blobs import Blobs
    from orchestrator.store import JobStore

SWEEP_EVERY_S = 60.0  # expired files are deleted at most this often
SWEEP_BATCH = 500  # records one sweep deletes at most


class OnName(StrEnum):
    """What a new file does to a file the owner already has under the same name."""

    KEEP = "keep"  # both stay; the name finds the newer (v2 assets: each keeps its id)
    RENAME = "rename"  # the new one takes ComfyUI's next free ``name (N).ext``
    REPLACE = "replace"  # the new one replaces it (ComfyUI's ``overwrite``)


class InputFile(BaseModel):
    """One owner's record over a stored blob."""

    model_config = ConfigDict(frozen=True)

    id: str
    owner: str
    folder: str = "input"
    path: str | None  # how a graph names it: ``subfolder/name`` (None: by id only)
    sha256: str
    blake3: str | None = None  # hex; None for files recorded before blake3 was kept
    size_bytes: int
    content_type: str
    tags: tuple[str, ...] = ()
    created_at: datetime
    expires_at: datetime | None = None  # None: kept until deleted

    @property
    def subfolder(self) -> str:
        return posixpath.dirname(self.path or "")

    @property
    def name(self) -> str:
        return posixpath.basename(self.path or "")

    def live(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


class StoredInput(BaseModel):
    """What storing a file did: the record the caller should use, whether it is a new
    record, whether the bytes were new to the owner, and the blobs a replace let go."""

    model_config = ConfigDict(frozen=True)

    file: InputFile
    created: bool
    new_bytes: bool
    replaced: tuple[str, ...] = ()  # sha256 of records a REPLACE deleted


class InputPage(BaseModel):
    """One page of an owner's input files, newest first; ``next_cursor`` as for jobs."""

    files: list[InputFile]
    next_cursor: str | None = None


# --- names (pure) ----------------------------------------------------------------------


def graph_path(subfolder: str, name: str) -> str:
    """How a graph names ``name`` in ``subfolder`` (``LoadImage`` takes ``subfolder/name``)."""
    return f"{subfolder}/{name}" if subfolder else name


def choose_name(path: str, sha256: str, existing: Callable[[str], str | None]) -> str:
    """The path ComfyUI would store ``path`` under: itself when free or holding the same
    content (``existing`` gives the sha256 a path holds), else the first free
    ``stem (N).ext`` in the same subfolder."""
    stem, ext = posixpath.splitext(path)
    candidate, n = path, 1
    while (found := existing(candidate)) is not None and found != sha256:
        candidate, n = f"{stem} ({n}){ext}", n + 1
    return candidate


def tags_json(tags: Iterable[str]) -> str:
    return json.dumps(list(tags))


def new_file(owner: str, *, sha256: str, blake3: str | None, size_bytes: int,
             content_type: str, path: str | None, folder: str = "input",
             tags: Iterable[str] = (), now: datetime,
             expires_in: float | None = None) -> InputFile:
    """A fresh record with a new id (a uuid4, as v2 asset ids are)."""
    return InputFile(
        id=str(uuid.uuid4()), owner=owner, folder=folder, path=path, sha256=sha256,
        blake3=blake3, size_bytes=size_bytes, content_type=content_type, tags=tuple(tags),
        created_at=now,
        expires_at=None if expires_in is None else now + timedelta(seconds=expires_in))


# --- the use case --------------------------------------------------------------------------


class InputFiles:
    """Storing, finding and deleting input files over the job store and the blob store.

    ``release(sha256)`` deletes a blob once nothing names it (the orchestrator's rule);
    it runs after a record goes. Expired files read as missing at once; their records and
    bytes go in a sweep run at most every ``SWEEP_EVERY_S`` when files are stored.
    """

    def __init__(self, store: JobStore, blobs: Blobs, release: Callable[[str], object],
                 *, clock: Callable[[], datetime] = utcnow,
                 ticks: Callable[[], float] = time.monotonic) -> None:
        self.store, self.blobs, self.release = store, blobs, release
        self.clock, self.ticks = clock, ticks
        self._sweep_lock = threading.Lock()
        self._next_sweep = float("-inf")

    def put(self, owner: str, data: bytes, *, path: str | None, content_type: str,
            folder: str = "input", tags: Iterable[str] = (), expires_in: float | None = None,
            on_name: OnName = OnName.KEEP) -> StoredInput:
        """Store ``data`` and record it for ``owner`` under ``path``."""
        with self.blobs.storing(data) as blob:  # no release removes it before the record
            record = new_file(owner, sha256=blob.sha256, blake3=blob.blake3,
                              size_bytes=blob.size_bytes, content_type=content_type,
                              path=path, folder=folder, tags=tags, now=self.clock(),
                              expires_in=expires_in)
            stored = self.store.put_input_file(record, on_name=on_name)
        self._released(stored.replaced)
        self.sweep_if_due()
        return stored

    def mint(self, source: InputFile, *, path: str | None, tags: Iterable[str] = (),
             expires_in: float | None = None) -> StoredInput | None:
        """A new record of ``source``'s owner over ``source``'s bytes; None when the bytes
        are gone."""
        with self.blobs.holding(source.sha256):
            if not self.blobs.exists(source.sha256):
                return None
            record = new_file(
                source.owner, sha256=source.sha256, blake3=source.blake3,
                size_bytes=source.size_bytes, content_type=source.content_type,
                path=source.path if path is None else path, folder=source.folder,
                tags=tags, now=self.clock(), expires_in=expires_in)
            return self.store.put_input_file(record, on_name=OnName.KEEP)

    def delete(self, owner: str, file_id: str) -> InputFile | None:
        """Delete the owner's record (its bytes too unless something else names them)."""
        gone = self.store.delete_input_file(owner, file_id)
        if gone is not None:
            self._released([gone.sha256])
        return gone

    def sweep_if_due(self) -> int:
        """Delete expired records and release their bytes, if the last sweep is old
        enough; how many went."""
        with self._sweep_lock:
            now = self.ticks()
            if now < self._next_sweep:
                return 0
            self._next_sweep = now + SWEEP_EVERY_S
        return self.sweep()

    def sweep(self) -> int:
        """Delete up to ``SWEEP_BATCH`` expired records now; how many went."""
        gone = self.store.delete_expired_input_files(SWEEP_BATCH)
        self._released(file.sha256 for file in gone)
        return len(gone)

    def _released(self, hashes: Iterable[str]) -> None:
        for sha256 in set(hashes):
            self.release(sha256)
