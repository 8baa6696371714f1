"""Which node of the pool takes an item, from what the pool measured (``speed.py``).

The pool is pull-based: a node with room asks the store for the next item it can run.
``Placement.accepts`` is asked in that claim, for each candidate item: it says yes only
when this node is among those expected to finish the item soonest, so a slow node leaves
an item for a fast one that will be done with it earlier, and a node an item stalled on
leaves it to the others. It reads the pool's live state (who runs what, since when) and
decides with the pure ``speed.best_nodes``; it never raises inside a claim.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from orchestrator import dispatch, speed
from orchestrator.dispatch import Requirements
from orchestrator.jobs import Item, ItemStatus, Job
from orchestrator.nodes import NodeHealth
from orchestrator.speed import NodeLoad, SpeedBook

if TYPE_CHECKING:
    from orchestrator.pool import NodePool, NodeWorker

Clock = Callable[[], datetime]
# Jobs and items remembered (workload keys, stalled items); the oldest are forgotten past
# this, so a service that runs for months holds a bounded amount.
REMEMBERED = 10_000


def _now() -> datetime:
    return datetime.now(UTC)


class Placement:
    """Speed-aware choice of node; ``speed_aware=False`` gives plain first-free dispatch."""

    def __init__(self, pool: NodePool, book: SpeedBook, *, speed_aware: bool = True,
                 clock: Clock = _now) -> None:
        self.pool = pool
        self.book = book
        self.speed_aware = speed_aware
        self.clock = clock
        # item id -> the node it stalled on (the watchdog moved it off once); see ``avoided``
        self.avoid: dict[str, str] = {}
        self._keys: dict[str, str] = {}
        self._lock = threading.Lock()

    # --- workloads ---------------------------------------------------------------------

    def key_of(self, job: Job) -> str:
        """The job's workload key (``speed.workload_key``), worked out once per job."""
        with self._lock:
            key = self._keys.get(job.id)
        if key is None:
            req = self.pool.requirements_of(job)
            key = speed.workload_key(workflow=job.spec.workflow, graph=job.spec.graph,
                                     models=req.models)
            with self._lock:
                _remember(self._keys, job.id, key)
        return key

    def avoided(self, item_id: str, node: str) -> None:
        """``item_id`` stalled on ``node``: leave it to other nodes from now on."""
        with self._lock:
            _remember(self.avoid, item_id, node)

    # --- the claim ---------------------------------------------------------------------

    def accepts(self, node: str, job: Job, item: Item) -> bool:
        """Whether ``node`` should take ``item`` now (called inside the store's claim)."""
        try:
            return self._accepts(node, job, item)
        except Exception:  # noqa: BLE001 - a placement bug must never block the queue
            return True

    def _accepts(self, node: str, job: Job, item: Item) -> bool:
        if job.spec.metadata.get(dispatch.PREFERRED_NODE_KEY) == node:
            # Cache affinity chose this node, and the others yield to it while it has
            # room: declining here too would leave the item to nobody.
            return True
        candidates = self._candidates(self.pool.requirements_of(job))
        avoided = self.avoid.get(item.id)
        if avoided is not None and len(candidates) > 1:
            if node == avoided:
                return False
            candidates = [w for w in candidates if w.node.name != avoided]
        if not self.speed_aware:
            return True
        loads = self.loads(job, candidates)
        return node in speed.best_nodes(loads) or node not in {ld.name for ld in loads}

    def _candidates(self, req: Requirements) -> list[NodeWorker]:
        with self.pool.lock:
            workers = list(self.pool.workers.values())
        return [w for w in workers
                if w.node.health == NodeHealth.UP and not w.node.draining
                and w.node.capabilities is not None
                and dispatch.can_run(req, w.node.capabilities)]

    def loads(self, job: Job, workers: list[NodeWorker] | None = None) -> list[NodeLoad]:
        """Each candidate node's backlog and speed for ``job``'s workload."""
        key, steps = self.key_of(job), speed.graph_steps(job.spec.graph)
        if workers is None:
            workers = self._candidates(self.pool.requirements_of(job))
        return [self._load(worker, key, steps) for worker in workers]

    def _load(self, worker: NodeWorker, key: str, steps: int | None = None) -> NodeLoad:
        name = worker.node.name
        item_s = self.book.item_seconds(name, key, steps)
        with worker.lock:
            executions = list(worker.running.values())
        now = self.clock()
        backlog = 0.0
        for execution in executions:
            own = self.book.item_seconds(name, self.key_of(execution.job),
                                         speed.graph_steps(execution.graph))
            started = execution.item.started_at
            running_for = ((now - started).total_seconds()
                           if started is not None and execution.item.status == ItemStatus.RUNNING
                           else None)
            left = speed.remaining_s(own if own is not None else item_s, running_for)
            backlog += left or 0.0
        return NodeLoad(name, backlog, item_s, warm=self.book.last_workload(name) == key)

    # --- ETAs --------------------------------------------------------------------------

    def eta_s(self, job: Job, ahead: int) -> float | None:
        """Seconds until a queued item of ``job`` with ``ahead`` items before it is
        expected to be done; None while no capable node has been measured."""
        try:
            return speed.eta_s(self.loads(job), ahead)
        except Exception:  # noqa: BLE001 - an ETA is a courtesy, never a failed read
            return None


def _remember(memory: dict[str, str], key: str, value: str) -> None:
    memory[key] = value
    while len(memory) > REMEMBERED:
        del memory[next(iter(memory))]  # dicts keep insertion order: the oldest goes
