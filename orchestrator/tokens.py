"""API tokens: who is calling (an owner name) and whether they may administer the service.

A token reads ``co_<id>_<secret>``: ``id`` is 8 hex characters, public, used to list and
revoke; ``secret`` is 32 random bytes (urlsafe base64). Only the sha256 of the secret is
stored, in the job database (the data directory's one file, or the PostgreSQL database
every replica shares), so ``comfy-orch token`` manages them while the service runs. The
plaintext is returned once by ``create`` and cannot be recovered.

Every request authenticates, so ``authenticate`` keeps the tokens it has seen valid in
memory (``TokenCache``) instead of reading the store each time. A revocation made in this
process (by any ``TokenStore``) takes effect at the next request; one made elsewhere (the
``comfy-orch token`` command, another replica) within ``CACHE_TTL_S`` seconds, after
which a cached token is read from the store again.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from orchestrator.errors import ConfigError, NotFound, StoreError
from orchestrator.jobs import utcnow
from orchestrator.store import JobStore, open_store
from orchestrator.store.token_rows import TokenRow

TOKEN_PREFIX = "co"
SECRET_BYTES = 32
ID_HEX = 8  # 32 bits: ids only need to be unique among one service's tokens
OWNER_MAX_CHARS = 100

REDACTED = "***"
# Where a token travels in a request line or a header, and its own shape anywhere else.
# The gateway carries it as a path segment (ComfyUI clients only know a base URL).
_SECRET_PLACES = (
    (re.compile(r"(/comfyui/)[^/?#\s\"']+"), rf"\g<1>{REDACTED}"),
    (re.compile(r"((?:^|[?&;\s])token=)[^&#\s\"']+", re.IGNORECASE), rf"\g<1>{REDACTED}"),
    (re.compile(r"(Bearer\s+)[^\s\"',]+", re.IGNORECASE), rf"\g<1>{REDACTED}"),
    # The id stays: it is public and says which token was used.
    (re.compile(rf"\b({TOKEN_PREFIX}_[0-9a-f]{{{ID_HEX}}}_)[A-Za-z0-9_-]+"), rf"\g<1>{REDACTED}"),
)
# Seconds a token found valid is trusted without reading the store again: how long a
# revocation made in another process (the CLI, another replica) may go unnoticed here.
CACHE_TTL_S = 5.0
CACHE_MAX_TOKENS = 10_000  # a cache this full starts over: tokens are few, this is a bound

@dataclass(frozen=True)
class Principal:
    """The caller a valid token stands for."""

    owner: str
    admin: bool
    token_id: str


@dataclass(frozen=True)
class TokenInfo:
    """A stored token as ``list`` shows it (never the secret)."""

    id: str
    owner: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None

    @property
    def prefix(self) -> str:
        """What the plaintext starts with, to recognise a token without showing it."""
        return f"{TOKEN_PREFIX}_{self.id}_"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def split_token(token: str) -> tuple[str, str] | None:
    """``(id, secret)`` of a well-formed token, else None (pure)."""
    head, _, rest = token.partition("_")
    token_id, _, secret = rest.partition("_")
    if head != TOKEN_PREFIX or len(token_id) != ID_HEX or not secret:
        return None
    return token_id, secret


def redact(text: str) -> str:
    """``text`` with every token secret replaced by ``***`` (pure).

    Covers the places a request carries a token (a ``/comfyui/<token>`` path segment, a
    ``token=`` query value, a ``Bearer`` credential) and any string shaped like one of our
    tokens, whose public id is kept so a log line still says which token was used.
    """
    for pattern, replacement in _SECRET_PLACES:
        text = pattern.sub(replacement, text)
    return text


def _token_id_of(ref: str) -> str:
    """The id in ``ref``: an id, a displayed prefix (``co_<id>_``) or a whole token."""
    head, _, rest = ref.partition("_")
    return rest.partition("_")[0] if head == TOKEN_PREFIX else ref


# Revocations made in this process, by any TokenStore: each cache starts over when the
# count moves, so a revocation through one store object reaches every other at once.
_revocations = 0
_revocations_lock = threading.Lock()


def _revoked_here() -> None:
    global _revocations
    with _revocations_lock:
        _revocations += 1


class TokenCache:
    """Tokens found valid, by id, each trusted for ``ttl`` seconds after its read.

    Holds the digest of the secret, never the secret, so a cached id with a wrong secret
    is refused as the store would. Entries older than ``ttl`` are read again (bounded
    staleness for revocations made by other processes); every entry is dropped when this
    process revokes any token (see ``_revocations``). Thread-safe.
    """

    def __init__(self, *, ttl: float = CACHE_TTL_S, clock: Callable[[], float] = time.monotonic,
                 max_tokens: int = CACHE_MAX_TOKENS) -> None:
        self.ttl, self.clock, self.max_tokens = ttl, clock, max_tokens
        self._entries: dict[str, tuple[float, str, Principal]] = {}
        self._generation = _revocations
        self._lock = threading.Lock()

    def get(self, token_id: str, digest: str) -> Principal | None:
        """The cached caller of ``token_id`` when fresh and ``digest`` matches, else None."""
        with self._lock:
            self._sync()
            entry = self._entries.get(token_id)
            if entry is None:
                return None
            read_at, stored, who = entry
            if self.clock() - read_at >= self.ttl:
                del self._entries[token_id]
                return None
        return who if hmac.compare_digest(stored, digest) else None

    def put(self, token_id: str, digest: str, who: Principal, generation: int) -> None:
        """Remember ``who``, read from the store when the revocation count was
        ``generation``: a revocation in between leaves it out."""
        with self._lock:
            self._sync()
            if generation != self._generation:
                return
            if len(self._entries) >= self.max_tokens:
                self._entries.clear()
            self._entries[token_id] = (self.clock(), digest, who)

    def _sync(self) -> None:
        if self._generation != _revocations:
            self._entries.clear()
            self._generation = _revocations


def _check_owner(owner: str) -> str:
    if not owner.strip() or len(owner) > OWNER_MAX_CHARS:
        raise ConfigError(f"owner name {owner!r} must be 1-{OWNER_MAX_CHARS} characters")
    return owner.strip()


class TokenStore:
    """Tokens in the job database (``JobStore``'s token rows); thread-safe; a context
    manager.

    ``TokenStore(store)`` works on an open store the caller closes (the service's own);
    ``open`` opens the data directory's database (or ``url``'s) for itself and closes it
    on ``close``. Raises ``StoreError`` when the database cannot be used.
    """

    def __init__(self, store: JobStore, *, clock: Callable[[], datetime] = utcnow,
                 owns: bool = False, cache: TokenCache | None = None) -> None:
        self._store: JobStore | None = store
        self._clock = clock
        self._owns = owns
        self._lock = threading.Lock()
        self._cache = cache or TokenCache()

    @classmethod
    def open(cls, data_dir: Path, url: str | None = None, *,
             clock: Callable[[], datetime] = utcnow) -> TokenStore:
        """The token store of ``data_dir``'s database, or of the PostgreSQL database at
        ``url`` (created if missing); ``close`` it."""
        return cls(open_store(Path(data_dir), url), clock=clock, owns=True)

    # --- changing ------------------------------------------------------------------------

    def create(self, owner: str, *, admin: bool = False) -> str:
        """A new token for ``owner``; the plaintext, shown once (only its hash is kept)."""
        owner = _check_owner(owner)
        secret = secrets.token_urlsafe(SECRET_BYTES)
        store = self._open()
        while True:
            token_id = secrets.token_hex(ID_HEX // 2)
            row = TokenRow(id=token_id, secret_sha256=_digest(secret), owner=owner,
                           admin=admin, created_at=self._clock(), revoked_at=None)
            if store.add_token(row):  # else an id collision: draw again
                return f"{TOKEN_PREFIX}_{token_id}_{secret}"

    def revoke(self, ref: str) -> TokenInfo:
        """Revoke the token with id (or prefix, or plaintext) ``ref``; harmless twice.

        Raises ``NotFound("token", id)`` when no token has that id.
        """
        token_id = _token_id_of(ref.strip())
        row = self._open().revoke_token(token_id, self._clock())
        _revoked_here()  # every cache in this process (this store's too) forgets its tokens
        if row is None:
            raise NotFound("token", token_id)
        return _info(row)

    # --- reading -------------------------------------------------------------------------

    def get(self, token_id: str) -> TokenInfo:
        """The token's record; ``NotFound("token", id)`` if absent."""
        row = self._open().token(token_id)
        if row is None:
            raise NotFound("token", token_id)
        return _info(row)

    def list(self) -> list[TokenInfo]:
        """Every token, revoked ones too, oldest first."""
        return [_info(row) for row in self._open().tokens()]

    def authenticate(self, token: str) -> Principal | None:
        """The caller ``token`` stands for, or None (malformed, unknown or revoked).

        A token found valid is answered from memory for ``CACHE_TTL_S`` seconds (see the
        module's docstring for when a revocation takes effect); an unknown, wrong or
        revoked one is read from the store every time.
        """
        parts = split_token(token)
        if parts is None:
            return None
        token_id, secret = parts
        digest = _digest(secret)
        cached = self._cache.get(token_id, digest)
        if cached is not None:
            return cached
        generation = _revocations
        row = self._open().token(token_id)
        # Compare digests in constant time so response timing says nothing about the secret.
        if row is None or row.revoked_at is not None or not hmac.compare_digest(
                row.secret_sha256, digest):
            return None
        who = Principal(owner=row.owner, admin=row.admin, token_id=token_id)
        self._cache.put(token_id, row.secret_sha256, who, generation)
        return who

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop using the database (closing it when ``open`` opened it); harmless twice;
        later calls raise ``StoreError``."""
        with self._lock:
            store, self._store = self._store, None
        if store is not None and self._owns:
            store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _open(self) -> JobStore:
        store = self._store
        if store is None:
            raise StoreError("the token store was closed; open it again")
        return store


def _info(row: TokenRow) -> TokenInfo:
    return TokenInfo(id=row.id, owner=row.owner, admin=row.admin, created_at=row.created_at,
                     revoked_at=row.revoked_at)
