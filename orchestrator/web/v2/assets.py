"""Assets: a v2 client's view of its input files and of its jobs' outputs.

An uploaded asset is one of the caller's input files in the core (``orchestrator.inputs``,
through the façade): an id, a ``blake3:`` hash and a name over one blob of the blob store,
kept in the job database. The server always computes the hash; a client's
``expected_hash`` only verifies it. An owner uploading bytes they already have under the
same name gets the same record back (dedup), so re-running a script re-uploads nothing.
Deleting the last record over some bytes deletes the bytes. Job outputs are assets too:
they are read as outputs, under the façade's one rule of who may read an output (its
owner, anyone when public, an admin always; see ``Assets.get``), and are held by their
job, so they cannot be deleted here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from blake3 import blake3

from orchestrator.errors import JobNotFound
from orchestrator.errors import NotFound as CoreNotFound
from orchestrator.inputs import InputFile, OnName
from orchestrator.outputs import OutputRecord
from orchestrator.service import Orchestrator
from orchestrator.tokens import Principal
from orchestrator.web.errors import UnsupportedMedia
from orchestrator.web.limits import check_image, too_large
from orchestrator.web.v2.errors import AssetInUse, BlobNotFound, HashMismatch, InvalidBody, NotFound

# Kinds of file a ComfyUI node loads as an input; models are an operator's business.
UPLOAD_FAMILIES = frozenset({"image", "video", "audio"})
FILE_PATH_MAX_CHARS = 255
TAGS_MAX = 16


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
    # What the record reads: the input file or the output (where its bytes are found).
    source: InputFile | OutputRecord | None = field(default=None, compare=False, repr=False)

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
    sniffed = Orchestrator.sniff_mime(data)
    if family != "image" and (sniffed is None or sniffed.partition("/")[0] != family):
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


def _caller(owner: str) -> Principal:
    """The caller an owner's request stands for, as the façade takes it: an asset is its
    owner's alone (an admin token sees its own assets too, as before)."""
    return Principal(owner=owner, admin=False, token_id="")


def _asset(file: InputFile, *, created_new: bool | None = None) -> AssetRecord:
    return AssetRecord(
        id=file.id, owner=file.owner, blake3=file.blake3, sha256=file.sha256,
        size_bytes=file.size_bytes, content_type=file.content_type, file_path=file.path,
        created_at=file.created_at, tags=file.tags, expires_at=file.expires_at,
        created_new=created_new, source=file)


class AssetStore:
    """The caller's uploaded assets: their input files, over the façade."""

    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch

    def upload(self, owner: str, data: bytes, upload: Upload, content_type: str) -> AssetRecord:
        """Store ``data`` and return its record (``created_new``: the bytes were new to
        the owner).

        ``HashMismatch`` when ``expected_hash`` differs, before anything is stored. The
        owner's existing record of the same bytes and name is returned as it is.
        """
        digest = blake3(data).hexdigest()
        if upload.expected_hash is not None and upload.expected_hash != f"blake3:{digest}":
            raise HashMismatch(f"the uploaded bytes hash to blake3:{digest}, not "
                               f"{upload.expected_hash}; nothing was stored")
        stored = self.orch.put_input(_caller(owner), data, path=upload.file_path,
                                     content_type=content_type, tags=upload.tags,
                                     expires_in=upload.expires_in, on_name=OnName.KEEP)
        return _asset(stored.file, created_new=stored.new_bytes)

    def from_hash(self, owner: str, digest: str, *, file_path: str | None, tags: tuple[str, ...],
                  expires_in: int | None) -> tuple[AssetRecord, bool]:
        """A record over bytes the owner uploaded before; the flag says it is new.

        ``BlobNotFound`` when the owner has no such bytes (others' uploads do not count).
        """
        try:
            stored = self.orch.mint_input(_caller(owner), digest, path=file_path, tags=tags,
                                          expires_in=expires_in)
        except CoreNotFound as exc:
            raise BlobNotFound(f"no upload of yours hashes to blake3:{digest}; upload the "
                               "file") from exc
        return _asset(stored.file, created_new=False), stored.created

    def get(self, owner: str, asset_id: str) -> AssetRecord | None:
        """The owner's live record with that id, or None."""
        try:
            return _asset(self.orch.input_file(_caller(owner), asset_id))
        except CoreNotFound:
            return None

    def has_hash(self, owner: str, digest: str) -> bool:
        return self.orch.input_by_hash(_caller(owner), blake3=digest) is not None

    def by_file_path(self, owner: str, names: Iterable[str]) -> dict[str, AssetRecord]:
        """The owner's newest live record for each of ``names`` that one exists for."""
        found = self.orch.inputs_named(_caller(owner), names)
        return {name: _asset(file) for name, file in found.items()}

    def delete(self, owner: str, asset_id: str) -> AssetRecord | None:
        """Delete the owner's record (its bytes too, unless another record names them)
        and return it; None when there was none."""
        try:
            return _asset(self.orch.delete_input(_caller(owner), asset_id))
        except CoreNotFound:
            return None

    def path(self, record: AssetRecord, who: Principal) -> tuple[Path, bool]:
        """Where the record's bytes are as ``who`` gets them, and whether that is the copy
        without the graph ComfyUI embeds (an output read by anyone but its owner);
        ``NotFound`` when they are gone."""
        source = record.source
        if isinstance(source, OutputRecord):
            try:
                found = self.orch.output_file(who, source)
            except JobNotFound as exc:
                raise NotFound("the asset's bytes are gone") from exc
            return found.path, found.public
        path = None if source is None else self.orch.input_path(source)
        if path is None or not path.is_file():
            raise NotFound("the asset's bytes are gone")
        return path, False


def output_asset(record: OutputRecord) -> AssetRecord:
    """A job output seen as an asset."""
    return AssetRecord(
        id=record.id, owner=record.owner, blake3=record.blake3, sha256=record.sha256,
        size_bytes=record.size_bytes, content_type=record.mime, file_path=record.filename,
        created_at=record.created_at, job_id=record.job_id, source=record)


class Assets:
    """Uploads and outputs behind one lookup, for a caller."""

    def __init__(self, store: AssetStore) -> None:
        self.store = store

    def get(self, who: Principal, asset_id: str) -> AssetRecord:
        """The caller's upload, or an output the caller may read (``output_for``), with
        that id; ``NotFound`` otherwise."""
        found = self.store.get(who.owner, asset_id)
        if found is not None:
            return found
        try:
            record = self.store.orch.output_for(who, asset_id)
        except JobNotFound as exc:
            raise NotFound(f"no asset with id {asset_id!r}") from exc
        return output_asset(record)

    def delete(self, who: Principal, asset_id: str) -> AssetRecord:
        """Delete the caller's upload (and its bytes once nothing names them) and return
        its record; ``AssetInUse`` for an output (its job holds it), ``NotFound`` for an
        id the caller may see neither of."""
        deleted = self.store.delete(who.owner, asset_id)
        if deleted is not None:
            return deleted
        if self.get(who, asset_id).job_id is not None:
            raise AssetInUse("this asset cannot be deleted while the service holds it")
        raise NotFound(f"no asset with id {asset_id!r}")
