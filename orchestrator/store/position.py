"""Where a queued item stands: the claims that will come before it, fair share included.

``claim_next`` takes the highest priority first, then the owner with the fewest items on
nodes (the oldest head on a tie), then that owner's oldest item. An item's position is how
many claims that order makes before reaching it, assuming nothing finishes and nothing
new arrives meanwhile: every item of a higher priority (whose claims add to their owners'
load), the owner's own older items, and each other owner's items claimed while that
owner's load stays below the item owner's (``rules.claims_before``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from orchestrator.store import rules, tables
from orchestrator.store.dialect import Conn

_PER_OWNER = ("SELECT owner, COUNT(*) FROM items WHERE status = 'queued' AND priority {op} ?"
              " GROUP BY owner")
_OWN_AHEAD = ("SELECT COUNT(*) FROM items WHERE status = 'queued' AND priority = ? AND"
              " owner = ? AND (job_seq < ? OR (job_seq = ? AND idx < ?))")
_NTH_SEQ = ("SELECT job_seq FROM items WHERE status = 'queued' AND priority = ? AND owner = ?"
            " ORDER BY job_seq, idx LIMIT 1 OFFSET ?")


# The columns of an item that place it in the queue, in ``claims_ahead_of``'s order.
PLACE_COLUMNS = "priority, owner, job_seq, idx"


def claims_ahead_of(conn: Conn, place: Sequence[Any]) -> int:
    """``claims_ahead`` for a row of ``PLACE_COLUMNS``."""
    priority, owner, job_seq, idx = place
    return claims_ahead(conn, priority=priority, owner=owner, job_seq=job_seq, idx=idx)


def claims_ahead(conn: Conn, *, priority: int, owner: str, job_seq: int,
                 idx: int) -> int:
    """The number of claims before the queued item at (``priority``, ``owner``,
    ``job_seq``, ``idx``)."""
    higher = _per_owner(conn, ">", priority)
    waiting = _per_owner(conn, "=", priority)
    load = tables.owner_load(conn)
    # Loads once every higher-priority item is on a node.
    load = {o: load.get(o, 0) + higher.get(o, 0) for o in set(load) | set(higher) | set(waiting)}
    own = tables.count(conn, _OWN_AHEAD, [priority, owner, job_seq, job_seq, idx])
    turn = load.get(owner, 0) + own
    ahead = sum(higher.values()) + own
    for other, queued in waiting.items():
        if other != owner:
            older = functools.partial(_head_older, conn, priority, other, job_seq)
            ahead += rules.claims_before(turn, load[other], queued, older)
    return ahead


def _per_owner(conn: Conn, op: str, priority: int) -> dict[str, int]:
    return {row[0]: row[1] for row in conn.execute(_PER_OWNER.format(op=op), [priority])}


def _head_older(conn: Conn, priority: int, owner: str, job_seq: int,
                offset: int) -> bool:
    """Whether the owner's queued item at ``offset`` belongs to a job older than
    ``job_seq``."""
    return int(conn.execute(_NTH_SEQ, [priority, owner, offset]).fetchone()[0]) < job_seq
