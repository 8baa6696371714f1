"""Run one claimed item on one node: render → upload → submit → follow → collect.

Every state change is committed to the store before it is acted on or reported: the
item is DISPATCHED (with its prompt id) before the prompt is posted, so after a crash
``recover`` can always ask the node about that prompt id instead of running it again.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from orchestrator import dispatch
from orchestrator.blobs import Blobs
from orchestrator.comfy.client import ComfyClient
from orchestrator.comfy.messages import (
    Executed,
    Executing,
    ExecutionStart,
    Message,
    Preview,
    Progress,
)
from orchestrator.comfy.progress import GraphProgress, ProgressSnapshot
from orchestrator.comfy.protocol import OutputFile, UiValue, outputs_from_ui, values_from_ui
from orchestrator.comfy.watch import HISTORY_CHECK_INTERVAL, PromptWatch
from orchestrator.errors import (
    GraphRejected,
    JobCancelled,
    JobFailed,
    NodeTimeout,
    NodeUnreachable,
    OrchestratorError,
)
from orchestrator.events import (
    Dispatched,
    EventBus,
    Finished,
    ItemFailed,
    OutputEvent,
    PreviewEvent,
    ProgressEvent,
    Started,
)
from orchestrator.jobs import Item, ItemError, ItemStatus, Job
from orchestrator.nodes import Node
from orchestrator.outputs import (
    OutputRecord,
    new_output,
    new_value_output,
    probe,
    value_bytes,
)
from orchestrator.planner import Planner, RenderedItem
from orchestrator.store import JobStore
from placeholders import fill_uploads, upload_requests

# Timeouts (seconds)
# Silence while a prompt runs after which the node is treated as stuck and the item moves.
DEFAULT_IDLE_TIMEOUT = 600.0
# How often a reattached prompt (posted before a crash) is looked up in /history.
REATTACH_HISTORY_INTERVAL = 0.5
# The most an estimate from measured speed shows of an item (``progress_estimate``): only
# the node's own word says it is done.
ESTIMATE_CAP = 0.95


@dataclass
class JobProgress:
    """Per-item fractions in memory, so a job's progress covers all its items."""

    items: dict[str, dict[int, float]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, job: Job, index: int, fraction: float) -> float:
        with self.lock:
            per_item = self.items.setdefault(job.id, {})
            per_item[index] = max(per_item.get(index, 0.0), fraction)
            return sum(per_item.values()) / max(len(job.items), 1)

    def get(self, job: Job) -> float:
        with self.lock:
            per_item = dict(self.items.get(job.id, {}))
        for item in job.items:
            if item.status.terminal:
                per_item[item.index] = 1.0
        return sum(per_item.values()) / max(len(job.items), 1)


@dataclass
class PoolContext:
    """What every item execution shares: the store, the bus, the blobs, the planner (which
    renders each item at dispatch), the policies."""

    store: JobStore
    bus: EventBus
    blobs: Blobs
    planner: Planner
    progress: JobProgress = field(default_factory=JobProgress)
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT


class ItemExecution:
    """One item on one node. ``run()`` in a thread; ``cancel()`` from any thread."""

    def __init__(self, ctx: PoolContext, node: Node, job: Job, item: Item) -> None:
        self.ctx, self.node, self.job, self.item = ctx, node, job, item
        self.stop = threading.Event()
        # Detached: we stop watching (shutdown, node removed) but the item is not canceled;
        # its state stays in the store for recovery or requeue.
        self.detached = False
        self.canceled = False  # a cancel was asked (unlike a detach, it reaches the node)
        self.graph: dict[str, Any] | None = item.graph
        self.tracker: GraphProgress | None = None
        self.output_ids: list[str] = []
        self.value_ids: list[str] = []  # the node's non-file UI keys, recorded as outputs
        # Where to post the prompt in the node's own queue (``overtake.queue_number``, set
        # by the node's worker; None: at the back), and the number the node gave it.
        self.place: Callable[[ItemExecution], float | None] | None = None
        self.number: float | None = None
        # Holds the node's line while the prompt is posted, so prompts reach the node in
        # the order their items were claimed (``post_order``; set by the node's worker).
        self.in_turn: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext
        self.shown_fraction = 0.0  # the item's progress as last published
        # Whether this execution posted the prompt of the item's first attempt: then no
        # output of the item can be recorded yet, and none needs a look-up first.
        self.posted = False
        # Outputs downloaded, hashed and stored, waiting to be recorded: with the item's
        # success when no other message comes first (one transaction for both), else as
        # soon as the node moves on. Their bytes are held from any release meanwhile.
        self._pending: list[_Pending] = []
        self._held = contextlib.ExitStack()
        self._progress_lock = threading.Lock()  # the socket's reader and the watchdog

    @property
    def prompt_id(self) -> str:
        assert self.item.prompt_id is not None
        return self.item.prompt_id

    # --- the whole run ---------------------------------------------------------------------

    def run(self, *, submit: bool = True) -> None:
        """Carry the item to a terminal state (or back to the queue). Never raises."""
        self.posted = submit and len(self.item.attempts) == 1
        try:
            client = self.node.client
            if submit:
                self._prepare(client)
            self._follow(client, submit=submit)
            self._collect(client)
        except BaseException as exc:  # noqa: BLE001 - every failure is recorded, none lost
            self._record_failure(exc)
        finally:
            self._held.close()

    def _prepare(self, client: ComfyClient) -> None:
        rendered = self.ctx.planner.plan(self.job, self.item)
        graph = self._upload_images(client, rendered)
        self.item = self.ctx.store.set_rendered(self.item.id, graph=graph, seed=rendered.seed)
        self.graph = graph

    def _upload_images(self, client: ComfyClient, rendered: RenderedItem) -> dict[str, Any]:
        names = {}
        for request in upload_requests(rendered.graph):
            # Named after the digest it was stored under: the bytes are not hashed again.
            digest = rendered.digests.get(request.placeholder) or hashlib.sha256(
                request.data).hexdigest()
            names[request.placeholder] = client.upload_image(
                request.data, f"orch-{digest[:24]}.png", overwrite=True)
        return fill_uploads(rendered.graph, names) if names else rendered.graph

    def _follow(self, client: ComfyClient, *, submit: bool) -> None:
        assert self.graph is not None
        self.tracker = GraphProgress.for_graph(self.graph)
        # A prompt posted by an earlier process sends its events to that process's socket:
        # follow it through /history at a short interval instead.
        interval = HISTORY_CHECK_INTERVAL if submit else REATTACH_HISTORY_INTERVAL
        with PromptWatch(client, self.prompt_id, stream=self.node.stream,
                         history_interval=interval) as watch:
            if submit:
                self._submit(client, watch.client_id)
            watch.follow(self._on_message, timeout=None, idle_timeout=self.ctx.idle_timeout,
                         stop=self.stop)

    def _submit(self, client: ComfyClient, client_id: str) -> None:
        assert self.graph is not None
        with self.in_turn():
            if self.canceled:
                raise JobCancelled(self.prompt_id, "canceled")
            number = self.place(self) if self.place is not None else None
            # Only a claim brings an item here, and each claim mints a new attempt's prompt
            # id in the same transaction, so no node can hold it yet (``fresh``): a
            # re-attached prompt (recovery, adoption) never comes through here.
            submitted = client.submit(self.graph, prompt_id=self.prompt_id,
                                      client_id=client_id, extra_data=self.job.spec.extra_data,
                                      number=number, fresh=True)
        self.number = submitted.number
        self._publish_dispatched()
        if self.canceled:
            # The cancel landed while the prompt was on its way and found nothing to
            # remove: without this the prompt would run on the node, orphaned.
            self._cancel_on_node()

    def _publish_dispatched(self) -> None:
        self.ctx.bus.publish(Dispatched(
            job_id=self.job.id, item=self.item.index, node=self.node.name,
            prompt_id=self.prompt_id, attempt=len(self.item.attempts)))

    # --- messages from the node -------------------------------------------------------------

    def _on_message(self, msg: Message) -> None:
        if self._pending and _moves_on(msg):
            self._record_pending()
        if isinstance(msg, ExecutionStart):
            self.item = self.ctx.store.mark_running(self.item.id)
            self.ctx.bus.publish(Started(job_id=self.job.id, item=self.item.index,
                                         node=self.node.name))
        elif isinstance(msg, Preview):
            self.ctx.bus.publish(PreviewEvent(job_id=self.job.id, item=self.item.index,
                                              mime=msg.mime, image=msg.image))
        elif isinstance(msg, Executed):
            self._collect_executed(msg)
        assert self.tracker is not None
        snap = self.tracker.update(msg)
        if snap is not None:
            self._publish_progress(snap, snap.fraction)

    def progress_estimate(self, fraction: float) -> None:
        """The node's socket is silent while HTTP shows this prompt running: progress from
        its measured speed (``fraction``: time running over expected duration), shown
        below ``ESTIMATE_CAP``, never behind what the socket last brought."""
        tracker = self.tracker
        if tracker is None:
            return
        snap = tracker.snapshot()
        estimate = max(snap.fraction, min(fraction, ESTIMATE_CAP))
        if estimate > self.shown_fraction:
            self._publish_progress(snap, estimate)

    def _publish_progress(self, snap: ProgressSnapshot, item_fraction: float) -> None:
        # An estimate may run ahead of the socket's own count: the item never goes back.
        with self._progress_lock:
            item_fraction = self.shown_fraction = max(self.shown_fraction, item_fraction)
            fraction = self.ctx.progress.set(self.job, self.item.index, item_fraction)
            self.ctx.bus.publish(ProgressEvent(
                job_id=self.job.id, item=self.item.index, node=self.node.name,
                node_id=snap.current_node, class_type=snap.current_class, value=snap.step,
                max=snap.steps, item_fraction=item_fraction, fraction=fraction,
                nodes_done=snap.nodes_done, nodes_total=snap.nodes_total))

    # --- outputs -----------------------------------------------------------------------------

    def _collect_executed(self, msg: Executed) -> None:
        """Store an output node's saved files as soon as it reports them.

        SaveImage has written its files when ``executed`` is sent; fetching them now
        overlaps our download with ComfyUI finishing the prompt and writing history.
        Temporary files (PreviewImage) are left to the history fallback in ``_collect``,
        used only when no node saved anything.
        """
        self._record_pending()  # the node moved on from the outputs before these
        for file in outputs_from_ui({msg.node: msg.output}):
            if file.type == "output":
                self.output_ids.append(self._store_output(self.node.client, file).id)
        self.value_ids += [self._store_value(v).id for v in values_from_ui({msg.node: msg.output})]

    def _collect(self, client: ComfyClient) -> None:
        if not self.output_ids:
            # Events went elsewhere (a prompt posted before a crash) or only temp files
            # were made: the history entry is the full record.
            entry = client.settled_history(self.prompt_id)
            files = [f for f in entry.outputs if f.type == "output"] or list(entry.outputs)
            self.output_ids = [self._store_output(client, f).id for f in files]
            self.value_ids += [self._store_value(v).id for v in entry.values]
        output_ids = list(dict.fromkeys(self.output_ids + self.value_ids))
        pending, self._pending = self._pending, []
        try:
            settled = self.ctx.store.succeed(self.item.id, output_ids,
                                             outputs=[p.record for p in pending])
        except OrchestratorError:
            self._pending = pending  # a refused success: the failure path records them
            raise
        self._held.close()
        for waited, stored in zip(pending, settled.outputs, strict=True):
            self._publish_output(stored, waited)
        self.item = settled.item
        self.ctx.progress.set(self.job, self.item.index, 1.0)
        if settled.job_status.terminal:  # the same transaction said so: no read-back
            self.ctx.bus.publish(Finished(job_id=self.job.id, status=settled.job_status.value,
                                          error=settled.error))

    def _recorded(self, name: str, node_id: str | None) -> OutputRecord | None:
        """The record of an output collected before (by a process that crashed after it):
        never stored twice. The first attempt's prompt, posted here, has none: no look-up
        then (and ``add_output`` would return a stored record for the same file anyway)."""
        if self.posted:
            return None
        return self.ctx.store.output_for_item_file(self.item.id, name, node_id=node_id)

    def _store_output(self, client: ComfyClient, file: OutputFile) -> OutputRecord:
        existing = self._recorded(file.filename, file.node_id)
        if existing is not None:
            return existing
        data = client.view(file)
        media = probe(data, file.filename)
        # No release removes the bytes before the record names them.
        blob = self._held.enter_context(self.ctx.blobs.storing(data))
        record = new_output(self.job, self.item, blob, media, filename=file.filename,
                            node_id=file.node_id, node=self.node.name, key=file.kind)
        self._pending.append(_Pending(record, file.node_id, file.filename))
        return record

    def _record_pending(self) -> None:
        """Record the outputs waiting for the item's success (the node moved on, or the
        item failed), then publish them: recorded before reported."""
        pending, self._pending = self._pending, []
        for waited in pending:
            self._publish_output(self.ctx.store.add_output(waited.record), waited)
        self._held.close()

    def _publish_output(self, record: OutputRecord, waited: _Pending) -> None:
        self.ctx.bus.publish(OutputEvent(job_id=self.job.id, item=self.item.index,
                                         output_id=record.id, node_id=waited.node_id,
                                         mime=record.mime, filename=waited.name))

    def _store_value(self, found: UiValue) -> OutputRecord:
        """Record a non-file key of a node's UI result (its text, numbers...) as an output
        of kind ``value``, once per (item, node, key), so it outlives the node's memory."""
        existing = self._recorded(found.key, found.node_id)
        if existing is not None:
            return existing
        blob = self._held.enter_context(self.ctx.blobs.storing(value_bytes(found.value)))
        record = new_value_output(self.job, self.item, blob, key=found.key, value=found.value,
                                  node_id=found.node_id, node=self.node.name)
        self._pending.append(_Pending(record, found.node_id, found.key))
        return record

    # --- failures ----------------------------------------------------------------------------

    def _record_failure(self, exc: BaseException) -> None:
        if self.detached:
            return
        with contextlib.suppress(OrchestratorError):
            self._record_pending()  # what the node made before it failed stays recorded
        if isinstance(exc, JobCancelled) or self.stop.is_set():
            self._record_canceled()
            return
        retry = dispatch.is_retryable(exc)
        error = _item_error(exc)
        try:
            self.item = self.ctx.store.mark_failed(self.item.id, error, retry=retry)
        except OrchestratorError:
            return  # the item moved on meanwhile (canceled); its state is already recorded
        if isinstance(exc, NodeUnreachable | NodeTimeout):
            self.node.mark_down(str(exc))  # the health loop brings it back when it answers
        self.ctx.bus.publish(ItemFailed(
            job_id=self.job.id, item=self.item.index, node=self.node.name,
            message=error.message, will_retry=self.item.status == ItemStatus.QUEUED,
            rejection=_node_refusal(exc)))
        self._maybe_finished()

    def _record_canceled(self) -> None:
        try:
            self.item = self.ctx.store.mark_canceled(self.item.id)
        except OrchestratorError:
            return
        self._maybe_finished()

    def _maybe_finished(self) -> None:
        job = self.ctx.store.get_job(self.job.id)
        publish_if_finished(self.ctx.bus, job)

    def detach(self) -> None:
        """Stop following without touching the item's state (it stays for ``recover``)."""
        self.detached = True
        self.stop.set()

    # --- cancel ------------------------------------------------------------------------------

    def cancel(self) -> None:
        """Remove the prompt from the node's queue, or interrupt it if it is the one running."""
        self.canceled = True
        self.stop.set()
        if self.item.prompt_id is not None:
            self._cancel_on_node()

    def _cancel_on_node(self) -> None:
        try:
            self.node.client.cancel(self.prompt_id)
        except OrchestratorError:
            pass  # the node is gone: the item is canceled on our side regardless


@dataclass(frozen=True)
class _Pending:
    """An output stored and not recorded yet, with what its event names."""

    record: OutputRecord
    node_id: str
    name: str


def _moves_on(msg: Message) -> bool:
    """Whether the node went on to other work after an output (then the output is recorded
    now, not held for the item's success): another node runs, steps or previews."""
    if isinstance(msg, Executing):
        return msg.node is not None
    return isinstance(msg, Progress | Preview | ExecutionStart)


def publish_if_finished(bus: EventBus, job: Job) -> None:
    status = job.status
    if status.terminal:
        errors = [i.error.message for i in job.items if i.error]
        bus.publish(Finished(job_id=job.id, status=status.value,
                             error=errors[0] if errors else None))


def _node_refusal(exc: BaseException) -> dict[str, Any] | None:
    """The node's 400 body when its ``POST /prompt`` refused the graph (its own validation,
    such as ``VALIDATE_INPUTS``, which our pre-flight cannot know); None otherwise."""
    if isinstance(exc, GraphRejected) and isinstance(exc.raw.get("error"), dict):
        return dict(exc.raw)
    return None


def _item_error(exc: BaseException) -> ItemError:
    if isinstance(exc, JobFailed):
        return ItemError(code="execution_error", message=str(exc), node_id=exc.node_id,
                         class_type=exc.class_type, traceback=exc.traceback or None,
                         exception_type=exc.exception_type or None,
                         exception_message=exc.exception_message)
    message = str(exc) if isinstance(exc, OrchestratorError) else (
        f"internal error ({type(exc).__name__}: {exc}); please report it")
    return ItemError(code=dispatch.error_code(exc), message=message)

