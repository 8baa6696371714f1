"""Blobs several kinds of record share, and deleting one once the last record goes.

One ``BlobStore`` holds, once per content, the bytes of job outputs, jobs' input images,
v2 assets and the gateway's uploads. Outputs and inputs are rows of the job store; v2
assets and gateway uploads live in their own SQLite files in the data directory, which are
read here over a read-only connection of their own, so no front end needs another's objects.

It sits in the v2 package although ``/v1/outputs`` uses it too: the package's
``__init__`` imports the v2 routes, which import this module, so a module outside the
package that imported ``v2.db`` for the file name could not be imported by those routes.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from orchestrator.service import Orchestrator
from orchestrator.web.gateway.uploads import UPLOADS_FILE
from orchestrator.web.v2.db import DB_FILE as V2_DB_FILE

# Records over the blob store outside the job store, in files of the data directory.
BLOB_USERS = ((V2_DB_FILE, "SELECT 1 FROM assets WHERE sha256 = ? LIMIT 1"),
              (UPLOADS_FILE, "SELECT 1 FROM uploads WHERE sha256 = ? LIMIT 1"))
READ_TIMEOUT_S = 5.0  # waiting for another writer of those files before keeping the blob


def release_blob(orch: Orchestrator, sha256: str) -> bool:
    """Delete the blob (and its thumbnails) unless a record still names it; True if it went.

    Call it after deleting a record that named the blob. Outputs, jobs' input images, v2
    assets and gateway uploads count. A file that cannot be read counts as naming the blob:
    keeping bytes costs only disk space.
    """
    # The check and the removal are one step of the blob store, so an upload of the same
    # bytes while the check runs keeps them (see BlobStore.release).
    return orch.blobs.release(sha256, lambda: blob_unused(orch, sha256))


def blob_unused(orch: Orchestrator, sha256: str) -> bool:
    """Whether no output, job input, v2 asset or gateway upload names the blob."""
    store = orch.store
    if store.blob_references(sha256) or store.input_references(sha256):
        return False
    data = orch.data_dir
    return not any(_names_blob(data / file, sql, sha256) for file, sql in BLOB_USERS)


def _names_blob(database: Path, sql: str, sha256: str) -> bool:
    """Whether the SQLite file has a row for the blob; True when it cannot tell."""
    if not database.exists():
        return False
    try:
        uri = database.resolve().as_uri() + "?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=READ_TIMEOUT_S)) as conn:
            return conn.execute(sql, (sha256,)).fetchone() is not None
    except sqlite3.Error:
        return True  # unreadable or another schema: keeping a blob costs only disk space
