"""Single-use ``Idempotency-Key``s, as Comfy API v2 defines them (durable, per owner).

The job store's own idempotency returns the existing job for a repeated key; v2 instead
*rejects* any second use (422 ``idempotency_key_reuse``, no replay). A key is claimed,
together with the job id the submit will create, before anything else happens:

- the submit succeeds: the key stays, naming its job, for ``KEY_TTL``;
- the submit definitely failed (a validation error, a full queue, or no job with that id
  exists afterwards): the key is released, so a retry with it can proceed;
- the outcome is unknown (the store failed mid-submit): the key stays claimed, and the
  client lists its jobs instead of resubmitting.

Keys live in the v2 database, so a restart keeps them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from orchestrator.errors import JobNotFound, OrchestratorError
from orchestrator.jobs import utcnow
from orchestrator.web.v2.db import Database
from orchestrator.web.v2.errors import IdempotencyKeyReuse, InvalidBody

KEY_TTL = timedelta(hours=24)  # how long a used key is remembered (the contract's 24 h)
KEY_MAX_CHARS = 255  # the contract's bound; the SDK sends a 36-character uuid4

SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency_keys (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    job_id TEXT NOT NULL,
    used_at REAL NOT NULL,  -- unix seconds
    PRIMARY KEY (owner, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_used ON idempotency_keys (used_at);
"""


def checked_key(key: str | None) -> str | None:
    """``key`` if it can be a key (1-255 printable ASCII characters), else 422."""
    if key is None:
        return None
    if not 0 < len(key) <= KEY_MAX_CHARS or not key.isascii() or not key.isprintable():
        raise InvalidBody(f"Idempotency-Key must be 1-{KEY_MAX_CHARS} printable ASCII "
                          "characters, e.g. a uuid4")
    return key


class KeyStore:
    """Claimed keys per owner; thread- and process-safe (one SQLite transaction each)."""

    def __init__(self, db: Database, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.clock = clock

    def claim(self, owner: str, key: str, job_id: str) -> None:
        """Claim ``key`` for ``job_id``; ``IdempotencyKeyReuse`` if it is already used.

        Keys older than ``KEY_TTL`` are forgotten in the same transaction.
        """
        now = self.clock().timestamp()
        with self.db.tx("claiming an idempotency key") as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE used_at < ?",
                         (now - KEY_TTL.total_seconds(),))
            added = conn.execute(
                "INSERT OR IGNORE INTO idempotency_keys (owner, key, job_id, used_at) "
                "VALUES (?, ?, ?, ?)", (owner, key, job_id, now)).rowcount
        if not added:
            raise IdempotencyKeyReuse(
                f"Idempotency-Key {key!r} was already used; keys are single use. Find the job "
                "the first request made with GET /api/v2/jobs instead of resubmitting")

    def release(self, owner: str, key: str, job_id: str) -> None:
        """Forget the claim ``claim(owner, key, job_id)`` made (no other claim)."""
        with self.db.tx("releasing an idempotency key") as conn:
            conn.execute("DELETE FROM idempotency_keys WHERE owner = ? AND key = ? "
                         "AND job_id = ?", (owner, key, job_id))

    def job_of(self, owner: str, key: str) -> str | None:
        """The job id a live claim of ``key`` names, or None."""
        with self.db.tx("reading an idempotency key") as conn:
            row = conn.execute("SELECT job_id, used_at FROM idempotency_keys "
                               "WHERE owner = ? AND key = ?", (owner, key)).fetchone()
        if row is None or row[1] < self.clock().timestamp() - KEY_TTL.total_seconds():
            return None
        return str(row[0])

    @contextlib.contextmanager
    def held(self, owner: str, key: str | None, job_id: str,
             created: Callable[[str], bool]) -> Iterator[None]:
        """Claim ``key`` around a submit of ``job_id``; release it on a definite failure.

        ``created(job_id)`` tells whether the job exists after a failure: False releases
        the key, True or an error asking keeps it (the outcome is then unknown).
        """
        if key is None:
            yield
            return
        self.claim(owner, key, job_id)
        try:
            yield
        except BaseException:
            if _definitely_absent(created, job_id):
                self.release(owner, key, job_id)
            raise


def _definitely_absent(created: Callable[[str], bool], job_id: str) -> bool:
    try:
        return not created(job_id)
    except OrchestratorError:
        return False


def job_exists(get: Callable[[str], object]) -> Callable[[str], bool]:
    """A ``created`` check over a getter that raises ``JobNotFound`` for a missing job."""
    def created(job_id: str) -> bool:
        try:
            get(job_id)
        except JobNotFound:
            return False
        return True
    return created
