"""The store's rules as pure functions: new jobs, item state changes, claim order.

Every change goes through ``jobs.ITEM_TRANSITIONS`` via ``transition``; a change the
table forbids raises ``IllegalTransition``. Time comes in as ``now``; nothing here
reads a clock or touches the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from orchestrator.errors import IllegalTransition
from orchestrator.jobs import Attempt, Item, ItemError, ItemStatus, Job, JobSpec, can_transition

# Items whose failure a retry_job puts back in the queue.
REOPENABLE = frozenset({ItemStatus.FAILED, ItemStatus.CANCELED})
CANCELED_NOTE = "canceled"


def new_job(spec: JobSpec, job_id: str, now: datetime) -> Job:
    """A fresh job with ``spec.count`` queued items, ids ``{job_id}-{index}``."""
    items = [
        Item(id=f"{job_id}-{index}", job_id=job_id, index=index, created_at=now)
        for index in range(spec.count)
    ]
    return Job(id=job_id, spec=spec, items=items, created_at=now)


def transition(item: Item, new: ItemStatus, **update: Any) -> Item:
    """``item`` in state ``new`` with ``update`` applied; raises ``IllegalTransition``."""
    if not can_transition(item.status, new):
        raise IllegalTransition(item.id, item.status.value, new.value)
    return item.model_copy(update={"status": new, **update})


def close_attempt(attempts: Sequence[Attempt], now: datetime, error: str | None) -> list[Attempt]:
    """The attempts with the open (last, unended) one ended at ``now`` with ``error``."""
    closed = list(attempts)
    if closed and closed[-1].ended_at is None:
        closed[-1] = closed[-1].model_copy(update={"ended_at": now, "error": error})
    return closed


def dispatch(item: Item, *, node: str, prompt_id: str, now: datetime) -> Item:
    """QUEUED → DISPATCHED on ``node`` with a new open attempt."""
    attempt = Attempt(node=node, prompt_id=prompt_id, started_at=now)
    return transition(item, ItemStatus.DISPATCHED, node=node, prompt_id=prompt_id,
                      attempts=[*item.attempts, attempt])


def start(item: Item, now: datetime) -> Item:
    """DISPATCHED → RUNNING; on RUNNING/CANCELING only ``started_at`` is set (once)."""
    started = item.started_at or now
    if item.status in (ItemStatus.RUNNING, ItemStatus.CANCELING):
        return item.model_copy(update={"started_at": started})
    return transition(item, ItemStatus.RUNNING, started_at=started)


def succeed(item: Item, output_ids: Sequence[str], now: datetime) -> Item:
    """On a node (or canceling, the node finished first) → SUCCEEDED with outputs."""
    return transition(item, ItemStatus.SUCCEEDED, output_ids=list(output_ids), completed_at=now,
                      attempts=close_attempt(item.attempts, now, None))


def cancel(item: Item, now: datetime) -> Item:
    """→ CANCELED, closing the open attempt."""
    return transition(item, ItemStatus.CANCELED, completed_at=now,
                      attempts=close_attempt(item.attempts, now, CANCELED_NOTE))


def fail(item: Item, error: ItemError, *, retry: bool, attempts_left: bool,
         now: datetime) -> Item:
    """A failed attempt: back to QUEUED if retryable with budget left, else FAILED.

    A retryable failure of a CANCELING item ends CANCELED: the node lost work that the
    owner no longer wants.
    """
    attempts = close_attempt(item.attempts, now, error.message)
    if retry and item.status is ItemStatus.CANCELING:
        return transition(item, ItemStatus.CANCELED, attempts=attempts, completed_at=now)
    if retry and attempts_left:
        return transition(item, ItemStatus.QUEUED, attempts=attempts, node=None,
                          prompt_id=None)
    return transition(item, ItemStatus.FAILED, attempts=attempts, error=error,
                      completed_at=now)


def request_cancel(item: Item, now: datetime) -> Item:
    """A job's cancel seen by one item: queued → CANCELED, on a node → CANCELING."""
    if item.status is ItemStatus.QUEUED:
        return cancel(item, now)
    if item.status in (ItemStatus.DISPATCHED, ItemStatus.RUNNING):
        return transition(item, ItemStatus.CANCELING)
    return item


def reopen(item: Item) -> Item:
    """A FAILED/CANCELED item queued again for ``retry_job``; others unchanged.

    Terminal states have no way out in ``ITEM_TRANSITIONS`` (the runner must never
    revive them); this explicit operator action is the one exception.
    """
    if item.status not in REOPENABLE:
        return item
    return item.model_copy(update={
        "status": ItemStatus.QUEUED, "node": None, "prompt_id": None, "error": None,
        "started_at": None, "completed_at": None,
    })


def rank_owners(heads: Sequence[tuple[str, int]], load: Mapping[str, int]) -> list[str]:
    """Owners in claim order: fewest items on nodes first, then oldest queued head.

    ``heads`` pairs each owner with the creation order of its oldest queued job;
    ``load`` counts each owner's items on nodes (absent means none).
    """
    ranked = sorted(heads, key=lambda head: (load.get(head[0], 0), head[1]))
    return [owner for owner, _ in ranked]



def claims_before(turn: int, load: int, queued: int,
                  head_is_older: Callable[[int], bool]) -> int:
    """How many of one owner's queued items are claimed before another owner's item that
    is claimed when its owner's load reaches ``turn`` (``rank_owners``: least load first).

    An owner with ``load`` items on nodes and ``queued`` waiting is chosen while its load
    is below ``turn``; at an equal load it goes first when its head then - its item at
    that offset in its queue - is older (``head_is_older(offset)``, asked only then).
    """
    below = max(0, min(queued, turn - load))
    if below < queued and load + below == turn and head_is_older(below):
        return below + 1
    return below
