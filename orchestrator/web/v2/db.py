"""The v2 front end's own SQLite file (``v2.sqlite3`` in the data directory).

It holds what the job store does not: single-use idempotency keys and asset records.
Each operation opens its own short connection, so the tables need no lifecycle of their
own (nothing to close when the server stops) and any thread may use them; WAL mode is a
property of the file, set once when the schema is created.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from orchestrator.errors import StoreError

DB_FILE = "v2.sqlite3"
# Seconds a writer waits for another one before giving up; writes here take microseconds.
BUSY_TIMEOUT_S = 10.0


class Database:
    """One SQLite file; ``tx()`` is a committed transaction on a fresh connection."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with contextlib.closing(sqlite3.connect(path, timeout=BUSY_TIMEOUT_S)) as conn:
                conn.execute("PRAGMA journal_mode=WAL")  # not allowed inside a transaction
                conn.executescript(schema)
        except sqlite3.Error as exc:
            raise StoreError(f"creating the v2 tables in {path} failed ({exc}); check the "
                             "data directory's space and permissions") from exc

    @contextlib.contextmanager
    def tx(self, what: str) -> Iterator[sqlite3.Connection]:
        """A connection inside ``BEGIN IMMEDIATE``; committed on leaving, else rolled back.

        SQLite errors become ``StoreError`` naming ``what`` and the file.
        """
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.Error as exc:
            raise StoreError(f"{what}: cannot open {self.path} ({exc})") from exc
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
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
        finally:
            conn.close()
