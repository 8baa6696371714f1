"""The job store's small records besides jobs: API tokens, single-use idempotency keys
named counters and request rates.

A mixin of ``SqlJobStore`` (it gives ``_tx``, ``_now`` and ``_lock_key``): they live in the
one database, so a PostgreSQL deployment keeps them there for every replica, and a data
directory holds one file.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime, timedelta

from orchestrator.store import rates, tables, token_rows
from orchestrator.store.dialect import Conn
from orchestrator.store.rates import Rate
from orchestrator.store.token_rows import TokenRow

SINGLE_USE_TTL = timedelta(hours=24)  # how long a used single-use key is remembered


class AccessMethods:
    """See ``JobStore``'s token, key and counter methods (``protocol.py``)."""

    def _tx(self, what: str, *, write: bool = True) -> AbstractContextManager[Conn]:
        raise NotImplementedError

    def _now(self) -> datetime:
        raise NotImplementedError

    def _lock_key(self, conn: Conn, owner: str, key: str) -> None:
        raise NotImplementedError

    # --- tokens -------------------------------------------------------------------------

    def add_token(self, token: TokenRow) -> bool:
        """See ``JobStore.add_token``."""
        with self._tx(f"creating token {token.id}") as conn:
            return token_rows.insert(conn, token)

    def token(self, token_id: str) -> TokenRow | None:
        """See ``JobStore.token``."""
        with self._tx(f"reading token {token_id}", write=False) as conn:
            return token_rows.load(conn, token_id)

    def tokens(self) -> list[TokenRow]:
        """See ``JobStore.tokens``."""
        with self._tx("listing tokens", write=False) as conn:
            return token_rows.load_all(conn)

    def revoke_token(self, token_id: str, at: datetime) -> TokenRow | None:
        """See ``JobStore.revoke_token``."""
        with self._tx(f"revoking token {token_id}") as conn:
            token_rows.revoke(conn, token_id, at)
            return token_rows.load(conn, token_id)

    # --- single-use idempotency keys ------------------------------------------------------

    def claim_key(self, owner: str, key: str, job_id: str) -> bool:
        """See ``JobStore.claim_key``."""
        now = self._now()
        with self._tx("claiming an idempotency key") as conn:
            self._lock_key(conn, owner, key)
            return tables.claim_single_use(conn, owner, key, job_id, now,
                                           since=now - SINGLE_USE_TTL)

    def release_key(self, owner: str, key: str, job_id: str) -> None:
        """See ``JobStore.release_key``."""
        with self._tx("releasing an idempotency key") as conn:
            tables.release_single_use(conn, owner, key, job_id)

    def key_job(self, owner: str, key: str) -> str | None:
        """See ``JobStore.key_job``."""
        since = self._now() - SINGLE_USE_TTL
        with self._tx("reading an idempotency key", write=False) as conn:
            found = tables.idempotent_job(conn, owner, key, since)
        return None if found is None else found[0]

    # --- counters -----------------------------------------------------------------------

    def next_count(self, name: str, *, at_least: int = 0) -> int:
        """See ``JobStore.next_count``."""
        with self._tx(f"counting {name}") as conn:
            return tables.next_count(conn, name, at_least)

    # --- request rates --------------------------------------------------------------------

    def take_rate(self, key: str, amount: float, rate: Rate) -> float:
        """See ``JobStore.take_rate``."""
        with self._tx(f"metering the requests of {key}") as conn:
            return rates.take(conn, key, amount, rate, round(self._now().timestamp() * rates.US))
