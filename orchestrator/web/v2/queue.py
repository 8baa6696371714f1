"""A queued v2 job's ``queue_position``: 1 for the next job the pool takes.

A job waits where its first queued item waits. The store counts the claims before that
item in the pool's own order - priority, the fair share between owners, age - so the
position is what the dispatcher will do, not an estimate from creation times
(``orchestrator/store/position.py``). A handful of indexed counts per answer.
"""

from __future__ import annotations

from orchestrator.errors import JobNotFound
from orchestrator.jobs import ItemStatus, Job
from orchestrator.service import Orchestrator


def queue_position(orch: Orchestrator, job: Job) -> int | None:
    """1-based position of ``job`` in the queue; None when none of its items waits."""
    waiting = [item for item in job.items if item.status == ItemStatus.QUEUED]
    if not waiting:
        return None
    try:
        ahead = orch.queue_position(waiting[0].id)
    except JobNotFound:
        return None  # deleted meanwhile
    return None if ahead is None else ahead + 1
