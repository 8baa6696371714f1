"""Rows of the outputs table, read into and written from ``OutputRecord``.

Each function runs inside the caller's transaction. A file is recorded once per
(item, graph node, file name): adding it again returns the record already stored.
"""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.errors import StoreError
from orchestrator.outputs import OutputRecord
from orchestrator.store.dialect import Conn
from orchestrator.store.tables import page_rows, parsed, where

_COLUMNS = ("id, sha256, owner, job_id, item_id, node_id, filename, workflow, character,"
            " conversation, visibility, body, kind")
_VISIBLE_SQL = "(owner = ? OR visibility = 'public')"
_FILES_SQL = "kind <> 'value'"  # leaves out a node's UI values (OutputKind.VALUE)


def insert(conn: Conn, record: OutputRecord) -> OutputRecord:
    """Store ``record``, or return the one already stored for the same file or id."""
    cursor = conn.execute(
        f"INSERT INTO outputs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT DO NOTHING",
        (record.id, record.sha256, record.owner, record.job_id, record.item_id,
         record.node_id, record.filename, record.workflow, record.character,
         record.conversation, record.visibility.value, record.model_dump_json(),
         record.kind.value))
    if cursor.rowcount:
        return record
    existing = for_file(conn, record.item_id, record.filename, record.node_id)
    existing = existing or load(conn, record.id)
    if existing is None:
        raise StoreError(f"output {record.id} conflicts with a stored output that cannot "
                         "be read back: the outputs table is inconsistent (a bug)")
    return existing


def load(conn: Conn, output_id: str) -> OutputRecord | None:
    """The record with that id, or None."""
    row = conn.execute("SELECT body FROM outputs WHERE id = ?", (output_id,)).fetchone()
    return None if row is None else _record(output_id, row[0])


def for_file(conn: Conn, item_id: str, filename: str,
             node_id: str | None = None) -> OutputRecord | None:
    """The record of ``filename`` produced by ``item_id`` (by ``node_id`` if given)."""
    clauses, params = where({"item_id": item_id, "filename": filename, "node_id": node_id})
    row = conn.execute(f"SELECT id, body FROM outputs WHERE {' AND '.join(clauses)}"
                       " ORDER BY seq LIMIT 1", params).fetchone()
    return None if row is None else _record(row[0], row[1])


def page(conn: Conn, filters: Mapping[str, object], *, limit: int,
         before: int | None, visible_to: str | None = None, files_only: bool = False
         ) -> tuple[list[OutputRecord], int | None]:
    """Up to ``limit`` records newest first, and the seq to continue before (None at end);
    with ``visible_to``, only that owner's records and public ones; with ``files_only``,
    no UI values."""
    clauses, params = where(filters)
    if visible_to is not None:
        clauses, params = [*clauses, _VISIBLE_SQL], [*params, visible_to]
    if files_only:
        clauses = [*clauses, _FILES_SQL]
    rows = page_rows(conn, "SELECT seq, id, body FROM outputs", clauses, params,
                     limit=limit, before=before)
    records = [_record(row[1], row[2]) for row in rows[:limit]]
    return records, (rows[limit - 1][0] if len(rows) > limit else None)


def delete(conn: Conn, output_id: str) -> bool:
    """Delete the record; whether it existed."""
    return conn.execute("DELETE FROM outputs WHERE id = ?", (output_id,)).rowcount > 0


def blob_references(conn: Conn, sha256: str) -> int:
    """How many records point at the blob."""
    return int(conn.execute("SELECT COUNT(*) FROM outputs WHERE sha256 = ?",
                            (sha256,)).fetchone()[0])


def record_of(output_id: str, body: str) -> OutputRecord:
    """A stored row's record; ``StoreError`` naming it when it does not parse."""
    with parsed(f"output {output_id}"):
        return OutputRecord.model_validate_json(body)


_record = record_of
