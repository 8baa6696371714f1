"""Finding the next item to claim: priority, then the least-loaded owner, then age.

Owners are visited in ``rules.rank_owners`` order and each owner's items oldest first,
so the cost grows with the owners at a priority and the items ``can_run`` rejects,
never with the length of the queue.
"""

from __future__ import annotations

from collections.abc import Callable

from orchestrator.errors import StoreError
from orchestrator.jobs import Item, Job
from orchestrator.store import rules, tables
from orchestrator.store.dialect import Conn
from orchestrator.store.protocol import CanRun

# Takes the item found for claiming, given its job as the scan read it: the job as it is
# now (locked for the rest of the transaction), or None when another claim got there first.
Take = Callable[[Conn, Job, str], Job | None]

# Limits
CLAIM_SCAN_LIMIT = 256  # queued items offered to can_run in one claim_next
CLAIM_OWNER_BATCH = 64  # queued items read for one owner at a time


class ClaimScan:
    """One walk over queued items in claim order, offering at most CLAIM_SCAN_LIMIT to can_run.

    Runs inside the claiming write transaction; ``take`` confirms that what it finds is
    still queued where transactions run side by side (PostgreSQL).
    """

    def __init__(self, conn: Conn, can_run: CanRun, take: Take | None = None) -> None:
        self.conn = conn
        self.can_run = can_run
        self.take: Take = take or _as_read
        self.budget = CLAIM_SCAN_LIMIT
        self.jobs: dict[str, Job] = {}

    def run(self) -> tuple[Job, Item] | None:
        load = tables.owner_load(self.conn)
        priority = tables.top_priority(self.conn, None)
        while priority is not None and self.budget > 0:
            for owner in rules.rank_owners(tables.owner_heads(self.conn, priority), load):
                found = self._scan_owner(priority, owner)
                if found is not None or self.budget <= 0:
                    return found
            priority = tables.top_priority(self.conn, priority)
        return None

    def _scan_owner(self, priority: int, owner: str) -> tuple[Job, Item] | None:
        batch = min(self.budget, CLAIM_OWNER_BATCH)
        for job_id, item_id in tables.owner_queue(self.conn, priority, owner, batch):
            self.budget -= 1
            job = self._load(job_id)
            item = next(item for item in job.items if item.id == item_id)
            if self.can_run(job, item) and (taken := self.take(self.conn, job, item_id)):
                return taken, next(item for item in taken.items if item.id == item_id)
        return None

    def _load(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            job = tables.load_job(self.conn, job_id)
            if job is None:  # the row was read in this same transaction
                raise StoreError(f"item of job {job_id} found without its job")
            self.jobs[job_id] = job
        return self.jobs[job_id]


def _as_read(conn: Conn, job: Job, item_id: str) -> Job:
    """A store whose write transactions run one at a time: what the scan read still holds."""
    return job
