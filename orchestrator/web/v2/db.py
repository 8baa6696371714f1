"""The v2 front end's own SQLite file (``v2.sqlite3`` in the data directory).

It holds what the job store does not: single-use idempotency keys and asset records.
One connection serves every thread behind a lock (each transaction is microseconds;
opening a connection per operation cost milliseconds on a busy machine). It is closed
when the ``Database`` is garbage collected or the process exits, so the router that owns
it needs no shutdown hook of its own.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

from orchestrator.errors import StoreError

DB_FILE = "v2.sqlite3"
# Seconds a writer waits for another one before giving up; writes here take microseconds.
BUSY_TIMEOUT_S = 10.0


class Database:
    """One SQLite file; ``tx()`` is a committed transaction; safe for threads."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                         check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")  # not allowed inside a transaction
            self._conn.execute("PRAGMA synchronous=NORMAL")  # WAL: durable at checkpoints
            self._conn.executescript(schema)
        except sqlite3.Error as exc:
            raise StoreError(f"creating the v2 tables in {path} failed ({exc}); check the "
                             "data directory's space and permissions") from exc
        self._lock = threading.Lock()
        weakref.finalize(self, self._conn.close)

    @contextlib.contextmanager
    def tx(self, what: str) -> Iterator[sqlite3.Connection]:
        """The connection inside ``BEGIN IMMEDIATE``; committed on leaving, else rolled back.

        SQLite errors become ``StoreError`` naming ``what`` and the file.
        """
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                conn.rollback()
                raise StoreError(f"{what} failed in {self.path} ({exc}); check the data "
                                 "directory's space and permissions") from exc
            except BaseException:
                conn.rollback()
                raise
