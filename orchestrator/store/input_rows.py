"""Rows of the input_files table, read into and written from ``InputFile``.

Each function runs inside the caller's transaction. "Live" means not expired at ``now``:
an expired record reads as missing at once, and goes for good in a sweep
(``expired``). Several records may share a name (v2 assets keep their ids); the name
finds the newest live one. Timestamps are ``tables.timestamp`` texts, which sort as the
times they name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from orchestrator.inputs import InputFile, OnName, StoredInput, choose_name, tags_json
from orchestrator.store.dialect import Conn
from orchestrator.store.tables import page_rows, parsed, timestamp

COLUMNS = ("id, owner, folder, path, sha256, blake3, size_bytes, content_type, tags,"
           " created_at, expires_at")
_LIVE = "(expires_at IS NULL OR expires_at > ?)"


def row_of(file: InputFile) -> tuple[object, ...]:
    """The row's values in ``COLUMNS`` order."""
    return (file.id, file.owner, file.folder, file.path, file.sha256, file.blake3,
            file.size_bytes, file.content_type, tags_json(file.tags), timestamp(file.created_at),
            None if file.expires_at is None else timestamp(file.expires_at))


def file_of(row: Sequence[Any]) -> InputFile:
    """A stored row (``COLUMNS`` order) as a record; ``StoreError`` naming it if unreadable."""
    with parsed(f"input file {row[0]}"):
        return InputFile(
            id=row[0], owner=row[1], folder=row[2], path=row[3], sha256=row[4],
            blake3=row[5], size_bytes=int(row[6]), content_type=row[7],
            tags=tuple(json.loads(row[8])), created_at=datetime.fromisoformat(row[9]),
            expires_at=None if row[10] is None else datetime.fromisoformat(row[10]))


def _one(conn: Conn, where: str, params: Sequence[object]) -> InputFile | None:
    row = conn.execute(f"SELECT {COLUMNS} FROM input_files WHERE {where}"
                       " ORDER BY seq DESC LIMIT 1", list(params)).fetchone()
    return None if row is None else file_of(row)


def by_id(conn: Conn, owner: str, file_id: str, now: datetime) -> InputFile | None:
    """The owner's live record with that id."""
    return _one(conn, f"id = ? AND owner = ? AND {_LIVE}", [file_id, owner, timestamp(now)])


def by_path(conn: Conn, owner: str, folder: str, path: str, now: datetime) -> InputFile | None:
    """The owner's newest live record under ``folder``/``path``."""
    return _one(conn, f"owner = ? AND folder = ? AND path = ? AND {_LIVE}",
                [owner, folder, path, timestamp(now)])


def by_hash(conn: Conn, owner: str, column: str, digest: str,
            now: datetime) -> InputFile | None:
    """The owner's newest live record of the bytes with that ``sha256`` or ``blake3``."""
    if column not in ("sha256", "blake3"):
        raise ValueError(f"no hash column {column!r}")
    return _one(conn, f"owner = ? AND {column} = ? AND {_LIVE}",
                [owner, digest, timestamp(now)])


def by_paths(conn: Conn, owner: str, folder: str, paths: Iterable[str],
             now: datetime) -> dict[str, InputFile]:
    """The owner's newest live record under each of ``paths`` that has one."""
    wanted = sorted(set(paths))
    if not wanted:
        return {}
    marks = ", ".join("?" * len(wanted))
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM input_files WHERE owner = ? AND folder = ? AND path IN"
        f" ({marks}) AND {_LIVE} ORDER BY seq", [owner, folder, *wanted, timestamp(now)])
    return {file.path: file for file in map(file_of, rows) if file.path is not None}


def put(conn: Conn, file: InputFile, on_name: OnName) -> StoredInput:
    """Record ``file`` under its name as ``on_name`` says; the owner's live record of the
    same bytes under the same name is returned instead of a new one."""
    now = file.created_at
    had = by_hash(conn, file.owner, "sha256", file.sha256, now) is not None
    if file.path is None:
        return _insert(conn, file, new_bytes=not had)

    def held(path: str) -> str | None:
        found = by_path(conn, file.owner, file.folder, path, now)
        return None if found is None else found.sha256

    if on_name is OnName.RENAME:
        file = file.model_copy(update={"path": choose_name(file.path, file.sha256, held)})
    assert file.path is not None
    same = by_path(conn, file.owner, file.folder, file.path, now)
    if same is not None and same.sha256 == file.sha256:
        return StoredInput(file=same, created=False, new_bytes=False)
    replaced: tuple[str, ...] = ()
    if on_name is OnName.REPLACE:
        rows = conn.execute("DELETE FROM input_files WHERE owner = ? AND folder = ? AND"
                            " path = ? RETURNING sha256",
                            [file.owner, file.folder, file.path]).fetchall()
        replaced = tuple(row[0] for row in rows)
    return _insert(conn, file, new_bytes=not had, replaced=replaced)


def _insert(conn: Conn, file: InputFile, *, new_bytes: bool,
            replaced: tuple[str, ...] = ()) -> StoredInput:
    marks = ", ".join("?" * len(COLUMNS.split(",")))
    conn.execute(f"INSERT INTO input_files ({COLUMNS}) VALUES ({marks})", row_of(file))
    return StoredInput(file=file, created=True, new_bytes=new_bytes, replaced=replaced)


def insert_kept(conn: Conn, file: InputFile) -> bool:
    """Insert ``file`` unless its id is stored already (an import run twice); whether it
    was inserted."""
    marks = ", ".join("?" * len(COLUMNS.split(",")))
    return conn.execute(f"INSERT INTO input_files ({COLUMNS}) VALUES ({marks})"
                        " ON CONFLICT (id) DO NOTHING", row_of(file)).rowcount > 0


def page(conn: Conn, owner: str, now: datetime, *, limit: int,
         before: int | None) -> tuple[list[InputFile], int | None]:
    """Up to ``limit`` of the owner's live records newest first, and the seq to continue
    before (None at the end)."""
    rows = page_rows(conn, f"SELECT seq, {COLUMNS} FROM input_files",
                     ["owner = ?", _LIVE], [owner, timestamp(now)], limit=limit,
                     before=before)
    files = [file_of(row[1:]) for row in rows[:limit]]
    return files, (rows[limit - 1][0] if len(rows) > limit else None)


def delete(conn: Conn, owner: str, file_id: str) -> InputFile | None:
    """Delete the owner's record with that id (expired or not); the record, or None."""
    row = conn.execute(f"DELETE FROM input_files WHERE id = ? AND owner = ?"
                       f" RETURNING {COLUMNS}", [file_id, owner]).fetchone()
    return None if row is None else file_of(row)


def expired(conn: Conn, now: datetime, limit: int) -> list[InputFile]:
    """Delete up to ``limit`` records expired at ``now``; the records that went."""
    ids = [row[0] for row in conn.execute(
        "SELECT id FROM input_files WHERE expires_at IS NOT NULL AND expires_at <= ?"
        " ORDER BY expires_at LIMIT ?", [timestamp(now), limit])]
    gone: list[InputFile] = []
    for file_id in ids:
        row = conn.execute(f"DELETE FROM input_files WHERE id = ? RETURNING {COLUMNS}",
                           [file_id]).fetchone()
        if row is not None:
            gone.append(file_of(row))
    return gone
