"""The pool's watchdog: notices what ComfyUI does not say (a silent socket, a hung prompt).

Once a second it looks at every item in flight: whether its progress moved (from the
runner's live progress), and, when a node's socket has been quiet with work on it or a
prompt has gone too long without progress, where HTTP says the prompt is (``/api/jobs``
where the node has it, else ``/queue`` and ``/history``). The pure ``stall`` module
decides; this thread carries it out:

* a socket silent while HTTP shows the prompt running or ended is reconnected (the
  runner's watch polls ``/history`` meanwhile, so nothing is lost or run twice), once
  its silence is longer than the running work explains: a few times the longest gap
  the prompt has left between progress so far, or its node's measured seconds per step
  for that workload (``stall.socket_silence_allowed``), so a node whose steps take longer
  than the floor is not reconnected between every two of them;
* a prompt running with no progress for longer than its measured speed allows is
  interrupted on that node and requeued for another one, once, with the reason kept in
  the item's attempt history.

It also measures: each item that succeeds feeds its node time into the ``SpeedBook`` that
dispatch and ETAs read.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from orchestrator import speed, stall
from orchestrator.comfy.client import ComfyClient
from orchestrator.comfy.protocol import PromptPhase
from orchestrator.errors import NodeError, OrchestratorError
from orchestrator.events import ItemFailed
from orchestrator.jobs import ItemError, ItemStatus
from orchestrator.placement import Placement
from orchestrator.runner import ItemExecution, publish_if_finished
from orchestrator.speed import SpeedBook
from orchestrator.stall import ProgressGaps, PromptWatchState, StallLimits, Verdict

if TYPE_CHECKING:
    from orchestrator.pool import NodePool, NodeWorker

log = logging.getLogger(__name__)

# How often the watchdog looks (seconds): the resolution of every silence it measures.
WATCH_INTERVAL = 1.0
# Its own HTTP time-out (seconds): a node that does not answer a look-up this fast is the
# health loop's business, and one frozen node must not hold up the looks at the others.
WATCH_HTTP_TIMEOUT = 5.0
STALLED_CODE = "stalled"
RECONNECTS_KEPT = 100  # the latest reconnects, for the node view and tests


@dataclass
class _Seen:
    """What the watchdog remembers of one item in flight."""

    node: str
    execution: ItemExecution
    key: str
    signature: Any
    changed_at: float
    running_since: float | None = None
    steps: int | None = None
    moved_at: float | None = None  # when its progress (not its status) last changed
    gaps: ProgressGaps = field(default_factory=ProgressGaps)  # its longest quiet stretch


@dataclass(frozen=True)
class Reconnect:
    """One socket the watchdog reconnected: which node, after how much silence."""

    node: str
    silent_s: float
    at: float


@dataclass
class Watchdog:
    """Runs in its own thread from ``start()`` to ``close()``; ``run_once()`` is one look."""

    pool: NodePool
    book: SpeedBook
    placement: Placement
    limits: StallLimits = field(default_factory=StallLimits)
    interval: float = WATCH_INTERVAL
    reconnects: list[Reconnect] = field(default_factory=list)
    _seen: dict[str, _Seen] = field(default_factory=dict)
    # node -> reconnects since its work last made progress (see stall.socket_is_stale)
    _fruitless: dict[str, int] = field(default_factory=dict)
    _reconnected_at: dict[str, float] = field(default_factory=dict)  # node -> last reconnect
    _clients: dict[str, ComfyClient] = field(default_factory=dict)
    _closed: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="pool-watchdog",
                                            daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._closed.set()
        if self._thread is not None:
            self._thread.join(WATCH_HTTP_TIMEOUT + self.interval * 5)
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def _loop(self) -> None:
        while not self._closed.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the watchdog must outlive any one bad look
                log.exception("pool watchdog: one look failed")

    # --- one look ----------------------------------------------------------------------

    def run_once(self) -> None:
        now = time.monotonic()
        with self.pool.lock:
            workers = list(self.pool.workers.values())
        current: set[str] = set()
        for worker in workers:
            with worker.lock:
                executions = list(worker.running.values())
            current.update(e.item.id for e in executions)
            self._sample(worker, executions, now)
            if executions:
                self._check_node(worker, executions, now)
        for item_id in set(self._seen) - current:
            self._finished(self._seen.pop(item_id))

    def _sample(self, worker: NodeWorker, executions: list[ItemExecution], now: float) -> None:
        for execution in executions:
            seen = self._seen.get(execution.item.id)
            signature = _progress_signature(execution)
            if seen is None or seen.execution is not execution:
                seen = self._seen[execution.item.id] = _Seen(
                    worker.node.name, execution, self.placement.key_of(execution.job),
                    signature, now, moved_at=now)
            elif signature != seen.signature:
                if signature is None or seen.signature is None or (
                        signature[:-1] != seen.signature[:-1]):
                    seen.gaps.moved(brought_by_reconnect=self._brought_by_reconnect(
                        worker.node.name, seen, now))
                    seen.moved_at = now
                seen.signature, seen.changed_at = signature, now
                self._fruitless.pop(worker.node.name, None)
            elif seen.running_since is not None:
                seen.gaps.quiet(now - max(seen.running_since, seen.moved_at or now))
            if execution.item.status == ItemStatus.RUNNING and seen.running_since is None:
                seen.running_since = now
            seen.steps = _steps(execution, seen.steps)

    def _brought_by_reconnect(self, node: str, seen: _Seen, now: float) -> bool:
        """Whether progress seen now is what a reconnect of the node brought back: it
        came at the first look after that reconnect, made while the item was quiet."""
        at = self._reconnected_at.get(node)
        return (at is not None and at >= (seen.moved_at or now)
                and now - at < 1.5 * self.interval)

    def _expected_gap(self, executions: list[ItemExecution]) -> float | None:
        """The longest gap between frames the node's running work is expected to leave
        (``stall.expected_gap``), over its items running as far as we know; over all of
        them while none is (the socket may have missed the start of one)."""
        seens = [self._seen[e.item.id] for e in executions if e.item.id in self._seen]
        running = [s for s in seens if s.execution.item.status == ItemStatus.RUNNING]
        gaps = []
        for seen in running or seens:
            estimate = self.book.estimate(seen.node, seen.key)
            gaps.append(stall.expected_gap(seen.gaps.witnessed_s,
                                           estimate.step_s if estimate else None))
        known = [g for g in gaps if g is not None]
        return max(known) if known else None

    def _idle_s(self, seen: _Seen, now: float) -> float:
        since = max(seen.changed_at, seen.running_since or seen.changed_at)
        return now - since

    def _check_node(self, worker: NodeWorker, executions: list[ItemExecution],
                    now: float) -> None:
        stream = worker.node.stream
        silence = now - stream.last_frame
        suspects = [e for e in executions if self._maybe_stalled(e, now)]
        fruitless = self._fruitless.get(worker.node.name, 0)
        gap = self._expected_gap(executions)
        allowed = stall.socket_silence_allowed(self.limits, gap)
        # A running prompt whose progress stopped for longer than its gaps explain is
        # looked up every round, however long reconnects back off (each resets the
        # socket's silence): its progress falls back to HTTP. A prompt waiting in the
        # node's queue is quiet by right: not polled.
        quiet = {e.item.id for e in executions if e.item.status == ItemStatus.RUNNING
                 and self._quiet_s(self._seen[e.item.id], now) >= allowed}
        if silence < allowed and not suspects and not quiet:
            return
        phases = self._phases(worker, executions)
        if phases is None:
            return
        for execution in executions:
            seen = self._seen[execution.item.id]
            if phases.get(execution.item.id) == PromptPhase.RUNNING:
                seen.running_since = seen.running_since or now
                if execution.item.id in quiet:
                    self._estimate(execution, seen, now)
        if stall.socket_is_stale(silence, list(phases.values()), self.limits, fruitless, gap):
            self._reconnect(worker, silence, now)
        for execution in suspects:
            self._judge(worker, execution, phases.get(execution.item.id), now)

    @staticmethod
    def _quiet_s(seen: _Seen, now: float) -> float:
        """Seconds since the item's progress last moved (a status change is no progress)."""
        return now - (seen.changed_at if seen.moved_at is None else seen.moved_at)

    def _estimate(self, execution: ItemExecution, seen: _Seen, now: float) -> None:
        """Progress of a prompt HTTP shows running while its socket says nothing: time
        running over its expected duration (none while that is unknown)."""
        expected = self._expected(seen)
        if expected and seen.running_since is not None:
            execution.progress_estimate((now - seen.running_since) / expected)

    def _maybe_stalled(self, execution: ItemExecution, now: float) -> bool:
        seen = self._seen[execution.item.id]
        if execution.item.id in self.placement.avoid:
            return False
        limit = stall.progress_limit(self._expected(seen), self.limits)
        return self._idle_s(seen, now) >= limit

    def _expected(self, seen: _Seen) -> float | None:
        """The prompt's expected duration on its node: its steps times the measured
        seconds per step where both are known, else the workload's seconds per item."""
        return self.book.item_seconds(seen.node, seen.key, seen.steps)

    def _phases(self, worker: NodeWorker,
                executions: list[ItemExecution]) -> dict[str, PromptPhase] | None:
        ids = {e.item.prompt_id: e.item.id for e in executions if e.item.prompt_id}
        if not ids:
            return None
        try:
            states = self._client(worker).lookup_many(list(ids))
        except NodeError:
            return None  # the health loop deals with a node that stopped answering
        return {ids[pid]: state.phase for pid, state in states.items()}

    def _client(self, worker: NodeWorker) -> ComfyClient:
        """A client of the node's with a short time-out, speaking what the node speaks."""
        node = worker.node
        client = self._clients.get(node.name)
        if client is None or client.url != node.url.rstrip("/"):
            client = self._clients[node.name] = ComfyClient(node.url,
                                                            timeout=WATCH_HTTP_TIMEOUT)
        if node.features is not None:
            client.features = node.features  # as detected when it came up: no probe here
        return client

    def _reconnect(self, worker: NodeWorker, silence: float, now: float) -> None:
        log.warning("node %s: websocket silent for %.1fs while HTTP shows work running or "
                    "ended; reconnecting it", worker.node.name, silence)
        self.reconnects.append(Reconnect(worker.node.name, silence, now))
        del self.reconnects[:-RECONNECTS_KEPT]
        name = worker.node.name
        self._fruitless[name] = self._fruitless.get(name, 0) + 1
        self._reconnected_at[name] = now
        worker.node.stream.reconnect()

    # --- stalls ------------------------------------------------------------------------

    def _judge(self, worker: NodeWorker, execution: ItemExecution,
               phase: PromptPhase | None, now: float) -> None:
        seen = self._seen[execution.item.id]
        idle = self._idle_s(seen, now)
        state = PromptWatchState(phase=phase, idle_s=idle, expected_s=self._expected(seen),
                                 given_up_before=execution.item.id in self.placement.avoid)
        if stall.verdict(state, self.limits) == Verdict.GIVE_UP:
            limit = stall.progress_limit(state.expected_s, self.limits)
            self._give_up(worker, execution, stall.stall_reason(seen.node, idle, limit))

    def _give_up(self, worker: NodeWorker, execution: ItemExecution, reason: str) -> None:
        """Stop following the prompt, interrupt it on the node, requeue the item."""
        log.warning("item %s: %s", execution.item.id, reason)
        item_id, node = execution.item.id, worker.node.name
        self.placement.avoided(item_id, node)
        execution.detach()  # the runner leaves the item's state to us from here
        try:
            worker.node.client.interrupt(str(execution.item.prompt_id))
        except NodeError:
            pass  # a node that does not answer cannot run it either
        ctx = self.pool.ctx
        try:
            item = ctx.store.mark_failed(item_id, ItemError(code=STALLED_CODE, message=reason),
                                         retry=True)
        except OrchestratorError:
            return  # it ended meanwhile (finished or canceled): that stands
        ctx.bus.publish(ItemFailed(job_id=item.job_id, item=item.index, node=node,
                                   message=reason, will_retry=item.status == ItemStatus.QUEUED))
        publish_if_finished(ctx.bus, ctx.store.get_job(item.job_id))
        self.pool.wake(priority=execution.job.spec.priority)  # it may overtake elsewhere

    # --- measuring ---------------------------------------------------------------------

    def _finished(self, seen: _Seen) -> None:
        """An item left its node: a success teaches the node's speed for its workload."""
        self.book.ran(seen.node, seen.key)
        try:
            item = self.pool.ctx.store.get_item(seen.execution.item.id)
        except OrchestratorError:
            return
        if (item.status != ItemStatus.SUCCEEDED or item.node != seen.node
                or item.started_at is None or item.completed_at is None):
            return
        seconds = (item.completed_at - item.started_at).total_seconds()
        if seconds > 0:
            self.book.record(seen.node, seen.key, seconds, seen.steps)


def _steps(execution: ItemExecution, known: int | None) -> int | None:
    """The item's sampler steps: as its rendered graph asks (``speed.graph_steps``), else
    the most a progress bar of it has counted so far."""
    steps = speed.graph_steps(execution.graph)
    if steps:
        return steps
    tracker = execution.tracker
    if tracker is not None and tracker.steps:
        return max(known or 0, tracker.steps)
    return known


def _progress_signature(execution: ItemExecution) -> Any:
    """What changes whenever the prompt makes visible progress."""
    tracker = execution.tracker
    if tracker is None:
        return None
    return (tracker.current, tracker.step, len(tracker.done), execution.item.status)
