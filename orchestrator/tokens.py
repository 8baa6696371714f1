"""API tokens: who is calling (an owner name) and whether they may administer the service.

A token reads ``co_<id>_<secret>``: ``id`` is 8 hex characters, public, used to list and
revoke; ``secret`` is 32 random bytes (urlsafe base64). Only the sha256 of the secret is
stored, in ``tokens.sqlite3`` in the data directory (apart from the job database, so tokens
can be managed while the service runs and backed up or wiped on their own). The plaintext
is returned once by ``create`` and cannot be recovered.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from orchestrator.errors import ConfigError, NotFound, StoreError
from orchestrator.jobs import utcnow

TOKENS_FILE = "tokens.sqlite3"  # in the data directory
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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    secret_sha256 TEXT NOT NULL,
    owner TEXT NOT NULL,
    admin INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
)
"""


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


def _check_owner(owner: str) -> str:
    if not owner.strip() or len(owner) > OWNER_MAX_CHARS:
        raise ConfigError(f"owner name {owner!r} must be 1-{OWNER_MAX_CHARS} characters")
    return owner.strip()


class TokenStore:
    """Tokens in one SQLite file; thread-safe; a context manager.

    Raises ``StoreError`` when the file cannot be opened or written.
    """

    def __init__(self, path: Path, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        with self._translated("opening"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                self.path, check_same_thread=False, isolation_level=None)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(_SCHEMA)

    @classmethod
    def open(cls, data_dir: Path) -> TokenStore:
        """The token store of ``data_dir`` (created if missing)."""
        return cls(Path(data_dir) / TOKENS_FILE)

    # --- changing ------------------------------------------------------------------------

    def create(self, owner: str, *, admin: bool = False) -> str:
        """A new token for ``owner``; the plaintext, shown once (only its hash is kept)."""
        owner = _check_owner(owner)
        secret = secrets.token_urlsafe(SECRET_BYTES)
        with self._db("creating a token") as conn:
            while True:
                token_id = secrets.token_hex(ID_HEX // 2)
                if conn.execute("SELECT 1 FROM tokens WHERE id = ?", (token_id,)).fetchone():
                    continue  # an id collision: draw again
                conn.execute("INSERT INTO tokens VALUES (?, ?, ?, ?, ?, NULL)",
                             (token_id, _digest(secret), owner, int(admin),
                              self._clock().isoformat()))
                return f"{TOKEN_PREFIX}_{token_id}_{secret}"

    def revoke(self, ref: str) -> TokenInfo:
        """Revoke the token with id (or prefix, or plaintext) ``ref``; harmless twice.

        Raises ``NotFound("token", id)`` when no token has that id.
        """
        token_id = _token_id_of(ref.strip())
        with self._db("revoking a token") as conn:
            conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                         (self._clock().isoformat(), token_id))
        return self.get(token_id)

    # --- reading -------------------------------------------------------------------------

    def get(self, token_id: str) -> TokenInfo:
        """The token's record; ``NotFound("token", id)`` if absent."""
        with self._db("reading a token") as conn:
            row = conn.execute("SELECT id, owner, admin, created_at, revoked_at FROM tokens "
                               "WHERE id = ?", (token_id,)).fetchone()
        if row is None:
            raise NotFound("token", token_id)
        return _info(row)

    def list(self) -> list[TokenInfo]:
        """Every token, revoked ones too, oldest first."""
        with self._db("listing tokens") as conn:
            rows = conn.execute("SELECT id, owner, admin, created_at, revoked_at FROM tokens "
                                "ORDER BY created_at, id").fetchall()
        return [_info(row) for row in rows]

    def authenticate(self, token: str) -> Principal | None:
        """The caller ``token`` stands for, or None (malformed, unknown or revoked)."""
        parts = split_token(token)
        if parts is None:
            return None
        token_id, secret = parts
        with self._db("checking a token") as conn:
            row = conn.execute("SELECT secret_sha256, owner, admin FROM tokens "
                               "WHERE id = ? AND revoked_at IS NULL", (token_id,)).fetchone()
        # Compare digests in constant time so response timing says nothing about the secret.
        if row is None or not hmac.compare_digest(row[0], _digest(secret)):
            return None
        return Principal(owner=row[1], admin=bool(row[2]), token_id=token_id)

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close the database; harmless twice; later calls raise ``StoreError``."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @contextlib.contextmanager
    def _db(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock, self._translated(what):
            if self._conn is None:
                raise StoreError(f"the token store {self.path} was closed; open it again")
            yield self._conn

    @contextlib.contextmanager
    def _translated(self, what: str) -> Iterator[None]:
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            raise StoreError(f"{what} in {self.path} failed ({exc}); check the data "
                             "directory's permissions and free space") from exc


def _info(row: tuple[str, str, int, str, str | None]) -> TokenInfo:
    return TokenInfo(id=row[0], owner=row[1], admin=bool(row[2]),
                     created_at=datetime.fromisoformat(row[3]),
                     revoked_at=datetime.fromisoformat(row[4]) if row[4] else None)
