"""Deleting finished jobs past their retention: which ones, and their rows.

Each function runs inside the caller's transaction. A job goes with its items, its
outputs' records and the idempotency keys that name it; the blobs stay for the caller
to release once nothing else names them.
"""

from __future__ import annotations

from datetime import datetime

from orchestrator.jobs import TERMINAL_JOB
from orchestrator.outputs import OutputRecord
from orchestrator.store import output_rows, tables
from orchestrator.store.dialect import Conn

_TERMINAL = tuple(sorted(status.value for status in TERMINAL_JOB))


def expired_job_ids(conn: Conn, created_before: datetime,
                    limit: int) -> list[str]:
    """Up to ``limit`` finished jobs created before ``created_before``, oldest first."""
    marks = ", ".join("?" * len(_TERMINAL))
    rows = conn.execute(
        f"SELECT id FROM jobs WHERE created_at < ? AND status IN ({marks})"
        " ORDER BY seq LIMIT ?",
        (tables.timestamp(created_before), *_TERMINAL, limit)).fetchall()
    return [row[0] for row in rows]


def delete_job_rows(conn: Conn, job_id: str) -> list[OutputRecord]:
    """Delete the job, its items, outputs and keys; the output records that went."""
    rows = conn.execute("SELECT id, body FROM outputs WHERE job_id = ?", (job_id,)).fetchall()
    records = [output_rows.record_of(row[0], row[1]) for row in rows]
    conn.execute("DELETE FROM outputs WHERE job_id = ?", (job_id,))
    conn.execute("DELETE FROM items WHERE job_id = ?", (job_id,))
    conn.execute("DELETE FROM idempotency WHERE job_id = ?", (job_id,))
    conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
    return records
