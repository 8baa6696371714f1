"""Request rates metered in the database, so every replica draws on one bucket per key.

A token bucket kept as one number per key (GCRA): the time at which the bucket would be
full again, in microseconds, in the ``counters`` table under ``rate:<key>``. A request
of ``amount`` units moves that time on by ``amount`` units' worth; it is refused when the
time would lie more than ``burst`` units ahead of now, and then says how long to wait.
One process (SQLite) meters in memory instead (``web/limits.py``); this is for several.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.store.dialect import Conn

US = 1_000_000  # microseconds a second


@dataclass(frozen=True)
class Rate:
    """``per_minute`` units refill the bucket, which holds ``burst`` at most."""

    per_minute: float
    burst: int

    @property
    def unit_us(self) -> float:
        """Microseconds one unit takes to refill."""
        return 60 * US / self.per_minute


def step(full_at: int, now: int, amount: float, rate: Rate) -> tuple[int, float]:
    """The bucket's new full-again time and the seconds to wait (0: go ahead, and the
    time moves on; otherwise it stays). An amount over the burst is charged as the burst."""
    cost = min(amount, rate.burst) * rate.unit_us
    due = max(full_at, now) + cost
    over = due - now - rate.burst * rate.unit_us
    if over > 0:
        return full_at, over / US
    return round(due), 0.0


def take(conn: Conn, key: str, amount: float, rate: Rate, now: int) -> float:
    """Draw ``amount`` from ``key``'s bucket inside the caller's transaction; the seconds
    to wait, 0 when the request may go ahead. The change is a compare-and-set: when
    another replica moved the bucket since it was read, it is read again."""
    name = f"rate:{key}"
    conn.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) "
                 "DO NOTHING", (name, now))
    while True:
        (seen,) = conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        full_at, wait = step(int(seen), now, amount, rate)
        if wait or conn.execute("UPDATE counters SET value = ? WHERE name = ? AND value = ?",
                                (full_at, name, seen)).rowcount:
            return wait
