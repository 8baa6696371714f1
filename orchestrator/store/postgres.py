"""``PostgresJobStore``: the job store in a PostgreSQL database that several replicas share.

The methods are ``sql_store.SqlJobStore``'s, over a pool of psycopg connections; each
method runs in one transaction that commits before it returns. Transactions here run side
by side (READ COMMITTED), where SQLite runs one writer at a time, so the hooks lock what
a change reads before it writes:

- an item change locks its job's row first (``SELECT … FOR UPDATE``), so the job's status,
  derived from all its items, is computed from their latest state;
- a claim holds an advisory lock on its node (claims for one node run one at a time, across
  replicas) and takes the item it found only if it is still queued once its job is locked
  (a job another transaction holds is skipped, not waited for: ``SKIP LOCKED``);
- ``exclusive(name)`` holds an advisory lock every replica takes (the queue bound's count
  and the insert that follows it, as one step across replicas);
- a new idempotency key holds an advisory lock on (owner, key), so two replicas given the
  same key make one job.

psycopg's exceptions are translated into ``StoreError`` here, once (``_translated``).
"""

from __future__ import annotations

import contextlib
import functools
import json
import re
import threading
import uuid
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import psycopg
import psycopg.errors
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from orchestrator.errors import StoreError
from orchestrator.inputs import InputFile
from orchestrator.jobs import Item, ItemStatus, Job, utcnow
from orchestrator.store import leases, pg_schema, tables
from orchestrator.store.dialect import POSTGRES, Conn, Rows
from orchestrator.store.sql_store import Clock, SqlJobStore

# Limits
DEFAULT_POOL_SIZE = 8  # connections per replica: item threads, claims and the web front
# Timeouts (seconds)
CONNECT_TIMEOUT = 10.0  # a method waits this long for a pooled connection
LOCK_TIMEOUT_MS = 10_000  # a statement waits this long for a row or advisory lock

_HINTS = MappingProxyType({
    psycopg.errors.UniqueViolation: "a record with that id already exists",
    psycopg.errors.LockNotAvailable: "another replica held a lock too long; retry",
    psycopg.errors.DeadlockDetected: "two replicas changed the same job at once; retry",
    psycopg.OperationalError: "check that the server runs and the URL is right",
})
_NAMED = re.compile(r"(?<!:):([a-z_]+)")


def describe(url: str) -> str:
    """The database a URL names, for messages: host, port and name, never the password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.Error:
        return "the PostgreSQL database (unreadable URL)"
    return (f"postgresql://{info.get('host', 'localhost')}:{info.get('port', 5432)}/"
            f"{info.get('dbname', '')}")


@contextlib.contextmanager
def _translated(where: str, what: str) -> Iterator[None]:
    """Map any psycopg failure to ``StoreError`` naming the database and the operation."""
    try:
        yield
    except PoolTimeout as exc:
        raise StoreError(f"{what} in {where} failed: no connection within "
                         f"{CONNECT_TIMEOUT}s; check that the server runs") from exc
    except psycopg.Error as exc:
        hint = next((text for kind, text in _HINTS.items() if isinstance(exc, kind)),
                    "see the PostgreSQL message for the cause")
        raise StoreError(f"{what} in {where} failed: {exc}; {hint}") from exc


@functools.lru_cache(maxsize=512)
def _to_psycopg(sql: str, named: bool) -> str:
    """sqlite3's ``?`` / ``:name`` parameters as psycopg's ``%s`` / ``%(name)s``."""
    sql = sql.replace("%", "%%")
    return _NAMED.sub(r"%(\1)s", sql) if named else sql.replace("?", "%s")


class PgConn:
    """A psycopg connection inside a transaction, with sqlite3's ``execute`` (``Conn``)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, parameters: Any = (), /) -> Rows:
        named = isinstance(parameters, dict)
        return self._conn.execute(_to_psycopg(sql, named), parameters)

    def executemany(self, sql: str, parameters: Any, /) -> Rows:
        cursor = self._conn.cursor()
        cursor.executemany(_to_psycopg(sql, False), list(parameters))
        return cursor


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute(f"SET lock_timeout = {LOCK_TIMEOUT_MS}")
    conn.commit()


class PostgresJobStore(SqlJobStore):
    """The ``JobStore`` in a PostgreSQL database; see ``orchestrator.store.protocol``.

    ``url`` is a libpq URL (``postgresql://user:password@host:port/db``). The schema is
    created or migrated on open.
    """

    replicated = True  # any number of replicas share the database

    def __init__(self, url: str, *, clock: Clock = utcnow,
                 pool_size: int = DEFAULT_POOL_SIZE) -> None:
        super().__init__(clock=clock, dialect=POSTGRES)
        self.where = describe(url)
        self._closed = False
        self._lock = threading.Lock()
        # check: a connection is tried before each use, so after a server restart (every
        # pooled connection dead) calls reconnect instead of failing, one round trip each.
        self._pool = ConnectionPool(url, min_size=1, max_size=pool_size, open=False,
                                    timeout=CONNECT_TIMEOUT, configure=_configure,
                                    check=ConnectionPool.check_connection,
                                    kwargs={"connect_timeout": int(CONNECT_TIMEOUT)})
        self.replica = uuid.uuid4().hex
        self._stopped = threading.Event()
        self._heartbeat: threading.Thread | None = None
        try:
            with _translated(self.where, "connecting to the job store"):
                # One direct connection first: its failure says why (refused, wrong
                # password, no such database) where the pool's would only time out.
                psycopg.connect(url, connect_timeout=int(CONNECT_TIMEOUT)).close()
                self._pool.open(wait=True, timeout=CONNECT_TIMEOUT)
            with self._tx("creating the schema") as conn:
                pg_schema.migrate(conn, self.where)
            self._renew()
        except BaseException:
            self.close()
            raise
        self._heartbeat = threading.Thread(target=self._renew_loop, daemon=True,
                                           name=f"lease-{self.replica[:8]}")
        self._heartbeat.start()

    def _renew(self) -> None:
        with self._tx("renewing this replica's lease") as conn:
            leases.renew(conn, self.replica)

    def _renew_loop(self) -> None:
        """Renew the lease until closed; a failed renewal is retried at the next tick
        (the lease outlives several of them)."""
        while not self._stopped.wait(leases.RENEW_S):
            with contextlib.suppress(StoreError):
                self._renew()

    def close(self) -> None:
        """Close every pooled connection; harmless twice."""
        with self._lock:
            if self._closed:
                return
            self._stopped.set()
            if self._heartbeat is not None:
                self._heartbeat.join()
                with contextlib.suppress(StoreError), self._tx("retiring") as conn:
                    leases.retire(conn, self.replica)
            self._closed = True
        self._pool.close()

    @contextlib.contextmanager
    def _tx(self, what: str, *, write: bool = True) -> Iterator[Conn]:
        """One transaction on a pooled connection: committed on normal exit, rolled back
        on any exception."""
        if self._closed:
            raise StoreError(f"the job store at {self.where} is closed; {what} needs an "
                             "open store")
        with (_translated(self.where, what), self._pool.connection() as conn,
              conn.transaction()):
            yield PgConn(conn)

    @contextlib.contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """See ``JobStore.exclusive``: this process's lock, then an advisory lock every
        replica takes, held by a transaction open until the block ends (a replica that
        dies mid-way lets go with its connection)."""
        with super().exclusive(name), self._tx(f"holding the {name} lock") as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 4))",
                         [json.dumps(["exclusive", name])])
            yield

    # --- the hooks that make concurrent transactions safe ---------------------------------

    def _lock_job(self, conn: Conn, job_id: str) -> None:
        conn.execute("SELECT 1 FROM jobs WHERE id = ? FOR UPDATE", [job_id])

    def _lock_item_job(self, conn: Conn, item_id: str) -> None:
        conn.execute("SELECT 1 FROM jobs WHERE id = (SELECT job_id FROM items WHERE id = ?)"
                     " FOR UPDATE", [item_id])

    def _lock_key(self, conn: Conn, owner: str, key: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 1))",
                     [json.dumps(["key", owner, key])])

    def _lock_name(self, conn: Conn, file: InputFile) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 3))",
                     [json.dumps(["inputs", file.owner, file.folder])])

    def _before_claim(self, conn: Conn, node: str) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(?, 2))",
                     [json.dumps(["node", node])])

    def _take(self, conn: Conn, job: Job, item_id: str) -> Job | None:
        """The job locked and read again; None when the item is no longer queued (another
        replica claimed it, or the job was canceled, since the scan read it) or another
        transaction holds the job: the scan moves on rather than wait for it."""
        held = conn.execute("SELECT 1 FROM jobs WHERE id = ? FOR UPDATE SKIP LOCKED",
                            [job.id]).fetchone()
        fresh = tables.load_job(conn, job.id) if held else None
        if fresh is None or fresh.cancel_requested:
            return None
        item = next(item for item in fresh.items if item.id == item_id)
        if item.status is not ItemStatus.QUEUED:
            return None
        leases.hold(conn, self.replica, item_id)
        return fresh

    def _anything_queued(self) -> bool:
        """Every replica queues items: ask the database each time (one index lookup)."""
        with self._tx("looking for queued items", write=False) as conn:
            return self._look_for_queued(conn)

    # --- leases ------------------------------------------------------------------------------

    def in_flight(self, node: str | None = None) -> list[tuple[Job, Item]]:
        """See ``JobStore.in_flight``: this replica's items, dead replicas' adopted first."""
        self.adopt_orphans()
        with self._tx("listing items in flight", write=False) as conn:
            return self._pairs(conn, tables.on_node(conn, node, self.replica))

    def adopt_orphans(self) -> list[tuple[Job, Item]]:
        """See ``JobStore.adopt_orphans``."""
        with self._tx("adopting the items of dead replicas") as conn:
            return self._pairs(conn, leases.adopt(conn, self.replica))
