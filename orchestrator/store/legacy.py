"""Upgrading a data directory of the older layout in place: its separate database files
imported into the one database, then set aside.

Before one database held everything, a data directory had three more SQLite files: the
gateway's uploads and queue counter (``comfyui-uploads.sqlite3``), the v2 assets and
single-use keys (``v2.sqlite3``) and the API tokens (``tokens.sqlite3``). On open each file
found is read into the store in one transaction, then renamed ``<name>.imported`` so the
next start skips it (and an operator can still look at it). Every row is inserted only
when its key is new, so an import interrupted between its commit and the rename runs
again harmlessly.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from orchestrator.errors import StoreError
from orchestrator.inputs import InputFile, graph_path
from orchestrator.store import input_rows, tables, token_rows
from orchestrator.store.dialect import Conn
from orchestrator.store.token_rows import TokenRow

UPLOADS_FILE = "comfyui-uploads.sqlite3"
V2_FILE = "v2.sqlite3"
TOKENS_FILE = "tokens.sqlite3"
IMPORTED_SUFFIX = ".imported"
PROMPT_COUNTER = "prompt"  # the gateway's ComfyUI queue number
BUSY_TIMEOUT_S = 10.0
# Uploads had no id: each gets one derived from its address, the same at every import.
_UPLOAD_IDS = uuid.UUID("6f1d2c3e-0b5a-4c1e-9a57-2f0c6e8d4b11")

Importer = Callable[[Conn, sqlite3.Connection, Path], int]


def _tables(old: sqlite3.Connection) -> set[str]:
    return {row[0] for row in old.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _uploads(conn: Conn, old: sqlite3.Connection, blobs: Path) -> int:
    present = _tables(old)
    count = 0
    if "uploads" in present:
        for owner, kind, subfolder, name, sha256, created_at in old.execute(
                "SELECT owner, kind, subfolder, name, sha256, created_at FROM uploads"):
            blob = blobs / sha256[:2] / sha256
            file = InputFile(
                id=str(uuid.uuid5(_UPLOAD_IDS, json.dumps([owner, kind, subfolder, name]))),
                owner=owner, folder=kind, path=graph_path(subfolder, name), sha256=sha256,
                size_bytes=blob.stat().st_size if blob.is_file() else 0,
                content_type=mimetypes.guess_type(name)[0] or "application/octet-stream",
                created_at=datetime.fromisoformat(created_at))
            count += input_rows.insert_kept(conn, file)
    if "counters" in present:
        for name, value in old.execute("SELECT name, value FROM counters"):
            if name == PROMPT_COUNTER:
                tables.raise_count(conn, PROMPT_COUNTER, int(value) + 1)
    return count


def _v2(conn: Conn, old: sqlite3.Connection, blobs: Path) -> int:
    present = _tables(old)
    count = 0
    if "assets" in present:
        for row in old.execute("SELECT id, owner, blake3, sha256, size_bytes, content_type,"
                               " file_path, tags, created_at, expires_at FROM assets"):
            file = InputFile(
                id=row[0], owner=row[1], blake3=row[2], sha256=row[3], size_bytes=int(row[4]),
                content_type=row[5], path=row[6], tags=tuple(json.loads(row[7])),
                created_at=datetime.fromisoformat(row[8]),
                expires_at=None if row[9] is None else datetime.fromisoformat(row[9]))
            count += input_rows.insert_kept(conn, file)
    if "idempotency_keys" in present:
        for owner, key, job_id, used_at in old.execute(
                "SELECT owner, key, job_id, used_at FROM idempotency_keys"):
            count += conn.execute(
                "INSERT INTO idempotency (owner, key, job_id, created_at, request_digest,"
                " single_use) VALUES (?, ?, ?, ?, NULL, 1) ON CONFLICT (owner, key)"
                " DO NOTHING", (owner, key, job_id, float(used_at))).rowcount
    return count


def _tokens(conn: Conn, old: sqlite3.Connection, blobs: Path) -> int:
    if "tokens" not in _tables(old):
        return 0
    count = 0
    for row in old.execute("SELECT id, secret_sha256, owner, admin, created_at, revoked_at"
                           " FROM tokens"):
        count += token_rows.insert(conn, TokenRow(
            id=row[0], secret_sha256=row[1], owner=row[2], admin=bool(row[3]),
            created_at=datetime.fromisoformat(row[4]),
            revoked_at=None if row[5] is None else datetime.fromisoformat(row[5])))
    return count


OLD_FILES: dict[str, Importer] = {UPLOADS_FILE: _uploads, V2_FILE: _v2, TOKENS_FILE: _tokens}


def old_files(data_dir: Path) -> list[Path]:
    """The files of the older layout still in ``data_dir``."""
    return [data_dir / name for name in OLD_FILES if (data_dir / name).is_file()]


@contextlib.contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    """The old file opened for reading; a write-ahead log a killed process left is
    replayed first (a read-only connection would not see its commits)."""
    try:
        with contextlib.closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)) as old:
            yield old
    except (sqlite3.Error, ValueError, OSError) as exc:
        raise StoreError(f"importing {path} into the job database failed ({exc}); move the "
                         "file away to start without it, or restore it from a backup") from exc


def import_file(conn: Conn, path: Path, blobs: Path) -> int:
    """Copy the old file's rows into the store (inside the caller's transaction); how many
    rows were new."""
    with reading(path) as old:
        return OLD_FILES[path.name](conn, old, blobs)


def set_aside(path: Path) -> None:
    """Rename the imported file (and its journal files) to ``<name>.imported``; another
    process that imported it at the same time may have done so already."""
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        with contextlib.suppress(FileNotFoundError):
            part.rename(part.with_name(part.name + IMPORTED_SUFFIX))
