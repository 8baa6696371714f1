"""``SqliteJobStore``: the job store in one SQLite file in WAL mode.

One connection behind a lock serves every thread. Every write runs in ``BEGIN
IMMEDIATE`` and commits before the method returns, so a method's change survives a
SIGKILL of the process the moment it returns, and two processes never claim the same
item. The methods are ``sql_store.SqlJobStore``'s; sqlite3's exceptions are translated
into ``StoreError`` here, once (``_translated``).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from orchestrator.errors import StoreError
from orchestrator.jobs import utcnow
from orchestrator.store import schema
from orchestrator.store.dialect import SQLITE
from orchestrator.store.sql_store import IDEMPOTENCY_TTL, MAX_PAGE, Clock, SqlJobStore

__all__ = ["IDEMPOTENCY_TTL", "MAX_PAGE", "SqliteJobStore"]

# In WAL mode NORMAL keeps every commit through a crash or SIGKILL of the process, and
# only a power loss can undo the last commits; FULL survives that too, with one fsync per
# commit (about half the enqueue rate on an SSD).
Synchronous = Literal["FULL", "NORMAL"]
DEFAULT_SYNCHRONOUS: Synchronous = "NORMAL"

# Timeouts (seconds)
DEFAULT_BUSY_TIMEOUT = 10.0  # a write waits this long for another process's transaction

_HINTS = {
    sqlite3.SQLITE_BUSY: "another process held the database too long; retry",
    sqlite3.SQLITE_LOCKED: "another connection held the database too long; retry",
    sqlite3.SQLITE_CANTOPEN: "check that the data directory exists and is writable",
    sqlite3.SQLITE_NOTADB: "it is not an orchestrator database; choose another data directory",
    sqlite3.SQLITE_CORRUPT: "the file is damaged; restore it from a backup",
    sqlite3.SQLITE_FULL: "the disk is full; free some space",
    sqlite3.SQLITE_READONLY: "the file is read-only; check its permissions",
    sqlite3.SQLITE_CONSTRAINT: "a record with that id already exists",
    sqlite3.SQLITE_IOERR: "the disk reported an I/O error",
}


@contextlib.contextmanager
def _translated(path: Path, what: str) -> Iterator[None]:
    """Map any sqlite3 failure to ``StoreError`` naming the database and the operation."""
    try:
        yield
    except sqlite3.Error as exc:
        code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
        hint = _HINTS.get(code, "see the SQLite message for the cause")
        raise StoreError(f"{what} in {path} failed: {exc}; {hint}") from exc


def _connect(path: Path, synchronous: Synchronous, busy_timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=busy_timeout, isolation_level=None,
                           check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
    except BaseException:
        conn.close()
        raise
    return conn


class SqliteJobStore(SqlJobStore):
    """The ``JobStore`` in one SQLite file; see ``orchestrator.store.protocol``.

    ``clock`` gives every timestamp (tz-aware UTC). The schema is created on open.
    """

    def __init__(self, path: Path, *, clock: Clock = utcnow,
                 synchronous: Synchronous = DEFAULT_SYNCHRONOUS,
                 busy_timeout: float = DEFAULT_BUSY_TIMEOUT) -> None:
        super().__init__(clock=clock, dialect=SQLITE)
        self.path = Path(path)
        self._lock = threading.RLock()
        self._closed = False
        # Write transactions of this connection so far: with SQLite's data_version (which
        # counts other connections' commits) it says whether anything changed since a read.
        self._writes = 0
        self._queued_counts: tuple[tuple[int, int], dict[str, int]] | None = None
        with _translated(self.path, "opening the job store"):
            self._conn = _connect(self.path, synchronous, busy_timeout)
        try:
            with self._tx("creating the schema") as conn:
                schema.migrate(conn, self.path)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close the database connection; harmless twice."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    @contextlib.contextmanager
    def _tx(self, what: str, *, write: bool = True) -> Iterator[sqlite3.Connection]:
        """One transaction: committed on normal exit, rolled back on any exception."""
        with self._lock:
            if self._closed:
                raise StoreError(f"the job store at {self.path} is closed; {what} needs an "
                                 "open store")
            conn = self._conn
            with _translated(self.path, what):
                try:
                    conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                    self._writes += write
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.rollback()
                    raise

    def queued_count(self, owner: str | None = None) -> int:
        """See ``JobStore.queued_count``: every owner's count is read at once and kept
        until the database changes (a write here, or another connection's commit), so an
        admission's two counts - the service's and the owner's - cost one transaction."""
        with self._lock:
            if self._closed:
                return super().queued_count(owner)  # refused, with the store's message
            with _translated(self.path, "counting queued items"):
                version = (self._writes,
                           int(self._conn.execute("PRAGMA data_version").fetchone()[0]))
            if self._queued_counts is None or self._queued_counts[0] != version:
                with self._tx("counting queued items", write=False) as conn:
                    rows = conn.execute("SELECT owner, COUNT(*) FROM items"
                                        " WHERE status = 'queued' GROUP BY owner").fetchall()
                self._queued_counts = (version, {row[0]: int(row[1]) for row in rows})
            counts = self._queued_counts[1]
        return sum(counts.values()) if owner is None else counts.get(owner, 0)
