"""What the SQL modules need of a database connection, and the few statements that differ
between SQLite and PostgreSQL.

The table modules (``tables``, ``claim``, ``position``, ``output_rows``, ``expiry``) write
portable SQL with ``?`` (and ``:name``) parameters against ``Conn``; sqlite3's connection
is one, and ``postgres.PgConn`` adapts a psycopg connection to it. Where the two SQL
dialects disagree (reading JSON), the statement lives here, once per dialect.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol


class Rows(Protocol):
    """The part of a DB-API cursor the table modules use."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Conn(Protocol):
    """A connection inside one transaction, with sqlite3's ``execute`` and ``executemany``."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Rows: ...

    def executemany(self, sql: str, parameters: Any, /) -> Rows: ...


@dataclass(frozen=True)
class Dialect:
    """The statements that differ by database."""

    name: str
    # One job's spec has metadata[key] == value: (clause, its parameters).
    metadata_match: Callable[[str, str], tuple[str, list[object]]]
    # Jobs naming a blob among their input images; one parameter, the sha256.
    input_references: str
    # The same as a row source for EXISTS (...): any job naming the blob as an input.
    input_uses: str


def _sqlite_metadata(key: str, value: str) -> tuple[str, list[object]]:
    return "json_extract(spec, ?) = ?", ["$.metadata." + json.dumps(key), value]


def _postgres_metadata(key: str, value: str) -> tuple[str, list[object]]:
    return "(spec::jsonb -> 'metadata' ->> ?) = ?", [key, value]


SQLITE = Dialect(
    name="sqlite",
    metadata_match=_sqlite_metadata,
    input_references="SELECT COUNT(*) FROM jobs, json_each(jobs.spec, '$.images') AS image"
                     " WHERE image.value = ?",
    input_uses="SELECT 1 FROM jobs, json_each(jobs.spec, '$.images') AS image"
               " WHERE image.value = ?",
)
POSTGRES = Dialect(
    name="postgres",
    metadata_match=_postgres_metadata,
    input_references="SELECT COUNT(*) FROM jobs, jsonb_each_text(CASE jsonb_typeof("
                     "spec::jsonb -> 'images') WHEN 'object' THEN spec::jsonb -> 'images'"
                     " ELSE '{}'::jsonb END) AS image WHERE image.value = ?",
    input_uses="SELECT 1 FROM jobs, jsonb_each_text(CASE jsonb_typeof("
               "spec::jsonb -> 'images') WHEN 'object' THEN spec::jsonb -> 'images'"
               " ELSE '{}'::jsonb END) AS image WHERE image.value = ?",
)
