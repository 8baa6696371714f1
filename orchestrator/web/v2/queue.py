"""A queued v2 job's ``queue_position``: 1 for the next job the pool takes.

A job waits where its first queued item waits. The store counts the claims before that
item in the pool's own order - priority, the fair share between owners, age - so the
position is what the dispatcher will do, not an estimate from creation times
(``orchestrator/store/position.py``). A handful of indexed counts per answer.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.errors import JobNotFound
from orchestrator.jobs import ItemStatus, Job
from orchestrator.service import Orchestrator


def queue_position(orch: Orchestrator, job: Job) -> int | None:
    """1-based position of ``job`` in the queue; None when none of its items waits."""

    def claims_ahead(item_id: str) -> int | None:
        try:
            return orch.queue_position(item_id)
        except JobNotFound:
            return None  # deleted meanwhile

    return place(job, claims_ahead)


def place(job: Job, claims_ahead: Callable[[str], int | None]) -> int | None:
    """1-based position of ``job`` given the claims ahead of a queued item (by its id, None
    when it is no longer queued): its first queued item's place."""
    waiting = [item for item in job.items if item.status == ItemStatus.QUEUED]
    ahead = claims_ahead(waiting[0].id) if waiting else None
    return None if ahead is None else ahead + 1


def eta_ms(orch: Orchestrator, job: Job) -> int | None:
    """Milliseconds until a queued job's last waiting item is expected to be done, from
    the nodes' measured speeds (the companion of ``queue_position``); None when none of
    its items waits or no capable node has been measured yet."""
    waiting = [item for item in job.items if item.status == ItemStatus.QUEUED]
    if not waiting:
        return None
    try:
        ahead = orch.queue_position(waiting[-1].id)
    except JobNotFound:
        return None
    eta = None if ahead is None else orch.eta_s(job, ahead)
    return None if eta is None else int(eta * 1000)
