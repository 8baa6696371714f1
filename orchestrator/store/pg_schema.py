"""The PostgreSQL schema, versioned in a ``schema_version`` table and migrated on open.

The same tables and columns as SQLite's (``schema.py``), so the table modules' SQL runs
on both: JSON bodies as text beside copies of the columns that filters, ordering and
claims use. Every replica migrates on start; an advisory lock makes the first one do it
and the others wait, so an upgrade of a deployment is one restart.
"""

from __future__ import annotations

from orchestrator.errors import StoreError
from orchestrator.store.dialect import Conn

MIGRATION_LOCK = 7_218_001  # the advisory lock key held while migrating

_V1 = (
    """CREATE TABLE jobs (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        owner TEXT NOT NULL,
        workflow TEXT,
        character TEXT,
        conversation TEXT,
        visibility TEXT NOT NULL,
        priority INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
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
        job_seq BIGINT NOT NULL,
        active_node TEXT,
        retry_base INTEGER NOT NULL DEFAULT 0,
        body TEXT NOT NULL,
        graph TEXT,
        UNIQUE (job_id, idx)
    )""",
    "CREATE INDEX items_queue ON items (priority, owner, job_seq, idx) WHERE status = 'queued'",
    "CREATE INDEX items_active ON items (active_node) WHERE active_node IS NOT NULL",
    "CREATE INDEX items_job ON items (job_id)",
    """CREATE TABLE idempotency (
        owner TEXT NOT NULL,
        key TEXT NOT NULL,
        job_id TEXT NOT NULL,
        created_at DOUBLE PRECISION NOT NULL,
        request_digest TEXT,
        PRIMARY KEY (owner, key)
    )""",
    "CREATE INDEX idempotency_age ON idempotency (created_at)",
    """CREATE TABLE outputs (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
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

# Several replicas: each renews its row in ``replicas`` while it lives (its lease on every
# item it claimed, named in ``items.replica``); the items of a replica whose lease lapsed
# are adopted by another.
_V2 = (
    """CREATE TABLE replicas (
        id TEXT PRIMARY KEY,
        seen_at DOUBLE PRECISION NOT NULL  -- the database's clock, POSIX seconds
    )""",
    "ALTER TABLE items ADD COLUMN replica TEXT",
)

# One database for everything durable: input files, single-use keys, tokens, counters
# (see ``schema.py``'s step 5, the same tables).
_V5 = (
    """CREATE TABLE input_files (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        owner TEXT NOT NULL,
        folder TEXT NOT NULL,
        path TEXT,
        sha256 TEXT NOT NULL,
        blake3 TEXT,
        size_bytes BIGINT NOT NULL,
        content_type TEXT NOT NULL,
        tags TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT
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
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value BIGINT NOT NULL)",
)

# A job's requirements, stored at submit (see schema.py, step 3).
_V3 = ("ALTER TABLE jobs ADD COLUMN requirements TEXT",)

# Outputs keep their kind beside the body (see schema.py, step 4).
_V4 = ("ALTER TABLE outputs ADD COLUMN kind TEXT",
       "UPDATE outputs SET kind = body::json->>'kind'")

MIGRATIONS: dict[int, tuple[str, ...]] = {1: _V1, 2: _V2, 3: _V3, 4: _V4, 5: _V5}
# Each schema change adds its own numbered entry above; a number not (yet) taken is an
# empty step, so changes made side by side may land in any order.
SCHEMA_VERSION = max(MIGRATIONS)


def migrate(conn: Conn, where: str) -> None:
    """Bring the schema to ``SCHEMA_VERSION`` inside the caller's transaction.

    Raises ``StoreError`` for a database written by a newer version of the orchestrator.
    """
    conn.execute("SELECT pg_advisory_xact_lock(?)", [MIGRATION_LOCK])
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    version = int(row[0] or 0)
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} has schema version {version}, newer than this orchestrator's "
            f"{SCHEMA_VERSION}; upgrade the orchestrator or use another database"
        )
    for target in range(version + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS.get(target, ()):
            conn.execute(statement)
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", [target])
