"""The node pool: one worker per node pulls the next eligible item when it has room.

Pull-based dispatch: nothing is pushed at a node. Each node's worker claims an item
from the store only while the node is healthy, not draining, and has fewer than
``max_in_flight`` items on it, and only items whose classes and model files the node
has. The store decides order (priority, then fairness across owners, then age).

Loops expose ``run_once()`` so tests drive them deterministically; the threads just call
it until closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

from orchestrator import dispatch, overtake
from orchestrator.comfy.watch import STREAM_CONNECT_WAIT
from orchestrator.dispatch import Requirements
from orchestrator.errors import ConfigError, OrchestratorError
from orchestrator.jobs import Item, ItemError, ItemStatus, Job, JobStatus
from orchestrator.nodes import Node, NodeConfig, NodeHealth, NodeInfo
from orchestrator.placement import Placement
from orchestrator.planner import Planner
from orchestrator.post_order import PostOrder
from orchestrator.reconcile import reconcile
from orchestrator.runner import ItemExecution, PoolContext, publish_if_finished
from orchestrator.runner_threads import RunnerThreads
from orchestrator.speed import SpeedBook
from orchestrator.watchdog import Watchdog

# Timeouts (seconds)
HEALTH_INTERVAL = 2.0       # how often every node's /system_stats is asked
IDLE_WAIT = 1.0             # how long an idle worker sleeps when not woken by a submit
SWEEP_PAGE = 200            # jobs read per page when looking for work no node can run


class NodeWorker:
    """Pulls items for one node; each claimed item runs on one of its runner threads."""

    def __init__(self, pool: NodePool, node: Node) -> None:
        self.pool, self.node = pool, node
        self.running: dict[str, ItemExecution] = {}
        self.lock = threading.Lock()
        self.runners = RunnerThreads(node.name)
        self.post_order = PostOrder()
        self.thread: threading.Thread | None = None
        self.stopped = threading.Event()
        # The highest priority queued since this node last found nothing to overtake with
        # (``offer``); None: no claim beyond ``max_in_flight`` is worth a look.
        self.offered: int | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name=f"node-{self.node.name}",
                                       daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while not self.stopped.is_set():
            seen = self.pool.wakes
            try:
                claimed = self.run_once()
            except OrchestratorError:
                claimed = False  # the store refused (closing); try again after the wait
            if not claimed:
                self.pool.wait_for_work(IDLE_WAIT, seen=seen)

    def has_room(self) -> bool:
        with self.lock:
            busy = len(self.running)
        return (self.node.health == NodeHealth.UP and not self.node.draining
                and busy < self.node.config.max_in_flight)

    def run_once(self) -> bool:
        """Claim and start one item if the node has room, or one of a higher priority than
        a prompt waiting on the node (``overtake``); True when one was started."""
        if self.has_room():
            return self._claim(self.node.config.max_in_flight)
        floor = self._overtake_floor()
        if floor is None:
            return False
        claimed = self._claim(self.node.config.max_in_flight + 1, above=floor)
        if not claimed:
            with self.lock:
                self.offered = None  # nothing above the floor waits: until the next offer
        return claimed

    def _claim(self, max_on_node: int, *, above: int | None = None) -> bool:
        caps = self.node.capabilities
        if caps is None:
            return False
        claimed = self.pool.ctx.store.claim_next(
            self.node.name,
            can_run=lambda job, item: ((above is None or job.spec.priority > above)
                                       and self._takes(job, item, caps)),
            prompt_id=lambda item: dispatch.prompt_id_for(item.id, len(item.attempts) + 1),
            max_on_node=max_on_node,  # across replicas sharing a database
        )
        if claimed is None:
            if self.pool.planner.settle():
                self.pool.wake()  # jobs stored without requirements have them now
            return False
        self.execute(*claimed, submit=True)
        return True

    def offer(self, priority: int) -> None:
        """Work of ``priority`` was queued: worth a look whether it overtakes here."""
        with self.lock:
            self.offered = priority if self.offered is None else max(self.offered, priority)

    def _waiting(self, besides: ItemExecution | None = None) -> list[overtake.Waiting]:
        """This node's prompts posted and not started yet (caller holds ``lock``)."""
        return [overtake.Waiting(e.job.spec.priority, e.number)
                for e in self.running.values() if e is not besides
                and e.number is not None and e.item.status == ItemStatus.DISPATCHED]

    def _overtake_floor(self) -> int | None:
        """The priority an item must exceed to be claimed beyond ``max_in_flight`` (by one),
        or None when no such claim is worth trying: the node is unwell, already one over,
        or nothing of a higher priority than its waiting prompts was offered since."""
        node = self.node
        if node.health != NodeHealth.UP or node.draining:
            return None
        with self.lock:
            if len(self.running) != node.config.max_in_flight or self.offered is None:
                return None
            floor = overtake.overtake_floor(self._waiting())
            offered = self.offered
        return floor if floor is not None and offered > floor else None

    def _queue_number(self, execution: ItemExecution) -> float | None:
        """Where ``execution``'s prompt goes in the node's queue (``overtake``)."""
        with self.lock:
            waiting = self._waiting(besides=execution)
        return overtake.queue_number(execution.job.spec.priority, waiting)

    def _takes(self, job: Job, item: Item, caps: dispatch.Capabilities) -> bool:
        """Whether this node takes ``item`` now; runs inside the store's claim, so it
        only reads what is known (a job without stored requirements waits for ``settle``)."""
        needs = self.pool.planner.known(job)
        return (needs is not None and dispatch.can_run(needs, caps)
                and not dispatch.yields_to_preferred(job.spec.metadata, self.node.name,
                                                     self.pool.has_room)
                and self.pool.placement.accepts(self.node.name, job, item))

    def execute(self, job: Job, item: Item, *, submit: bool) -> ItemExecution:
        execution = ItemExecution(self.pool.ctx, self.node, job, item)
        execution.place = self._queue_number
        ticket = self.post_order.ticket() if submit else None
        if ticket is not None:
            execution.in_turn = lambda: self.post_order.turn(ticket)
        with self.lock:
            self.running[item.id] = execution

        def run() -> None:
            try:
                execution.run(submit=submit)
            finally:
                if ticket is not None:
                    self.post_order.done(ticket)  # an item that never posted frees the line
                with self.lock:
                    self.running.pop(item.id, None)
                requeued = execution.item.status == ItemStatus.QUEUED  # may overtake elsewhere
                self.pool.wake(priority=job.spec.priority if requeued else None)

        self.runners.run(run, name=f"item-{item.id}")
        return execution

    def in_flight(self) -> int:
        with self.lock:
            return len(self.running)

    def cancel(self, item_id: str) -> bool:
        with self.lock:
            execution = self.running.get(item_id)
        if execution is None:
            return False
        execution.cancel()
        return True

    def detach_all(self) -> None:
        with self.lock:
            executions = list(self.running.values())
        for execution in executions:
            execution.detach()

    def stop(self, timeout: float = 5.0) -> None:
        self.stopped.set()
        self.runners.close()
        self.pool.wake()
        if self.thread is not None:
            self.thread.join(timeout)


class NodePool:
    """Nodes, their workers and the health loop. Thread-safe; a context manager."""

    def __init__(self, ctx: PoolContext) -> None:
        self.ctx = ctx
        self.workers: dict[str, NodeWorker] = {}
        self.lock = threading.Lock()
        self.work = threading.Condition()
        self.wakes = 0  # wake() calls so far; see wait_for_work
        self.closed = threading.Event()
        self.health_thread: threading.Thread | None = None
        self._merged: tuple[tuple[int, ...], dict[str, Any]] | None = None
        # Measured speeds, speed-aware placement, and the watchdog (silent sockets, stalls).
        self.speeds = SpeedBook()
        self.placement = Placement(self, self.speeds)
        self.watchdog = Watchdog(self, self.speeds, self.placement)

    # --- membership ----------------------------------------------------------------------------

    def add(self, config: NodeConfig, *, start: bool = True) -> Node:
        node = Node(config)
        with self.lock:
            if config.name in self.workers:
                raise ConfigError(f"a node named {config.name!r} is already in the pool")
            worker = self.workers[config.name] = NodeWorker(self, node)
        if node.check():
            node.stream.wait_connected(STREAM_CONNECT_WAIT)  # open it before the first item
        if start:
            worker.start()
        self.wake()
        return node

    def remove(self, name: str) -> None:
        """Take a node out; items running on it go back to the queue for other nodes."""
        with self.lock:
            worker = self.workers.pop(name, None)
        if worker is None:
            raise ConfigError(f"no node named {name!r} in the pool")
        worker.stop()
        worker.detach_all()
        worker.node.close()
        for _job, item in self.ctx.store.in_flight(name):
            self.requeue_quietly(item, f"node {name} was removed from the pool")
        self.fail_unrunnable_waiting()  # it may have been the last node able to run some

    def drain(self, name: str, draining: bool = True) -> None:
        """Stop giving the node new items; what runs there finishes."""
        self.worker(name).node.draining = draining
        self.wake()

    def worker(self, name: str) -> NodeWorker:
        with self.lock:
            worker = self.workers.get(name)
        if worker is None:
            raise ConfigError(f"no node named {name!r} in the pool")
        return worker

    def has_room(self, name: str) -> bool:
        """Whether the node ``name`` is up and can take one more item (False if unknown)."""
        with self.lock:
            worker = self.workers.get(name)
        return worker is not None and worker.has_room()

    def nodes(self) -> list[NodeInfo]:
        with self.lock:
            workers = list(self.workers.values())
        return [w.node.info(w.in_flight()) for w in workers]

    def in_flight(self) -> int:
        """Items on nodes right now, pool-wide (cheaper than ``nodes()``)."""
        with self.lock:
            workers = list(self.workers.values())
        return sum(w.in_flight() for w in workers)

    def object_info(self) -> dict[str, Any]:
        """The merged ``/object_info`` of every node that has answered.

        Merging copies about 1 MB per node, so the result is kept until some node's
        capabilities are refreshed (the key is the identity of each node's reply).
        """
        with self.lock:
            infos = [w.node.object_info for w in self.workers.values() if w.node.object_info]
            key = tuple(id(info) for info in infos)
            if self._merged is None or self._merged[0] != key:
                self._merged = (key, dispatch.merge_object_info(infos))
            return self._merged[1]

    def capabilities(self) -> list[dispatch.Capabilities]:
        with self.lock:
            nodes = [w.node for w in self.workers.values()]
        return [n.capabilities for n in nodes if n.capabilities is not None]

    @property
    def planner(self) -> Planner:
        """Requirements and renders: the pool's, through its context."""
        return self.ctx.planner

    def requirements_of(self, job: Job) -> Requirements:
        """What ``job`` needs from a node (``Planner.requirements_of``; not inside a claim)."""
        return self.planner.requirements_of(job)

    # --- work no node can run -------------------------------------------------------------

    def unrunnable_reason(self, job: Job) -> str | None:
        """Why no node of the pool can run ``job`` (None: some node can, or may once it
        answers). A node that is down counts with what it had: it may come back."""
        with self.lock:
            caps = [w.node.capabilities for w in self.workers.values()]
        return dispatch.nobody_can_run(self.requirements_of(job), caps)

    def fail_unrunnable(self, job: Job) -> bool:
        """Fail the job's queued items at once, with the reason, when no node can run it;
        True if it did. Called on submit and retry, and for every waiting job whenever
        the pool's capabilities change (``fail_unrunnable_waiting``)."""
        reason = self.unrunnable_reason(job)
        if reason is None:
            return False
        error = ItemError(code="no_capable_node", message=reason)
        failed = False
        for item in job.items:
            if item.status == ItemStatus.QUEUED and self._fail_queued(item.id, error):
                failed = True
        if failed:
            publish_if_finished(self.ctx.bus, self.ctx.store.get_job(job.id))
        return failed

    def _fail_queued(self, item_id: str, error: ItemError) -> bool:
        try:
            # Re-read: a worker may have claimed it since (it could run it, then).
            if self.ctx.store.get_item(item_id).status != ItemStatus.QUEUED:
                return False
            self.ctx.store.mark_failed(item_id, error, retry=False)
        except OrchestratorError:
            return False  # claimed or canceled meanwhile: its state is already recorded
        return True

    def fail_unrunnable_waiting(self) -> int:
        """Fail every waiting job no node can run any more (a node left, or came back
        without a class or model); how many jobs were failed."""
        with self.lock:
            caps = [w.node.capabilities for w in self.workers.values()]
        if not caps or any(c is None for c in caps):
            return 0  # nothing can be ruled out while a node has not answered
        return sum(self.fail_unrunnable(job) for job in self._waiting_jobs())

    def _waiting_jobs(self) -> Iterator[Job]:
        for status in (JobStatus.QUEUED, JobStatus.RUNNING):
            cursor = None
            while True:
                page = self.ctx.store.list_jobs(status=status, limit=SWEEP_PAGE, cursor=cursor)
                yield from (job for job in page.jobs
                            if any(i.status == ItemStatus.QUEUED for i in job.items))
                if page.next_cursor is None:
                    break
                cursor = page.next_cursor

    # --- waking -----------------------------------------------------------------------------

    def wake(self, priority: int | None = None) -> None:
        """Wake the workers; ``priority``: new work of that priority was queued, which a
        full node may claim to overtake what waits on it (``NodeWorker.run_once``)."""
        if priority is not None:
            with self.lock:
                workers = list(self.workers.values())
            for worker in workers:
                worker.offer(priority)
        with self.work:
            self.wakes += 1
            self.work.notify_all()

    def wait_for_work(self, timeout: float, *, seen: int | None = None) -> None:
        """Sleep until ``wake`` or ``timeout``; at once if a wake came after ``seen`` (the
        ``wakes`` count read before the last look at the queue), so a submit landing
        between that look and this wait is not left for the timeout."""
        with self.work:
            if seen is None or self.wakes == seen:
                self.work.wait(timeout)

    # --- health --------------------------------------------------------------------------------

    def start_health_loop(self) -> None:
        self.health_thread = threading.Thread(target=self._health_loop, name="node-health",
                                              daemon=True)
        self.health_thread.start()

    def _health_loop(self) -> None:
        while not self.closed.wait(HEALTH_INTERVAL):
            self.check_health()
            self.adopt_orphans()

    def check_health(self) -> None:
        """Ask every node; a node that came back may have lost its queue, so reconcile it."""
        with self.lock:
            workers = list(self.workers.values())
        refreshed = False
        for worker in workers:
            was, refreshes = worker.node.health, worker.node.refreshes
            up = worker.node.check()
            refreshed |= worker.node.refreshes != refreshes
            if up and was == NodeHealth.DOWN:
                self.reconcile_node(worker)
                self.wake()
        if refreshed:
            self.fail_unrunnable_waiting()

    # --- recovery ------------------------------------------------------------------------------

    def recover(self, in_flight: list[tuple[Job, Item]] | None = None) -> int:
        """After a crash: reconcile every item the store says is on a node (or those given).

        ``/history/{prompt_id}`` has it → collect outputs, no rerun; still in ``/queue`` →
        reattach; gone (or its node is not in the pool) → back to the queue. Returns how
        many items were found in flight.
        """
        if in_flight is None:
            in_flight = self.ctx.store.in_flight(None)
        by_node: dict[str, list[tuple[Job, Item]]] = {}
        for job, item in in_flight:
            if item.node not in self.workers:
                self.requeue_quietly(item, f"node {item.node} is not in the pool any more")
                continue
            by_node.setdefault(str(item.node), []).append((job, item))
        for name, pairs in by_node.items():
            reconcile(self, self.workers[name], pairs)
        self.wake()
        return len(in_flight)

    def adopt_orphans(self) -> int:
        """Reconcile, as after a crash, the items of a replica that died (another
        orchestrator on the same database whose lease lapsed); how many."""
        try:
            orphans = self.ctx.store.adopt_orphans()
        except OrchestratorError:
            return 0  # the store refused (closing, unreachable): the next tick retries
        return self.recover(orphans) if orphans else 0

    def reconcile_node(self, worker: NodeWorker) -> None:
        """A node came back: find out what became of the items the store has on it."""
        reconcile(self, worker, [(job, item) for job, item in
                                 self.ctx.store.in_flight(worker.node.name)
                                 if item.id not in worker.running])

    def requeue_quietly(self, item: Item, reason: str) -> None:
        """Back to the queue (or canceled, if a cancel was asked), for ``reason``; an item
        that moved on meanwhile is left as it is."""
        try:
            if item.status == ItemStatus.CANCELING:
                self.ctx.store.mark_canceled(item.id)
            else:
                self.ctx.store.requeue(item.id, reason)
        except OrchestratorError:
            return
        publish_if_finished(self.ctx.bus, self.ctx.store.get_job(item.job_id))

    # --- cancel -------------------------------------------------------------------------------

    def cancel_item(self, item: Item) -> None:
        """Cancel an item that is on a node (its worker removes or interrupts the prompt)."""
        with self.lock:
            worker = self.workers.get(item.node or "")
        if worker is None or not worker.cancel(item.id):
            self.requeue_quietly(item, "canceled")

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> None:
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            if worker.thread is None:
                worker.start()
        # Work left waiting by an earlier process that no node of this pool can run.
        self.fail_unrunnable_waiting()
        self.start_health_loop()
        self.watchdog.start()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        self.watchdog.close()
        with self.lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.stop()
            worker.detach_all()
        deadline = time.monotonic() + 5
        while any(w.in_flight() for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        for worker in workers:
            worker.node.close()
