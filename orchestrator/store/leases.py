"""Replica leases on a shared PostgreSQL: who runs which item, and who died.

A replica renews its row in ``replicas`` every ``RENEW_S`` while its process lives; that
row is its lease on every item whose ``items.replica`` names it. A replica not seen for
``LEASE_S`` is dead, and another replica adopts its items on nodes, then reconciles each
with its node by prompt_id (collected if finished, resubmitted if lost). Times come from
the database's clock, so replicas on machines whose clocks disagree still agree.

Each function runs inside the caller's transaction.
"""

from __future__ import annotations

from orchestrator.store.dialect import Conn

# Timeouts (seconds)
RENEW_S = 2.0  # how often a replica renews its lease
LEASE_S = 15.0  # a replica not seen for this long is dead: its items are adopted

_NOW = "EXTRACT(EPOCH FROM clock_timestamp())"


def renew(conn: Conn, replica: str) -> None:
    """Mark ``replica`` alive now."""
    conn.execute(f"INSERT INTO replicas (id, seen_at) VALUES (?, {_NOW})"
                 " ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at", [replica])


def retire(conn: Conn, replica: str) -> None:
    """A replica closing: its items on nodes are free for the others to adopt at once."""
    conn.execute("DELETE FROM replicas WHERE id = ?", [replica])


def hold(conn: Conn, replica: str, item_id: str) -> None:
    """Record that ``replica`` runs the item (at its claim)."""
    conn.execute("UPDATE items SET replica = ? WHERE id = ?", [replica, item_id])


def adopt(conn: Conn, replica: str, lease_s: float = LEASE_S) -> list[tuple[str, str]]:
    """(job id, item id) of the items on nodes whose replica's lease lapsed, now held by
    ``replica``; rows another replica is adopting are skipped, never waited for."""
    rows = conn.execute(
        "UPDATE items SET replica = ? WHERE id IN ("
        " SELECT id FROM items WHERE active_node IS NOT NULL"
        " AND (replica IS NULL OR replica NOT IN ("
        f"  SELECT id FROM replicas WHERE seen_at >= {_NOW} - ?))"
        " FOR UPDATE SKIP LOCKED) RETURNING job_id, id",
        [replica, lease_s]).fetchall()
    return sorted((row[0], row[1]) for row in rows)
