"""Rows of the jobs, items and idempotency tables, read into and written from models.

Every function runs inside the caller's transaction on the connection it is given.
Stored rows are parsed back through the pydantic models here, once; a row that no
longer parses is reported as ``StoreError`` naming it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from orchestrator.errors import InvalidCursor, StoreError
from orchestrator.jobs import Item, ItemStatus, Job, JobRequirements, JobSpec, JobStatus, job_status
from orchestrator.store.dialect import SQLITE, Conn, Dialect

ON_NODE_SQL = "active_node IS NOT NULL"


@contextlib.contextmanager
def parsed(what: str) -> Iterator[None]:
    """Turn a stored row that does not parse into ``StoreError`` naming it."""
    try:
        yield
    except (ValidationError, ValueError) as exc:
        raise StoreError(
            f"stored {what} cannot be read ({exc}); the database was changed outside the "
            "orchestrator or by an incompatible version"
        ) from exc


def timestamp(moment: datetime) -> str:
    """A sortable UTC ISO timestamp (fixed width: microseconds always present)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def where(filters: Mapping[str, object]) -> tuple[list[str], list[object]]:
    """SQL equality clauses and parameters for the filters that are not None."""
    clauses = [f"{column} = ?" for column, value in filters.items() if value is not None]
    params = [value for value in filters.values() if value is not None]
    return clauses, params


def page_rows(conn: Conn, select: str, clauses: Sequence[str],
              params: Sequence[object], *, limit: int, before: int | None) -> list[Any]:
    """Rows of ``select`` (whose first column is ``seq``), newest first, at most limit + 1."""
    conditions = [*clauses, "seq < ?"] if before is not None else list(clauses)
    values = [*params, before] if before is not None else list(params)
    sql = select + (" WHERE " + " AND ".join(conditions) if conditions else "")
    return conn.execute(sql + " ORDER BY seq DESC LIMIT ?", [*values, limit + 1]).fetchall()


_SEQ = re.compile(r"[0-9]{1,18}")


def encode_cursor(kind: str, seq: int | None) -> str | None:
    """An opaque page cursor continuing before ``seq`` in list ``kind`` (None: no more)."""
    if seq is None:
        return None
    return base64.urlsafe_b64encode(f"{kind}:{seq}".encode()).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> int | None:
    """The seq a cursor of list ``kind`` continues before; ``InvalidCursor`` if foreign."""
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        prefix, _, seq = text.partition(":")
        # ASCII digits that fit SQLite's INTEGER: a larger number fails to bind (it was
        # a 500), and isdigit() takes digits int() refuses.
        if prefix == kind and _SEQ.fullmatch(seq):
            return int(seq)
    except ValueError:
        pass
    raise InvalidCursor(cursor)



# --- jobs and items ---------------------------------------------------------------------


def insert_job(conn: Conn, job: Job) -> None:
    """Insert a new job and its items."""
    spec = job.spec
    seq = conn.execute(
        "INSERT INTO jobs (id, owner, workflow, character, conversation, visibility, priority,"
        " created_at, cancel_requested, status, spec, requirements)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING seq",
        (job.id, spec.owner, spec.workflow, spec.character, spec.conversation,
         spec.visibility.value, spec.priority, timestamp(job.created_at),
         int(job.cancel_requested), job.status.value, spec.model_dump_json(),
         None if job.requirements is None else job.requirements.model_dump_json()),
    ).fetchone()[0]
    conn.executemany(
        "INSERT INTO items (id, job_id, idx, status, owner, priority, job_seq, body)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [(item.id, job.id, item.index, item.status.value, spec.owner, spec.priority,
          seq, _item_body(item)) for item in job.items],
    )


def load_job(conn: Conn, job_id: str) -> Job | None:
    """The job with that id, or None."""
    jobs = load_jobs(conn, [job_id])
    return jobs[0] if jobs else None


def load_jobs(conn: Conn, job_ids: Sequence[str]) -> list[Job]:
    """The jobs with those ids that exist, in the order given."""
    if not job_ids:
        return []
    marks = ", ".join("?" * len(job_ids))
    rows = conn.execute(
        f"SELECT id, spec, created_at, cancel_requested, requirements FROM jobs"
        f" WHERE id IN ({marks})",
        list(job_ids)).fetchall()
    items = _load_items(conn, marks, job_ids)
    by_id = {row[0]: _job(row, items.get(row[0], [])) for row in rows}
    return [by_id[job_id] for job_id in job_ids if job_id in by_id]


def _load_items(conn: Conn, marks: str,
                job_ids: Sequence[str]) -> dict[str, list[Item]]:
    rows = conn.execute(
        f"SELECT job_id, id, body, graph FROM items WHERE job_id IN ({marks})"
        " ORDER BY job_id, idx", list(job_ids))
    items: dict[str, list[Item]] = {}
    for job_id, item_id, body, graph in rows:
        with parsed(f"item {item_id}"):
            item = Item.model_validate_json(body)
            if graph is not None:
                item = item.model_copy(update={"graph": json.loads(graph)})
        items.setdefault(job_id, []).append(item)
    return items


def _job(row: Sequence[Any], items: list[Item]) -> Job:
    job_id, spec, created_at, cancel_requested, requirements = row
    with parsed(f"job {job_id}"):
        return Job(id=job_id, spec=JobSpec.model_validate_json(spec), items=items,
                   created_at=datetime.fromisoformat(created_at),
                   cancel_requested=bool(cancel_requested),
                   requirements=None if requirements is None else
                   JobRequirements.model_validate_json(requirements))


def save_requirements(conn: Conn, job_id: str, requirements: JobRequirements) -> None:
    """Store the requirements of a job stored without them."""
    conn.execute("UPDATE jobs SET requirements = ? WHERE id = ?",
                 (requirements.model_dump_json(), job_id))


def _item_body(item: Item) -> str:
    return item.model_dump_json(exclude={"graph"})


def item_home(conn: Conn, item_id: str) -> tuple[str, int] | None:
    """The item's job id and its retry base (attempts made before the last retry_job)."""
    row = conn.execute("SELECT job_id, retry_base FROM items WHERE id = ?",
                       (item_id,)).fetchone()
    return (row[0], row[1]) if row else None


def load_item(conn: Conn, item_id: str, *,
              graph: bool = True) -> tuple[str, int, Item] | None:
    """The item alone (no other item of its job is read), with its job id and retry base:
    what an item's change needs, where ``load_job`` would parse every sibling. Without
    ``graph`` its rendered graph is not parsed (a caller about to replace it)."""
    row = conn.execute(
        f"SELECT job_id, retry_base, body, {'graph' if graph else 'NULL'} FROM items"
        " WHERE id = ?", (item_id,)).fetchone()
    if row is None:
        return None
    with parsed(f"item {item_id}"):
        item = Item.model_validate_json(row[2])
        if row[3] is not None:
            item = item.model_copy(update={"graph": json.loads(row[3])})
    return row[0], row[1], item


def job_spec(conn: Conn, job_id: str) -> JobSpec | None:
    """The job's spec alone, or None when the job is gone."""
    row = conn.execute("SELECT spec FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None:
        return None
    with parsed(f"job {job_id}"):
        return JobSpec.model_validate_json(row[0])


def settle_job_state(conn: Conn, job_id: str) -> tuple[JobStatus, str | None]:
    """Write the job's status derived from its items' status columns (no item body is
    parsed), and return it with the first item error when the job ended in failure: what
    a change of one item needs to know whether the job ended."""
    rows = conn.execute(
        "SELECT j.cancel_requested, i.status FROM jobs AS j JOIN items AS i"
        " ON i.job_id = j.id WHERE j.id = ? ORDER BY i.idx", (job_id,)).fetchall()
    with parsed(f"job {job_id}"):
        status = job_status([ItemStatus(row[1]) for row in rows],
                            bool(rows[0][0]) if rows else False)
    conn.execute("UPDATE jobs SET status = ? WHERE id = ?", (status.value, job_id))
    error = None
    if status.terminal and any(row[1] == ItemStatus.FAILED.value for row in rows):
        first = conn.execute("SELECT id, body FROM items WHERE job_id = ? AND status = ?"
                             " ORDER BY idx", (job_id, ItemStatus.FAILED.value)).fetchall()
        for item_id, body in first:
            with parsed(f"item {item_id}"):
                failed = Item.model_validate_json(body)
            if failed.error is not None:
                error = failed.error.message
                break
    return status, error


def save_item(conn: Conn, item: Item) -> None:
    """Write an item's state (not its graph: see ``save_graph``)."""
    active = item.node if item.status.on_node else None
    conn.execute("UPDATE items SET status = ?, active_node = ?, body = ? WHERE id = ?",
                 (item.status.value, active, _item_body(item), item.id))


def reset_retry_base(conn: Conn, item: Item) -> None:
    """Start a new attempts budget for the item: earlier attempts no longer count."""
    conn.execute("UPDATE items SET retry_base = ? WHERE id = ?",
                 (len(item.attempts), item.id))


def save_graph(conn: Conn, item: Item) -> None:
    """Write the item's rendered graph and state."""
    save_item(conn, item)
    graph = None if item.graph is None else json.dumps(item.graph)
    conn.execute("UPDATE items SET graph = ? WHERE id = ?", (graph, item.id))


def save_job_state(conn: Conn, job: Job) -> None:
    """Write the job's cancel flag and its status derived from the items."""
    conn.execute("UPDATE jobs SET cancel_requested = ?, status = ? WHERE id = ?",
                 (int(job.cancel_requested), job.status.value, job.id))


def page_jobs(conn: Conn, filters: Mapping[str, object],
              metadata: Mapping[str, str], *, limit: int, before: int | None,
              dialect: Dialect = SQLITE) -> tuple[list[Job], int | None]:
    """Up to ``limit`` jobs newest first, and the seq to continue before (None at the end)."""
    clauses, params = where(filters)
    for key, value in metadata.items():
        clause, values = dialect.metadata_match(key, value)
        clauses.append(clause)
        params += values
    rows = page_rows(conn, "SELECT seq, id FROM jobs", clauses, params,
                     limit=limit, before=before)
    jobs = load_jobs(conn, [row[1] for row in rows[:limit]])
    return jobs, (rows[limit - 1][0] if len(rows) > limit else None)


# --- the queue --------------------------------------------------------------------------


def top_priority(conn: Conn, below: int | None) -> int | None:
    """The highest priority among queued items, below ``below`` if given."""
    bound, params = ("AND priority < ?", [below]) if below is not None else ("", [])
    row = conn.execute(f"SELECT MAX(priority) FROM items WHERE status = 'queued' {bound}",
                       params).fetchone()
    return None if row[0] is None else int(row[0])


# Walks the distinct owners of one priority by index seeks (a skip scan), with each
# owner's oldest queued job: cost grows with owners, not with queued items.
_OWNER_HEADS = """
WITH RECURSIVE owners (owner) AS (
    SELECT (SELECT owner FROM items WHERE status = 'queued' AND priority = :p
            ORDER BY owner LIMIT 1)
    UNION ALL
    SELECT (SELECT i.owner FROM items AS i WHERE i.status = 'queued' AND i.priority = :p
            AND i.owner > owners.owner ORDER BY i.owner LIMIT 1)
    FROM owners WHERE owners.owner IS NOT NULL
)
SELECT owner, (SELECT job_seq FROM items WHERE status = 'queued' AND priority = :p
               AND items.owner = owners.owner ORDER BY job_seq LIMIT 1)
FROM owners WHERE owner IS NOT NULL
"""


def owner_heads(conn: Conn, priority: int) -> list[tuple[str, int]]:
    """Each owner with queued items at ``priority``, with its oldest job's seq."""
    return [(row[0], row[1]) for row in conn.execute(_OWNER_HEADS, {"p": priority})]


def owner_queue(conn: Conn, priority: int, owner: str,
                limit: int) -> list[tuple[str, str]]:
    """(job id, item id) of the owner's queued items at ``priority``, oldest first."""
    rows = conn.execute(
        "SELECT i.job_id, i.id FROM items AS i JOIN jobs AS j ON j.id = i.job_id"
        " WHERE i.status = 'queued' AND i.priority = ? AND i.owner = ?"
        " AND j.cancel_requested = 0 ORDER BY i.job_seq, i.idx LIMIT ?",
        (priority, owner, limit))
    return [(row[0], row[1]) for row in rows]


def owner_load(conn: Conn) -> dict[str, int]:
    """How many items each owner has on nodes."""
    rows = conn.execute(
        f"SELECT owner, COUNT(*) FROM items WHERE {ON_NODE_SQL} GROUP BY owner")
    return {row[0]: row[1] for row in rows}


def on_node(conn: Conn, node: str | None,
            replica: str | None = None) -> list[tuple[str, str]]:
    """(job id, item id) of items on ``node`` (any node if None), oldest first; only those
    ``replica`` runs, when given (PostgreSQL's ``items.replica``)."""
    clause, params = ("active_node = ?", [node]) if node is not None else (ON_NODE_SQL, [])
    if replica is not None:
        clause, params = f"{clause} AND replica = ?", [*params, replica]
    rows = conn.execute(
        f"SELECT job_id, id FROM items WHERE {clause} ORDER BY job_seq, idx", params)
    return [(row[0], row[1]) for row in rows]


def count(conn: Conn, sql: str, params: Sequence[object] = ()) -> int:
    """The single integer a COUNT query answers."""
    return int(conn.execute(sql, params).fetchone()[0])


# --- idempotency keys ---------------------------------------------------------------------


def spec_digest(spec: JobSpec) -> str:
    """A digest of what a job asks for, equal for equal requests whatever their key order."""
    text = json.dumps(spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def idempotent_job(conn: Conn, owner: str, key: str,
                   since: datetime) -> tuple[str, str | None] | None:
    """The job id and request digest remembered for (owner, key) at or after ``since``
    (the digest is None for a key remembered before digests were)."""
    row = conn.execute(
        "SELECT job_id, request_digest FROM idempotency"
        " WHERE owner = ? AND key = ? AND created_at >= ?",
        (owner, key, since.timestamp())).fetchone()
    return None if row is None else (str(row[0]), None if row[1] is None else str(row[1]))


def remember_key(conn: Conn, owner: str, key: str, job_id: str,
                 now: datetime, digest: str) -> None:
    """Remember (owner, key) → job id and request digest, replacing an expired entry."""
    conn.execute(
        "INSERT INTO idempotency (owner, key, job_id, created_at, request_digest)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT (owner, key) DO UPDATE SET"
        " job_id = excluded.job_id, created_at = excluded.created_at,"
        " request_digest = excluded.request_digest",
        (owner, key, job_id, now.timestamp(), digest))


def forget_keys(conn: Conn, before: datetime) -> int:
    """Delete keys remembered before ``before``; how many were deleted."""
    return conn.execute("DELETE FROM idempotency WHERE created_at < ?",
                        (before.timestamp(),)).rowcount


# --- single-use idempotency keys (Comfy API v2) ---------------------------------------------
# The same table as the replaying keys: one namespace of keys per owner, whatever the face.
# A single-use key is claimed before its job exists and refuses any second use.


def claim_single_use(conn: Conn, owner: str, key: str, job_id: str, now: datetime,
                     since: datetime) -> bool:
    """Claim (owner, key) for ``job_id``, replacing an entry older than ``since``; False
    when a live entry has it."""
    return conn.execute(
        "INSERT INTO idempotency (owner, key, job_id, created_at, request_digest, single_use)"
        " VALUES (?, ?, ?, ?, NULL, 1) ON CONFLICT (owner, key) DO UPDATE SET"
        " job_id = excluded.job_id, created_at = excluded.created_at,"
        " request_digest = NULL, single_use = 1 WHERE idempotency.created_at < ?",
        (owner, key, job_id, now.timestamp(), since.timestamp())).rowcount > 0


def release_single_use(conn: Conn, owner: str, key: str, job_id: str) -> None:
    """Forget the claim of (owner, key) for ``job_id`` (no other claim)."""
    conn.execute("DELETE FROM idempotency WHERE owner = ? AND key = ? AND job_id = ?",
                 (owner, key, job_id))


# --- counters -------------------------------------------------------------------------------


def next_count(conn: Conn, name: str, at_least: int = 0) -> int:
    """The counter's next value: 0, 1, 2, ... over the database's life, never below
    ``at_least`` (a counter that follows the clock, yet gives each caller its own)."""
    row = conn.execute(
        "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE"
        " SET value = CASE WHEN counters.value + 1 < excluded.value THEN excluded.value"
        " ELSE counters.value + 1 END RETURNING value", (name, at_least)).fetchone()
    return int(row[0])


def raise_count(conn: Conn, name: str, at_least: int) -> None:
    """Make the counter's next value at least ``at_least`` (an imported counter)."""
    conn.execute(
        "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE"
        " SET value = CASE WHEN counters.value < excluded.value THEN excluded.value"
        " ELSE counters.value END", (name, at_least - 1))
