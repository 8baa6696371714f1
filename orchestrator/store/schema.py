"""The SQLite schema, versioned with ``PRAGMA user_version`` and created on open.

Models are stored as JSON (spec, item body, output body); the columns beside them are
copies kept only so that filters, ordering and claims can use indexes. ``seq`` (the
rowid) is the creation order: cursors and claim age use it, never wall-clock time.
"""

from __future__ import annotations

import sqlite3

from orchestrator.errors import StoreError

_V1 = (
    """CREATE TABLE jobs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        owner TEXT NOT NULL,
        workflow TEXT,
        character TEXT,
        conversation TEXT,
        visibility TEXT NOT NULL,
        priority INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,  -- jobs.job_status over the items, kept in the same transaction
        spec TEXT NOT NULL
    )""",
    "CREATE INDEX jobs_owner ON jobs (owner, seq)",
    "CREATE INDEX jobs_status ON jobs (status, seq)",
    "CREATE INDEX jobs_workflow ON jobs (workflow, seq) WHERE workflow IS NOT NULL",
    "CREATE INDEX jobs_character ON jobs (character, seq) WHERE character IS NOT NULL",
    "CREATE INDEX jobs_conversation ON jobs (conversation, seq) WHERE conversation IS NOT NULL",
    """CREATE TABLE items (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL REFERENCES jobs (id),
        idx INTEGER NOT NULL,
        status TEXT NOT NULL,
        owner TEXT NOT NULL,
        priority INTEGER NOT NULL,
        job_seq INTEGER NOT NULL,
        active_node TEXT,  -- the node while dispatched/running/canceling, else NULL
        retry_base INTEGER NOT NULL DEFAULT 0,  -- attempts made before the last retry_job
        body TEXT NOT NULL,
        graph TEXT,
        UNIQUE (job_id, idx)
    )""",
    "CREATE INDEX items_queue ON items (priority, owner, job_seq, idx) WHERE status = 'queued'",
    "CREATE INDEX items_active ON items (active_node) WHERE active_node IS NOT NULL",
    """CREATE TABLE idempotency (
        owner TEXT NOT NULL,
        key TEXT NOT NULL,
        job_id TEXT NOT NULL,
        created_at REAL NOT NULL,  -- POSIX seconds
        PRIMARY KEY (owner, key)
    ) WITHOUT ROWID""",
    "CREATE INDEX idempotency_age ON idempotency (created_at)",
    """CREATE TABLE outputs (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        sha256 TEXT NOT NULL,
        owner TEXT NOT NULL,
        job_id TEXT NOT NULL,
        item_id TEXT NOT NULL,
        node_id TEXT NOT NULL,
        filename TEXT NOT NULL,
        workflow TEXT,
        character TEXT,
        conversation TEXT,
        visibility TEXT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (item_id, node_id, filename)
    )""",
    "CREATE INDEX outputs_owner ON outputs (owner, seq)",
    "CREATE INDEX outputs_job ON outputs (job_id, seq)",
    "CREATE INDEX outputs_character ON outputs (character, visibility, seq)",
    "CREATE INDEX outputs_conversation ON outputs (conversation, owner, seq)",
    "CREATE INDEX outputs_workflow ON outputs (workflow, seq)",
    "CREATE INDEX outputs_sha256 ON outputs (sha256)",
)

# An idempotency key remembers a digest of the request it was first sent with, so the
# same key with another request is refused instead of replayed. Keys remembered before
# this (NULL) replay as they always did.
_V2 = ("ALTER TABLE idempotency ADD COLUMN request_digest TEXT",)

# One database for everything durable: the input files owners gave us (gateway uploads and
# v2 assets, by name and by hash), single-use idempotency keys beside the replaying ones,
# API tokens, and named counters (the gateway's queue number). A data directory of the
# older layout has its separate files imported on open (``store/legacy.py``).
_V5 = (
    """CREATE TABLE input_files (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        owner TEXT NOT NULL,
        folder TEXT NOT NULL,  -- ComfyUI's folder type: input, temp or output
        path TEXT,             -- the name a graph uses: subfolder/name
        sha256 TEXT NOT NULL,
        blake3 TEXT,
        size_bytes INTEGER NOT NULL,
        content_type TEXT NOT NULL,
        tags TEXT NOT NULL,    -- JSON list
        created_at TEXT NOT NULL,
        expires_at TEXT        -- NULL: kept until deleted
    )""",
    "CREATE INDEX input_files_path ON input_files (owner, folder, path, seq)",
    "CREATE INDEX input_files_blake3 ON input_files (owner, blake3, seq)",
    "CREATE INDEX input_files_sha256 ON input_files (sha256, owner)",
    "CREATE INDEX input_files_expiry ON input_files (expires_at) WHERE expires_at IS NOT NULL",
    "ALTER TABLE idempotency ADD COLUMN single_use INTEGER NOT NULL DEFAULT 0",
    """CREATE TABLE tokens (
        id TEXT PRIMARY KEY,
        secret_sha256 TEXT NOT NULL,
        owner TEXT NOT NULL,
        admin INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    )""",
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
)

# A job's requirements (node classes, model files; ``jobs.JobRequirements`` as JSON) are
# stored at submit, so a claim never renders. NULL for jobs stored before: the pool works
# them out once, outside any claim, and stores them.
_V3 = ("ALTER TABLE jobs ADD COLUMN requirements TEXT",)

# Outputs keep their kind beside the body, so galleries of pictures can leave out a node's
# UI values (kind ``value``, ``outputs.py``); earlier rows take it from their body.
_V4 = ("ALTER TABLE outputs ADD COLUMN kind TEXT",
       "UPDATE outputs SET kind = json_extract(body, '$.kind')")

_MIGRATIONS: dict[int, tuple[str, ...]] = {1: _V1, 2: _V2, 3: _V3, 4: _V4, 5: _V5}
# Each schema change adds its own numbered entry above; a number not (yet) taken is an
# empty step, so changes made side by side may land in any order.
SCHEMA_VERSION = max(_MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: object) -> None:
    """Bring the schema to ``SCHEMA_VERSION`` inside the caller's write transaction.

    Raises ``StoreError`` for a database written by a newer version of the orchestrator.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{path} has schema version {version}, newer than this orchestrator's "
            f"{SCHEMA_VERSION}; upgrade the orchestrator or use another data directory"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        for statement in _MIGRATIONS.get(target, ()):
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {target}")
