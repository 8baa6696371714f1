"""Assets: records, per owner, over blake3-addressed blobs in the orchestrator's blob store.

Uploads land in the same ``BlobStore`` as job outputs (one copy per content, found by
sha256); this module keeps the asset records (id, owner, blake3, type, name) in the v2
database. The server always computes the hash; a client's ``expected_hash`` only
verifies it. An owner uploading bytes they already have gets the same record back
(dedup), so re-running a script re-uploads nothing. Deleting the last record over some
bytes deletes the bytes (see ``blobs``). Job outputs are assets too: they are read from
the job store (see ``Assets.get``) and are held by their job, so they cannot be deleted
here.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from blake3 import blake3

from orchestrator.errors import JobNotFound
from orchestrator.jobs import utcnow
from orchestrator.outputs import BlobStore, OutputRecord, kind_of, sniff_mime
from orchestrator.web.errors import UnsupportedMedia
from orchestrator.web.limits import check_image, too_large
from orchestrator.web.v2.db import Database
from orchestrator.web.v2.errors import AssetInUse, BlobNotFound, HashMismatch, InvalidBody, NotFound

# Kinds of file a ComfyUI node loads as an input; models are an operator's business.
UPLOAD_FAMILIES = frozenset({"image", "video", "audio"})
FILE_PATH_MAX_CHARS = 255
TAGS_MAX = 16
SWEEP_EVERY_S = 60.0  # expired uploads are deleted at most this often
SWEEP_BATCH = 500  # records one sweep deletes at most

SCHEMA = """
CREATE TABLE IF NOT EXISTS assets (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    blake3 TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    content_type TEXT NOT NULL,
    file_path TEXT,
    tags TEXT NOT NULL,         -- JSON list
    created_at TEXT NOT NULL,   -- ISO 8601 with offset
    expires_at TEXT             -- ISO 8601, or NULL: kept until deleted
);
CREATE INDEX IF NOT EXISTS assets_owner_hash ON assets (owner, blake3);
CREATE INDEX IF NOT EXISTS assets_owner_path ON assets (owner, file_path, created_at);
"""
_COLUMNS = ("id, owner, blake3, sha256, size_bytes, content_type, file_path, tags, "
            "created_at, expires_at")


@dataclass(frozen=True)
class AssetRecord:
    """One asset as stored (an upload) or as derived from a job output."""

    id: str
    owner: str
    blake3: str | None  # hex; None for an output recorded without blake3
    sha256: str
    size_bytes: int
    content_type: str
    file_path: str | None
    created_at: datetime
    tags: tuple[str, ...] = ()
    expires_at: datetime | None = None
    job_id: str | None = None  # set for outputs: the job that made it
    created_new: bool | None = field(default=None, compare=False)

    @property
    def hash(self) -> str | None:
        return None if self.blake3 is None else f"blake3:{self.blake3}"


@dataclass(frozen=True)
class Upload:
    """What ``POST /assets`` carries besides the bytes."""

    content_type: str
    file_path: str
    expected_hash: str | None = None
    tags: tuple[str, ...] = ()
    expires_in: int | None = None


def parse_hash(text: str) -> str:
    """The hex digest of ``blake3:<hex>``; 404 ``blob_not_found`` for anything else
    (a malformed hash names no blob either)."""
    algo, _, digest = text.partition(":")
    if algo != "blake3" or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise BlobNotFound(f"{text!r} is not a hash this service issues; send blake3:<64 hex>")
    return digest


def checked_upload(data: bytes, upload: Upload, max_bytes: int) -> str:
    """The content type to record for ``data``, after the size and type limits.

    Images are opened with Pillow (ComfyUI would store any bytes sent as an image);
    video and audio must announce their declared family in their first bytes.
    """
    if len(data) > max_bytes:
        raise too_large(f"upload {upload.file_path!r}", len(data), max_bytes)
    family = upload.content_type.partition("/")[0].lower()
    if family not in UPLOAD_FAMILIES:
        raise UnsupportedMedia(f"content_type {upload.content_type!r} is not accepted; upload "
                               "an image, a video or an audio file")
    if family == "image":
        check_image(upload.file_path, data, max_bytes)
    sniffed = sniff_mime(data)
    if family != "image" and (sniffed is None or kind_of(sniffed).value != family):
        raise UnsupportedMedia(f"upload {upload.file_path!r} is not {family} "
                               f"({sniffed or 'unrecognised content'})")
    return sniffed or upload.content_type


def checked_file_path(name: str) -> str:
    if not 0 < len(name) <= FILE_PATH_MAX_CHARS or not name.isprintable():
        raise InvalidBody(f"file_path must be 1-{FILE_PATH_MAX_CHARS} printable characters")
    return name


def checked_tags(tags: Iterable[str]) -> tuple[str, ...]:
    found = tuple(tags)
    if len(found) > TAGS_MAX or any(not 0 < len(t) <= 64 for t in found):
        raise InvalidBody(f"tags: at most {TAGS_MAX} tags of 1-64 characters")
    return found


class AssetStore:
    """Asset records in the v2 database over ``blobs``; safe for threads."""

    def __init__(self, db: Database, blobs: BlobStore, *,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.db, self.blobs, self.clock = db, blobs, clock

    # --- creating ----------------------------------------------------------------------

    def upload(self, owner: str, data: bytes, upload: Upload, content_type: str) -> AssetRecord:
        """Store ``data`` and return its record (``created_new`` set).

        ``HashMismatch`` when ``expected_hash`` differs, before anything is stored. The
        owner's existing record of the same bytes and name is returned as it is.
        """
        digest = blake3(data).hexdigest()
        if upload.expected_hash is not None and upload.expected_hash != f"blake3:{digest}":
            raise HashMismatch(f"the uploaded bytes hash to blake3:{digest}, not "
                               f"{upload.expected_hash}; nothing was stored")
        had = self._newest_by_hash(owner, digest)
        with self.blobs.storing(data) as blob:  # no release removes it before the record
            record = AssetRecord(
                id=str(uuid.uuid4()), owner=owner, blake3=digest, sha256=blob.sha256,
                size_bytes=blob.size_bytes, content_type=content_type,
                file_path=upload.file_path, created_at=self.clock(), tags=upload.tags,
                expires_at=self._expiry(upload.expires_in))
            return self._mint(record, created_new=had is None)

    def from_hash(self, owner: str, digest: str, *, file_path: str | None, tags: tuple[str, ...],
                  expires_in: int | None) -> tuple[AssetRecord, bool]:
        """A record over bytes the owner uploaded before; the flag says it is new.

        ``BlobNotFound`` when the owner has no such bytes (others' uploads do not count).
        """
        had = self._newest_by_hash(owner, digest)
        if had is None or not self.blobs.exists(had.sha256):
            raise BlobNotFound(f"no upload of yours hashes to blake3:{digest}; upload the file")
        record = AssetRecord(
            id=str(uuid.uuid4()), owner=owner, blake3=digest, sha256=had.sha256,
            size_bytes=had.size_bytes, content_type=had.content_type,
            file_path=file_path if file_path is not None else had.file_path,
            created_at=self.clock(), tags=tags, expires_at=self._expiry(expires_in))
        minted = self._mint(record, created_new=False)
        return minted, minted.id == record.id

    def _mint(self, record: AssetRecord, *, created_new: bool) -> AssetRecord:
        """Insert ``record`` unless the owner has a live record of the same bytes and name."""
        with self.db.tx("recording an asset") as conn:
            same = conn.execute(
                f"SELECT {_COLUMNS} FROM assets WHERE owner = ? AND blake3 = ? AND "
                "file_path IS ? ORDER BY created_at DESC LIMIT 1",
                (record.owner, record.blake3, record.file_path)).fetchone()
            existing = _record(same) if same is not None else None
            if existing is not None and self._live(existing):
                return _with_new(existing, False)
            conn.execute(f"INSERT INTO assets ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",
                         _row(record))
        return _with_new(record, created_new)

    def _expiry(self, expires_in: int | None) -> datetime | None:
        return None if expires_in is None else self.clock() + timedelta(seconds=expires_in)

    # --- reading -------------------------------------------------------------------------

    def get(self, owner: str, asset_id: str) -> AssetRecord | None:
        """The owner's live record with that id, or None."""
        with self.db.tx("reading an asset") as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM assets WHERE id = ? AND owner = ?",
                               (asset_id, owner)).fetchone()
        record = _record(row) if row is not None else None
        return record if record is not None and self._live(record) else None

    def has_hash(self, owner: str, digest: str) -> bool:
        found = self._newest_by_hash(owner, digest)
        return found is not None and self.blobs.exists(found.sha256)

    def by_file_path(self, owner: str, names: Iterable[str]) -> dict[str, AssetRecord]:
        """The owner's newest live record for each of ``names`` that one exists for."""
        wanted = sorted(set(names))
        if not wanted:
            return {}
        marks = ",".join("?" * len(wanted))
        with self.db.tx("finding assets by name") as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM assets WHERE owner = ? AND "
                                f"file_path IN ({marks}) ORDER BY created_at",
                                (owner, *wanted)).fetchall()
        return {r.file_path: r for r in map(_record, rows) if r.file_path and self._live(r)}

    def _newest_by_hash(self, owner: str, digest: str) -> AssetRecord | None:
        with self.db.tx("finding an asset by hash") as conn:
            rows = conn.execute(f"SELECT {_COLUMNS} FROM assets WHERE owner = ? AND blake3 = ? "
                                "ORDER BY created_at DESC", (owner, digest)).fetchall()
        live = [r for r in map(_record, rows) if self._live(r)]
        return live[0] if live else None

    def _live(self, record: AssetRecord) -> bool:
        return record.expires_at is None or record.expires_at > self.clock()

    # --- deleting ------------------------------------------------------------------------

    def delete_expired(self, limit: int) -> list[AssetRecord]:
        """Delete up to ``limit`` records whose expiry has passed and return them (their
        bytes are the caller's to release, as for ``delete``)."""
        now = self.clock()
        with self.db.tx("deleting expired assets") as conn:
            # ISO 8601 texts in UTC sort as the times they name.
            rows = conn.execute(f"SELECT {_COLUMNS} FROM assets WHERE expires_at IS NOT NULL"
                                " AND expires_at <= ? LIMIT ?",
                                (now.isoformat(), limit)).fetchall()
            gone = [r for r in map(_record, rows) if not self._live(r)]
            conn.executemany("DELETE FROM assets WHERE id = ?", [(r.id,) for r in gone])
        return gone

    def delete(self, owner: str, asset_id: str) -> AssetRecord | None:
        """Delete the owner's record and return it; None when there was none.

        The blob stays: other records may share it. Pass the record's sha256 to
        ``orchestrator.web.v2.blobs.release_blob`` to delete it once nothing names it.
        """
        with self.db.tx("deleting an asset") as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM assets WHERE id = ? AND owner = ?",
                               (asset_id, owner)).fetchone()
            if row is None:
                return None
            conn.execute("DELETE FROM assets WHERE id = ?", (asset_id,))
        return _record(row)


class ExpirySweep:
    """Deletes expired uploads, and their bytes once nothing names them, at most once per
    ``SWEEP_EVERY_S``; ``maybe_run`` is called on uploads, where new bytes arrive.

    Expired records already read as missing; the sweep is what gives their disk back.
    """

    def __init__(self, store: AssetStore, release: Callable[[str], object], *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.release, self.clock = store, release, clock
        self._lock = threading.Lock()
        self._next = float("-inf")

    def maybe_run(self) -> int:
        """Sweep if it is time; how many records went."""
        with self._lock:
            now = self.clock()
            if now < self._next:
                return 0
            self._next = now + SWEEP_EVERY_S
        gone = self.store.delete_expired(SWEEP_BATCH)
        for sha256 in {record.sha256 for record in gone}:
            self.release(sha256)
        return len(gone)


def output_asset(record: OutputRecord) -> AssetRecord:
    """A job output seen as an asset."""
    return AssetRecord(
        id=record.id, owner=record.owner, blake3=record.blake3, sha256=record.sha256,
        size_bytes=record.size_bytes, content_type=record.mime, file_path=record.filename,
        created_at=record.created_at, job_id=record.job_id)


class Assets:
    """Uploads and outputs behind one lookup, scoped to an owner."""

    def __init__(self, store: AssetStore, output: Callable[[str], OutputRecord]) -> None:
        self.store = store
        self.output = output

    def get(self, owner: str, asset_id: str) -> AssetRecord:
        """The owner's upload or output with that id; ``NotFound`` otherwise."""
        found = self.store.get(owner, asset_id)
        if found is not None:
            return found
        try:
            record = self.output(asset_id)
        except JobNotFound:
            record = None
        if record is None or record.owner != owner:
            raise NotFound(f"no asset with id {asset_id!r}")
        return output_asset(record)

    def delete(self, owner: str, asset_id: str) -> AssetRecord:
        """Delete an upload and return its record; ``AssetInUse`` for an output (its job
        holds it), ``NotFound`` for an id the owner has neither of.

        The bytes stay: release them with ``orchestrator.web.v2.blobs.release_blob``.
        """
        deleted = self.store.delete(owner, asset_id)
        if deleted is not None:
            return deleted
        if self.get(owner, asset_id).job_id is not None:
            raise AssetInUse("this asset cannot be deleted while the service holds it")
        raise NotFound(f"no asset with id {asset_id!r}")


def _with_new(record: AssetRecord, created_new: bool) -> AssetRecord:
    return AssetRecord(**{**record.__dict__, "created_new": created_new})


def _row(r: AssetRecord) -> tuple[object, ...]:
    return (r.id, r.owner, r.blake3, r.sha256, r.size_bytes, r.content_type, r.file_path,
            json.dumps(list(r.tags)), r.created_at.isoformat(),
            r.expires_at.isoformat() if r.expires_at else None)


def _record(row: sqlite3.Row | tuple[object, ...]) -> AssetRecord:
    (id_, owner, digest, sha, size, ctype, path, tags, created, expires) = row
    return AssetRecord(
        id=str(id_), owner=str(owner), blake3=str(digest), sha256=str(sha),
        size_bytes=int(str(size)), content_type=str(ctype),
        file_path=None if path is None else str(path),
        created_at=datetime.fromisoformat(str(created)), tags=tuple(json.loads(str(tags))),
        expires_at=None if expires is None else datetime.fromisoformat(str(expires)))
