"""Rows of the tokens table (``orchestrator.tokens`` holds the rules; this, the SQL).

Each function runs inside the caller's transaction. Only the sha256 of a token's secret
is stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.store.dialect import Conn

_COLUMNS = "id, secret_sha256, owner, admin, created_at, revoked_at"


@dataclass(frozen=True)
class TokenRow:
    """A stored token."""

    id: str
    secret_sha256: str
    owner: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None


def _row(row: Sequence[Any]) -> TokenRow:
    return TokenRow(id=row[0], secret_sha256=row[1], owner=row[2], admin=bool(row[3]),
                    created_at=datetime.fromisoformat(row[4]),
                    revoked_at=None if row[5] is None else datetime.fromisoformat(row[5]))


def insert(conn: Conn, token: TokenRow) -> bool:
    """Store the token unless its id is taken; whether it was stored."""
    return conn.execute(
        f"INSERT INTO tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (token.id, token.secret_sha256, token.owner, int(token.admin),
         token.created_at.isoformat(),
         None if token.revoked_at is None else token.revoked_at.isoformat())).rowcount > 0


def load(conn: Conn, token_id: str) -> TokenRow | None:
    """The token with that id."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM tokens WHERE id = ?", (token_id,)).fetchone()
    return None if row is None else _row(row)


def load_all(conn: Conn) -> list[TokenRow]:
    """Every token, oldest first."""
    return [_row(row) for row in conn.execute(
        f"SELECT {_COLUMNS} FROM tokens ORDER BY created_at, id")]


def revoke(conn: Conn, token_id: str, at: datetime) -> None:
    """Mark the token revoked at ``at`` unless it already is."""
    conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                 (at.isoformat(), token_id))
