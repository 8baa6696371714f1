"""``Orchestrator``: the one core every front end calls (Python, REST, gateway, panel).

It owns the store, the blob store, the event bus, the workflow registry and the node
pool, and wires them together: ``submit`` validates and records a job; the pool's
workers render each item at dispatch with the registry's current version of the
workflow and run it on whichever node is free.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import random
import threading
import time
import uuid
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from orchestrator import access, admission, embedded, library, nodefacts
from orchestrator.admission import Admission as Admission
from orchestrator.admission import Admitted
from orchestrator.admission import QueueBound as QueueBound
from orchestrator.blobs import Blobs
from orchestrator.comfy.features import JOB_CANCEL as JOB_CANCEL
from orchestrator.comfy.features import JOBS_API as JOBS_API
from orchestrator.comfy.features import UUID_PROMPT_IDS as UUID_PROMPT_IDS
from orchestrator.comfy.features import Version as Version
from orchestrator.comfy.features import is_canonical_uuid as is_canonical_uuid
from orchestrator.comfy.features import parse_version as parse_version
from orchestrator.dispatch import PREFERRED_NODE_KEY as PREFERRED_NODE_KEY
from orchestrator.errors import (
    InputsNotShared,
    JobError,
    JobNotFound,
    NotFound,
    OrchestratorError,
)
from orchestrator.events import EventBus, Finished, Queued, Snapshot, Subscription
from orchestrator.inputs import InputFile, InputFiles, InputPage, OnName, StoredInput
from orchestrator.jobs import Job, JobSpec, JobStatus, Visibility
from orchestrator.library import CheckReport as CheckReport
from orchestrator.library import WorkflowFacts as WorkflowFacts
from orchestrator.nodefacts import NodeFacts as NodeFacts
from orchestrator.nodes import NodeConfig, NodeHealth, NodeInfo, node_config
from orchestrator.outputs import THUMBNAIL_FORMAT as THUMBNAIL_FORMAT
from orchestrator.outputs import BlobStore, OutputRecord, sniff_mime
from orchestrator.planner import Planner
from orchestrator.pool import NodePool
from orchestrator.registry import WorkflowRegistry
from orchestrator.relay import RelayedBus
from orchestrator.rendering import (
    model_sites,
    needs_pool_model,
    with_pool_model,
)
from orchestrator.retention import DEFAULT_SWEEP_S, RetentionSweep, expires_at, freed_blobs
from orchestrator.runner import PoolContext, publish_if_finished
from orchestrator.seeds import reseeded
from orchestrator.stall import StallLimits
from orchestrator.store import JobPage, JobStore, JobView, OutputPage, open_store
from orchestrator.store.rates import Rate
from orchestrator.tokens import Principal, TokenStore
from orchestrator.validation import check_against_object_info, raise_for_problems
from orchestrator.workflow import Workflow, check_graph_shape
from placeholders import RANDOM_SEED, seed_for
from placeholders.graph import is_link as is_link


@dataclass(frozen=True)
class StoredImage:
    """An input image already in the blob store, passed by its sha256: it goes to the job
    as it is, never read, hashed or stored again (``submit(images=...)``)."""

    sha256: str


ImageInput = bytes | os.PathLike[str] | StoredImage

# Event sequence numbers a process may use per second of its start time; keeps ids of a
# later process above an earlier one's while staying below 2**53 (exact in JSON).
EVENT_IDS_PER_SECOND = 1_000_000
# The counter of process starts whose value (at least the clock's second) bases event ids.
EVENT_EPOCH = "event_epoch"
# The store lock admissions hold from the queue bound's count to the insert.
ADMISSION_LOCK = "admission"


class JobHandle:
    """A submitted job: its id plus ways to watch, wait for and cancel it."""

    def __init__(self, orch: Orchestrator, job_id: str, *, replayed: bool = False,
                 recorded: Job | None = None) -> None:
        self.orch = orch
        self.id = job_id
        self.replayed = replayed  # True when an idempotency key returned an existing job
        # The job as the submit recorded it (None when the submit changed it since): a
        # face answers a submit with it instead of reading the job back (``admit_read``).
        self.recorded = recorded

    def get(self) -> Job:
        return self.orch.get(self.id)

    def status(self) -> str:
        return self.get().status.value

    def wait(self, timeout: float | None = None) -> Job:
        return self.orch.wait(self.id, timeout)

    def events(self) -> Subscription:
        return self.orch.events(self.id)

    def cancel(self) -> Job:
        return self.orch.cancel(self.id)

    def outputs(self) -> list[OutputRecord]:
        return self.orch.outputs_of(self.id)

    def __repr__(self) -> str:
        return f"JobHandle({self.id!r})"


EventT = TypeVar("EventT", bound=BaseModel)


@dataclass(frozen=True)
class PoolCounts:
    """The pool in counts only, for a health answer anyone may read (no addresses)."""

    nodes_up: int
    nodes_total: int
    queued: int  # items waiting for a node
    nodes_draining: int = 0  # of the nodes up, those finishing their work and taking none


class Orchestrator:
    """Open with a data folder, a workflows folder and ComfyUI nodes; close when done.

    Thread-safe. A context manager: ``with Orchestrator(data_dir=..., nodes=[url]) as o``.
    On open it reconciles items that were on nodes when a previous process died
    (``recover``), then starts one worker per node.
    """

    def __init__(
        self,
        *,
        data_dir: str | os.PathLike[str],
        workflows_dir: str | os.PathLike[str] | None = None,
        nodes: Iterable[str | NodeConfig] = (),
        watch_workflows: bool = True,
        idle_timeout: float | None = None,
        rng: random.Random | None = None,
        start: bool = True,
        retention: timedelta | None = None,
        retention_sweep_s: float = DEFAULT_SWEEP_S,
        db: str | None = None,
        stall_limits: StallLimits | None = None,
    ) -> None:
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self._rng = rng or random.SystemRandom()
        self._rng_lock = threading.Lock()
        self._store: JobStore = open_store(data_dir, db)  # db: a postgresql:// URL
        self._blobs: Blobs = BlobStore(data_dir / "blobs")  # any Blobs slots in here
        # Event ids of this process sort after every earlier one's and apart from every
        # other replica's on db (see EventBus): a Last-Event-ID of another is never misread.
        seq_base = self._store.next_count(EVENT_EPOCH, at_least=int(time.time())) * (
            EVENT_IDS_PER_SECOND)
        self._bus = EventBus(seq_base=seq_base) if db is None else RelayedBus(
            db, uuid.uuid4().hex, seq_base=seq_base)  # to every replica on db
        self._registry = WorkflowRegistry(workflows_dir, watch=watch_workflows) if (
            workflows_dir is not None) else None
        planner = Planner(self._store, self._blobs, self._registry, rng=self._rng,
                          rng_lock=self._rng_lock)
        ctx = PoolContext(self._store, self._bus, self._blobs, planner)
        if idle_timeout is not None:
            ctx.idle_timeout = idle_timeout
        self._pool = NodePool(ctx)
        if stall_limits is not None:
            self._pool.watchdog.limits = stall_limits
        self._closed = False
        self._inputs = InputFiles(self._store, self._blobs, self._release_unreferenced)
        # The API tokens live in the same database (a view of the store, closed with it).
        self._tokens = TokenStore(self._store)
        self._retention = retention  # None: keep every job (see orchestrator.retention)
        self._sweep = None if retention is None else RetentionSweep(
            self._store, self._release_unreferenced, keep=retention,
            every=retention_sweep_s)
        for node in nodes:
            self._pool.add(node_config(node), start=False)
        if start:
            self.recover()
            self._pool.start()
            if self._sweep is not None:
                self._sweep.start()

    # --- submitting -----------------------------------------------------------------------

    def submit(
        self,
        workflow: str | None = None,
        values: Mapping[str, Any] | None = None,
        *,
        graph: Mapping[str, Any] | None = None,
        count: int = 1,
        owner: str = "local",
        character: str | None = None,
        conversation: str | None = None,
        visibility: Visibility | str = Visibility.PRIVATE,
        priority: int = 0,
        images: Mapping[str, ImageInput] | None = None,
        metadata: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        job_id: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
    ) -> JobHandle:
        """Record a job and return its handle at once; workers pick it up.

        ``workflow`` names a registry workflow (values fill its placeholders); ``graph``
        is a raw API-format graph instead. Bad values raise ``SubstitutionError`` before
        anything is recorded. A job that no known node can run is recorded as failed
        with ``no node can run class X / model Y``. ``job_id`` lets a front end choose the
        id (the ComfyUI gateway honours a client's ``prompt_id``); ``extra_data`` goes to
        ComfyUI with every prompt of the job. ``images`` are bytes, a file, or a
        ``StoredImage`` (a blob by sha256, passed on as it is); each item is rendered (or
        its files staged) once, at dispatch, the only place the bytes are read again.
        """
        self._check_open()
        images = dict(images or {})
        if graph is not None:
            graph = check_graph_shape(dict(graph), source="graph")
        elif workflow is not None:
            values = self._with_pool_model(workflow, values or {})
        # Checked (not rendered) before anything is stored: bad values leave no blobs.
        requirements = self._pool.planner.requirements(
            workflow=workflow, graph=graph, values=values or {}, images=images.keys())
        with self._storing(images) as stored:
            spec = JobSpec(
                workflow=workflow, graph=dict(graph) if graph is not None else None,
                values=dict(values or {}), count=count, owner=owner, character=character,
                conversation=conversation, visibility=Visibility(visibility),
                priority=priority, images=stored, metadata=dict(metadata or {}),
                extra_data=dict(extra_data or {}),
            )
            job, replayed = self._store.create_job_idempotent(
                spec, idempotency_key=idempotency_key, job_id=job_id,
                requirements=requirements.record())
        if replayed:
            return JobHandle(self, job.id, replayed=True, recorded=job)
        self._bus.publish(Queued(job_id=job.id, count=count))
        failed = self._pool.fail_unrunnable(job)
        self._pool.wake(priority=job.spec.priority)
        return JobHandle(self, job.id, recorded=None if failed else job)

    def _with_pool_model(self, name: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` with ``%model%`` filled from the pool when it offers one model file
        for its inputs (``rendering.with_pool_model``); stored so every retry renders the
        same model."""
        workflow = self._workflow(name)
        if not needs_pool_model(workflow, values):
            return dict(values)
        sites = [(cls, inp) for _, cls, inp in model_sites(workflow)]
        offered = {value for caps in self._pool.capabilities() for site in sites
                   for value in caps.combos.get(site, ())}
        return with_pool_model(workflow, values, sorted(offered))

    @contextlib.contextmanager
    def _storing(self, images: Mapping[str, ImageInput]) -> Iterator[dict[str, str]]:
        """The input images as {name: sha256}, new bytes stored; no blob release removes
        any of them before the block has recorded the job that names them."""
        with contextlib.ExitStack() as held:
            yield {name: self._stored(held, name, image) for name, image in images.items()}

    def _stored(self, held: contextlib.ExitStack, name: str, image: ImageInput) -> str:
        if isinstance(image, StoredImage):
            held.enter_context(self._blobs.holding(image.sha256))
            if not self._blobs.path(image.sha256).is_file():
                raise NotFound(f"stored image for {name!r}", image.sha256)
            return image.sha256
        data = Path(image).read_bytes() if isinstance(image, os.PathLike) else image
        return held.enter_context(self._blobs.storing(data)).sha256

    def _workflow(self, name: str | None) -> Workflow:
        return self._pool.planner.workflow(name)

    # --- reading -----------------------------------------------------------------------

    def get(self, job_id: str) -> Job:
        return self._store.get_job(job_id)

    def list(self, **filters: Any) -> JobPage:
        return self._store.list_jobs(**filters)

    def queued_count(self, owner: str | None = None) -> int:
        """Items waiting for a node (not yet dispatched); ``owner``'s only, when given."""
        return self._store.queued_count(owner)

    def backlog(self) -> int:
        """Items not finished yet, pool-wide: waiting for a node plus running on one."""
        return self._store.queued_count() + self._pool.in_flight()

    def progress(self, job_id: str) -> float:
        """The job's progress, 0..1 over all its items and their whole graphs."""
        return self._pool.ctx.progress.get(self.get(job_id))

    def queue_position(self, item_id: str) -> int | None:
        """How many queued items go before this one, or None once it left the queue.

        The order is the pool's: priority, then the fair share between owners, then age
        (``store/position.py``). ``JobNotFound`` for an unknown item.
        """
        return self._store.queue_position(item_id)

    def eta_s(self, job: Job, ahead: int) -> float | None:
        """Seconds until a queued item of ``job`` with ``ahead`` queued items before it is
        expected to be done, from the nodes' measured speeds (None: none measured yet)."""
        return self._pool.placement.eta_s(job, ahead)

    def gallery(self, *, character: str | None = None, conversation: str | None = None,
                owner: str | None = None, limit: int = 50,
                cursor: str | None = None) -> OutputPage:
        """A character's public gallery, or a conversation's gallery of ``owner``."""
        if conversation is not None:
            if owner is None:
                return self._store.list_outputs(conversation=conversation, limit=limit,
                                               cursor=cursor, files_only=True)
            return self._store.gallery_conversation(conversation, owner, limit=limit,
                                                   cursor=cursor)
        if character is not None:
            return self._store.gallery_character(character, limit=limit, cursor=cursor)
        return self._store.list_outputs(owner=owner, limit=limit, cursor=cursor)

    def outputs_of(self, job_id: str) -> builtins.list[OutputRecord]:
        records: builtins.list[OutputRecord] = []
        cursor = None
        while True:
            page = self._store.list_outputs(job_id=job_id, limit=500, cursor=cursor)
            records.extend(page.outputs)
            if page.next_cursor is None:
                return records
            cursor = page.next_cursor

    def output(self, output_id: str) -> OutputRecord:
        return self._store.get_output(output_id)

    def output_bytes(self, output_id: str) -> bytes:
        return self._blobs.path(self.output(output_id).sha256).read_bytes()

    def wait(self, job_id: str, timeout: float | None = None) -> Job:
        """Block until the job is terminal; raise ``JobError`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.events(job_id) as sub:
            while True:
                job = self.get(job_id)
                if job.status.terminal:
                    return job
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise JobError(f"job {job_id} still {job.status.value} after {timeout}s")
                sub.get(timeout=min(left, 1.0) if left is not None else 1.0)

    def events(self, job_id: str, *, after: int | None = None) -> Subscription:
        """Subscribe to a job's events: a snapshot of its state first, then changes.

        ``JobNotFound`` for an unknown id: the snapshot's own read says so (a resume,
        which takes no snapshot, reads the job first)."""
        if after is not None:
            self.get(job_id)
        return self._subscribed(job_id, after)

    def _subscribed(self, job_id: str, after: int | None = None) -> Subscription:
        """The bus's subscription to a job, with this orchestrator's snapshot of it."""
        return self._bus.subscribe(job_id, after=after, snapshot=lambda: self._snapshot(job_id))

    async def aevents(self, job_id: str, *, after: int | None = None
                      ) -> AsyncIterator[BaseModel]:
        """``events`` for asyncio code: the same events, ending after ``finished``.

        Waits on the event loop (``Subscription.aget``); only the subscription itself,
        which reads the store once, runs in a worker thread.
        """
        with await asyncio.to_thread(self.events, job_id, after=after) as sub:
            while True:
                event = await sub.aget(1.0)
                if event is None:
                    if sub.closed:
                        return
                    continue
                yield event
                if isinstance(event, Finished) or (
                        isinstance(event, Snapshot) and JobStatus(event.status).terminal):
                    return

    def _snapshot(self, job_id: str) -> Snapshot:
        """The job, its outputs and queue positions, read in one transaction."""
        return self._snapshot_view(self._store.job_view(job_id))

    def _snapshot_view(self, view: JobView) -> Snapshot:
        """The job's outputs are those its items list, plus any recorded but not yet listed
        on its item: an output event goes out before the item's success writes its ids, and
        a subscriber who arrives in between must still learn the output."""
        job = view.job
        return Snapshot(
            job_id=job.id, status=job.status.value,
            progress=self._pool.ctx.progress.get(job),
            items=[{"index": i.index, "status": i.status.value, "node": i.node, "seed": i.seed,
                    "error": i.error.message if i.error else None,
                    "queue_position": view.positions.get(i.id)} for i in job.items],
            outputs=[oid for i in job.items for oid in i.output_ids] + view.unlisted_outputs,
        )

    # --- changing ----------------------------------------------------------------------

    def cancel(self, job_id: str) -> Job:
        """Cancel: queued items never run; items on a node are removed or interrupted there."""
        job = self._store.request_cancel(job_id)
        for item in job.items:
            if item.status.on_node:
                self._pool.cancel_item(item)
        job = self.get(job_id)
        publish_if_finished(self._bus, job)
        return job

    def retry(self, job_id: str) -> JobHandle:
        """Run a finished job's failed and canceled items again; they fail at once, with
        the reason, when no node of the pool can run them."""
        job = self._store.retry_job(job_id)
        self._pool.fail_unrunnable(job)
        self._pool.wake(priority=job.spec.priority)
        return JobHandle(self, job_id)

    def regenerate(self, output_id: str, seed: int | None = None, *,
                   owner: str | None = None) -> JobHandle:
        """Run the output's workflow again with the same values: new seed, or ``seed``.

        A job submitted as a raw graph runs again with its seed inputs (``seeds``) set to
        the new seed, which its values record; ``WorkflowFormatError`` when it has none,
        since it would make the same image.
        """
        record = self.output(output_id)
        job = self.get(record.job_id)
        values = dict(record.values)
        values["seed"] = RANDOM_SEED if seed is None else seed
        graph = None
        if job.spec.workflow is None and job.spec.graph is not None:
            with self._rng_lock:
                values["seed"] = seed_for(values["seed"], 0, self._rng)
            graph = reseeded(job.spec.graph, self.object_info(), values["seed"],
                             source=f"the graph of job {job.id}")
        return self.submit(
            job.spec.workflow, values, graph=graph,
            owner=owner or job.spec.owner, character=job.spec.character,
            conversation=job.spec.conversation, visibility=job.spec.visibility,
            priority=job.spec.priority,
            images={k: StoredImage(v) for k, v in job.spec.images.items()},
        )

    # --- nodes -------------------------------------------------------------------------

    def add_node(self, url: str, *, name: str = "", tags: Sequence[str] = (),
                 max_in_flight: int | None = None) -> NodeInfo:
        config = node_config(url)
        config = config.model_copy(update={"name": name or config.name, "tags": list(tags),
                                           **({"max_in_flight": max_in_flight}
                                              if max_in_flight else {})})
        self._pool.add(config)
        return next(n for n in self._pool.nodes() if n.name == config.name)

    def remove_node(self, name: str) -> None:
        self._pool.remove(name)

    def drain_node(self, name: str, draining: bool = True) -> None:
        self._pool.drain(name, draining)

    def nodes(self) -> builtins.list[NodeInfo]:
        return self._pool.nodes()

    def object_info(self) -> dict[str, Any]:
        """The pool's merged ``/object_info`` (every class some node has)."""
        return self._pool.object_info()

    def preflight(self, graph: Mapping[str, Any], *, source: str = "prompt") -> None:
        """Check a raw graph against the pool's merged ``/object_info``.

        Raises ``GraphRejected`` naming each node and input at fault (unknown class, missing
        input, value out of range, model not installed). Does nothing while no node has
        answered yet: the graph then waits for one.
        """
        info = self.object_info()
        if info:
            raise_for_problems(check_against_object_info(dict(graph), info), source=source)

    # --- job state for the faces: progress, recent events, retention, pool counts ---------

    def progress_of(self, job: Job) -> float:
        """``progress`` of a job already read: 0..1 over all its items and whole graphs,
        never decreasing while it runs."""
        return self._pool.ctx.progress.get(job)

    def latest_event(self, job_id: str, kind: type[EventT]) -> EventT | None:
        """The newest event of ``kind`` still kept for the job, or None.

        The kept history is bounded and holds nothing from before this process, so a
        face uses this only to show a late client the last progress step or preview.
        """
        for event in reversed(self._bus.history(job_id)):
            if isinstance(event, kind):
                return event
        return None

    def expiry_of(self, job: Job) -> datetime | None:
        """When the retention sweep may delete ``job``; None when jobs are kept."""
        return expires_at(job.created_at, self._retention)

    def pool_counts(self) -> PoolCounts:
        """Nodes up (and of those, draining), nodes known and items waiting for a node."""
        nodes = self._pool.nodes()
        up = [n for n in nodes if n.health == NodeHealth.UP]
        return PoolCounts(nodes_up=len(up), nodes_total=len(nodes),
                          queued=self._store.queued_count(),
                          nodes_draining=sum(n.draining for n in up))

    # --- access: one rule of who may read and act, for every face -----------------------

    def job_for(self, who: Principal, job_id: str, *, what: str = "job") -> Job:
        """The job, if ``who`` may read it; ``JobNotFound`` (naming ``what``) otherwise,
        exactly as for an id that does not exist."""
        job = self.get(job_id)
        if not access.can_read_job(who, job):
            raise JobNotFound(job_id, what=what)
        return job

    def jobs_for(self, who: Principal, *, owner: str | None = None,
                 **filters: Any) -> JobPage:
        """A page of the jobs ``who`` may see, newest first: their own, or any owner's
        (``owner``, None: all) for an admin. ``AccessDenied`` when another owner is
        asked for without an admin token. ``filters`` as for ``list``."""
        return self.list(owner=access.listing_owner(who, owner), **filters)

    def output_for(self, who: Principal, output_id: str) -> OutputRecord:
        """The output record, if ``who`` may read it (theirs, public, or an admin's
        caller); ``JobNotFound`` (what="output") otherwise."""
        record = self.output(output_id)
        if not access.can_read_output(who, record):
            raise JobNotFound(output_id, what="output")
        return self._shown(who, record)

    def outputs_for(self, who: Principal, *, owner: str | None = None,
                    job_id: str | None = None, character: str | None = None,
                    conversation: str | None = None, workflow: str | None = None,
                    limit: int = 50, cursor: str | None = None) -> OutputPage:
        """A page of the outputs ``who`` may read that match every filter given."""
        return self._shown_page(who, self._store.list_outputs(
            owner=owner, job_id=job_id, character=character, conversation=conversation,
            workflow=workflow, visible_to=access.output_viewer(who), limit=limit,
            cursor=cursor))

    def gallery_for(self, who: Principal, *, character: str | None = None,
                    conversation: str | None = None, limit: int = 50,
                    cursor: str | None = None) -> OutputPage:
        """A character's public gallery, or the conversation's outputs ``who`` may see
        (every owner's for an admin)."""
        if character is not None:
            page = self.gallery(character=character, limit=limit, cursor=cursor)
        else:
            page = self.gallery(conversation=conversation, owner=access.output_viewer(who),
                                limit=limit, cursor=cursor)
        return self._shown_page(who, page)

    def cancel_for(self, who: Principal, job_id: str) -> Job:
        """``cancel``, if ``who`` may act on the job; ``JobNotFound`` otherwise."""
        self._acted_on(who, job_id)
        return self.cancel(job_id)

    def retry_for(self, who: Principal, job_id: str) -> JobHandle:
        """``retry``, if ``who`` may act on the job; ``JobNotFound`` otherwise."""
        self._acted_on(who, job_id)
        return self.retry(job_id)

    def delete_output(self, who: Principal, output_id: str) -> None:
        """Delete the output record, if ``who`` may (its owner or an admin; a public
        output reads, but does not delete, like another's: ``JobNotFound``). Its bytes go
        too unless something else still names them (``JobStore.blob_in_use``)."""
        record = self.output_for(who, output_id)
        if not access.can_delete_output(who, record):
            raise JobNotFound(output_id, what="output")
        self._store.delete_output(record.id)
        self._release_unreferenced(record.sha256)

    def _acted_on(self, who: Principal, job_id: str) -> Job:
        job = self.get(job_id)
        if not access.can_act_on_job(who, job):
            raise JobNotFound(job_id)
        return job

    # --- admission: what a face submits, checked in one order --------------------------

    def admit(self, request: Admission) -> JobHandle:
        """Check ``request`` (shape, input files, pre-flight, queue bound, in that order;
        see ``orchestrator.admission``) and record its job. Raises the first refusal:
        ``WorkflowFormatError``, ``GraphRejected``, ``QueueFull``, ``SubstitutionError``,
        ``IdempotencyKeyReused``; nothing is recorded then."""
        self._check_open()
        return admission.admit(request, _AdmissionDoor(self))

    # --- following a job: the one event stream every face translates -------------------

    async def follow(self, job_id: str, after: int | None = None, *,
                     keepalive: float | None = None
                     ) -> AsyncGenerator[BaseModel | None, None]:
        """A job's events for asyncio code, ending after its terminal event.

        A snapshot of the job comes first, unless ``after`` (the ``seq`` of the last
        event a client saw) is still held by the bus: then every later event is replayed
        instead, so nothing in between is lost. An ``after`` from another process, or
        past the job's last event, starts with a snapshot; a job that had ended ends the
        stream with it. With ``keepalive``, ``None`` is yielded after each ``keepalive``
        seconds without an event (for a face's keep-alive); the stream also ends when
        this orchestrator closes. ``JobNotFound`` for an unknown id.
        """
        sub = await asyncio.to_thread(self._subscription, job_id, after)
        with sub:
            async for event in _until_end(sub, keepalive, lambda: self._closed):
                yield event

    def _subscription(self, job_id: str, after: int | None) -> Subscription:
        if self._replays(job_id, after, lambda: self.get(job_id)):
            return self._subscribed(job_id, after)  # the job was read: it exists
        return self.events(job_id)

    def _replays(self, job_id: str, after: int | None, read: Callable[[], Job]) -> bool:
        """Whether a stream whose client saw event ``after`` replays the bus from there
        rather than starting with a snapshot: only while the bus still holds ``after``,
        and not when ``after`` was the end of a job that has ended (nothing newer will
        come). ``read`` (the job, as the caller may see it) is called whenever ``after`` is
        held, so a caller's access check runs on every replay."""
        last = self._bus.last_seq(job_id)
        if after is None or after > last:
            return False
        job = read()
        return after < last or not job.status.terminal

    # --- outputs for a caller: bytes, thumbnails, regenerate --------------------------

    def output_file(self, who: Principal, record: OutputRecord) -> OutputFile:
        """Where the bytes of ``record`` (read through ``output_for``) are, as ``who``
        gets them: the owner the file as ComfyUI wrote it, anyone else (an admin too) a
        copy without the graph ComfyUI embeds. ``JobNotFound`` when the bytes are gone."""
        public = self.gets_public_copy(who, record)
        path = (self._blobs.public_copy(record.sha256, record.mime) if public
                else self._blobs.path(record.sha256))
        if not path.is_file():
            raise JobNotFound(record.id, what="output")
        return OutputFile(record, path, public)

    @staticmethod
    def gets_public_copy(who: Principal, record: OutputRecord) -> bool:
        """Whether ``who`` gets the copy of ``record``'s bytes without the graph ComfyUI
        embeds (anyone but its owner, for formats that carry one): an ETag can say which
        before the copy is made."""
        return not access.sees_inputs(who, record) and embedded.strippable(record.mime)

    def output_thumbnail(self, record: OutputRecord, size: int) -> Path:
        """A thumbnail of ``record`` (read through ``output_for``), longest side ``size``;
        ``JobNotFound`` (what="thumbnail of output") for an output that is not an image."""
        path = self._blobs.thumbnail(record.sha256, size)
        if path is None:
            raise JobNotFound(record.id, what="thumbnail of output")
        return path

    def regenerate_for(self, who: Principal, output_id: str, seed: int | None = None, *,
                       bound: QueueBound | None = None) -> JobHandle:
        """``regenerate`` as a new job of ``who``'s, within the queue ``bound``.

        Another owner's (public) output is regenerated from its workflow and values
        only: ``InputsNotShared`` when it was made from their input images or their own
        graph, which stay theirs as they do in the output's served bytes.
        """
        record = self.output_for(who, output_id)
        job = self.get(record.job_id)
        images = frozenset(job.spec.images) | (frozenset(job.spec.values) & frozenset(
            library.image_placeholders(self._registry, job.spec.workflow)))
        private = access.may_regenerate_with(who, record, job.spec.graph is not None, images)
        if private:
            raise InputsNotShared(record.id, record.owner, private, job.spec.workflow)
        with self._store.exclusive(ADMISSION_LOCK):  # the count and the insert, as one
            if bound is not None:
                admission.check_room(_AdmissionDoor(self), who.owner, job.spec.count, bound)
            return self.regenerate(record.id, seed, owner=who.owner)

    def _shown(self, who: Principal, record: OutputRecord) -> OutputRecord:
        """``record`` as ``who`` may see it: another owner's without the image values (an
        avatar sent as base64 text) that made it; prompts and settings stay."""
        if access.sees_inputs(who, record):
            return record
        images = library.image_placeholders(self._registry, record.workflow)
        return record.model_copy(update={"values": {
            name: value for name, value in record.values.items() if name not in images}})

    def _shown_page(self, who: Principal, page: OutputPage) -> OutputPage:
        return page.model_copy(update={"outputs": [self._shown(who, r) for r in page.outputs]})

    # --- workflows: list, read, check, put, delete (the folder's files, written here) ---

    def workflows(self, who: Principal) -> builtins.list[WorkflowFacts]:
        """Every workflow, loaded or not; server paths in errors for admins only."""
        return library.Library(self._registry).list(full_paths=who.admin)

    def workflow(self, who: Principal, name: str) -> WorkflowFacts:
        """One workflow with its graph, metadata and presence list (``WorkflowNotFound``)."""
        return library.Library(self._registry).read(name, full_paths=who.admin)

    def workflow_preview(self, name: str) -> Path:
        """The workflow's preview image file (``NotFound`` when it has none)."""
        return library.Library(self._registry).preview(name)

    @staticmethod
    def workflow_name_problem(name: str) -> tuple[str, str] | None:
        """Why ``name`` cannot name a workflow, with the file it would have; None: it can."""
        return library.Library.name_problem(name)

    def check_workflow(self, name: str, graph_text: str,
                       meta_text: str | None) -> CheckReport:
        """What storing the workflow would meet, and what the pool says; writes nothing."""
        return library.Library(self._registry).check(name, graph_text, meta_text,
                                                    self.object_info())

    def put_workflow(self, name: str, graph_text: str, meta_text: str | None) -> bool:
        """Store the workflow once it loads as a dropped file would (else
        ``WorkflowFormatError``, nothing written); True when it is new. The registry has
        reloaded it when this returns."""
        return library.Library(self._registry).put(name, graph_text, meta_text)

    def delete_workflow(self, name: str) -> None:
        """Delete the workflow's files (``WorkflowNotFound`` when it has none)."""
        library.Library(self._registry).delete(name)

    # --- nodes by name ---------------------------------------------------------------

    def node(self, name: str) -> NodeInfo:
        """The node of the pool named ``name``; ``NotFound("node", name)`` otherwise."""
        found = next((n for n in self.nodes() if n.name == name), None)
        if found is None:
            raise NotFound("node", name)
        return found

    # --- ComfyUI gateway: node facts, ComfyUI's own checks, a refused prompt --------------

    def node_facts(self, name: str) -> NodeFacts | None:
        """A node's ``/system_stats`` and feature flags as it last answered; None when it
        left the pool."""
        return nodefacts.facts(self._pool, name)

    def models(self, folder: str | None = None) -> builtins.list[str] | None:
        """Model folders (``folder`` None) or one folder's files, merged over the healthy
        nodes; None when no node has that folder."""
        return nodefacts.models(self._pool, folder)

    def node_history(self, job: Job) -> dict[str, Any] | None:
        """The node's own ``/history`` entry of a finished single-item job (every UI key,
        the cached nodes); None when the node forgot it or is gone."""
        return nodefacts.history_entry(self._pool, job)

    def job_exists(self, job_id: str) -> bool:
        """Whether a job with this id is recorded (a client-chosen prompt id is taken),
        asked of the store without loading the job."""
        return self._store.job_exists(job_id)

    def capable_node_free(self, graph: Mapping[str, Any]) -> bool:
        """Whether a node that can run ``graph`` has room now (it would start at once)."""
        return nodefacts.capable_node_free(self._pool, graph)

    def check_as_comfyui(self, graph: Mapping[str, Any], inputs: Iterable[str] = (), *,
                         waive: frozenset[str] = frozenset()) -> None:
        """``GraphRejected`` for what ComfyUI's own validation refuses in ``graph`` against
        the pool's ``/object_info``, and nothing stricter; values naming ``inputs`` (input
        files) pass as files uploaded at dispatch, problems of a type in ``waive`` are left
        to the node. Nothing is judged while no node has answered."""
        info = self.object_info()
        if not info:
            return
        problems = check_against_object_info(dict(graph), info, as_comfyui=True,
                                             inputs=frozenset(inputs))
        raise_for_problems([p for p in problems if p.code not in waive], source="prompt")

    def replay_after(self) -> int:
        """An ``after`` for ``events`` and ``follow`` that replays every event this process
        holds for a job: for a job just submitted, nothing it went through is missed."""
        return self._bus.seq_base

    @property
    def closed(self) -> bool:
        """Whether ``close`` was called (streams of this orchestrator end)."""
        return self._closed

    def delete_job(self, who: Principal, job_id: str) -> bool:
        """Delete a finished job ``who`` may act on, with its outputs, as if it never was
        (a prompt its node refused: ComfyUI keeps no trace of a 400); False while it has
        not ended. ``JobNotFound`` for a job ``who`` may not act on."""
        job = self._acted_on(who, job_id)
        outputs = self.outputs_of(job_id)
        if not self._store.delete_finished_job(job_id):
            return False
        for sha256 in sorted(freed_blobs(job, outputs)):
            self._release_unreferenced(sha256)
        return True

    # --- input files: what an owner gave us, by name and by hash (orchestrator.inputs) ---

    def put_input(self, who: Principal, data: bytes, *, path: str | None, content_type: str,
                  folder: str = "input", tags: Iterable[str] = (),
                  expires_in: float | None = None,
                  on_name: OnName = OnName.KEEP) -> StoredInput:
        """Store ``data`` as one of the caller's input files, named ``path`` in ``folder``
        (ComfyUI's ``subfolder/name`` in ``input``, ``temp`` or ``output``).

        Under a name the caller already uses, ``on_name`` decides: keep both (v2 assets),
        take ComfyUI's next free ``name (N).ext`` (``/upload/image``) or replace it
        (``overwrite``). The caller's file of the same bytes under the same name comes
        back as it is (``created`` False); ``new_bytes`` says whether the caller had these
        bytes under any name before. Checking the bytes (size, type) is the face's.
        """
        self._check_open()
        return self._inputs.put(who.owner, data, path=path, content_type=content_type,
                                folder=folder, tags=tags, expires_in=expires_in,
                                on_name=on_name)

    def mint_input(self, who: Principal, blake3: str, *, path: str | None,
                   tags: Iterable[str] = (), expires_in: float | None = None) -> StoredInput:
        """A new input file over bytes the caller stored before, found by their blake3
        (hex), named ``path`` (None: the name they had). ``NotFound("input file", ...)``
        when the caller has no such bytes (others' files do not count)."""
        source = self.input_by_hash(who, blake3=blake3)
        stored = None if source is None else self._inputs.mint(
            source, path=path, tags=tags, expires_in=expires_in)
        if stored is None:
            raise NotFound("input file", f"blake3:{blake3}")
        return stored

    def input_file(self, who: Principal, file_id: str) -> InputFile:
        """The caller's input file with that id; ``NotFound("input file", id)`` for an
        unknown, expired or another owner's id alike."""
        found = self._store.input_file(who.owner, file_id)
        if found is None:
            raise NotFound("input file", file_id)
        return found

    def input_named(self, who: Principal, path: str, *, folder: str = "input") -> InputFile:
        """The caller's newest input file under that name; ``NotFound("file", path)``."""
        found = self._store.input_file_named(who.owner, path, folder=folder)
        if found is None:
            raise NotFound("file", path)
        return found

    def inputs_named(self, who: Principal, paths: Iterable[str], *,
                     folder: str = "input") -> dict[str, InputFile]:
        """``{path: file}`` for each of ``paths`` the caller has an input file under (the
        names a graph uses; the others are left out)."""
        return self._store.input_files_named(who.owner, paths, folder=folder)

    def input_by_hash(self, who: Principal, *, sha256: str | None = None,
                      blake3: str | None = None) -> InputFile | None:
        """The caller's newest input file whose bytes have that hash (hex) and are still
        stored, or None."""
        found = self._store.input_file_by_hash(who.owner, sha256=sha256, blake3=blake3)
        return found if found is not None and self._blobs.exists(found.sha256) else None

    def list_inputs(self, who: Principal, *, limit: int = 50,
                    cursor: str | None = None) -> InputPage:
        """The caller's input files, newest first, a page at a time."""
        return self._store.list_input_files(who.owner, limit=limit, cursor=cursor)

    def delete_input(self, who: Principal, file_id: str) -> InputFile:
        """Delete the caller's input file, and its bytes unless another record names
        them; the file that went. ``NotFound("input file", id)`` as ``input_file``."""
        gone = self._inputs.delete(who.owner, file_id)
        if gone is None:
            raise NotFound("input file", file_id)
        return gone

    def input_path(self, file: InputFile) -> Path:
        """Where an input file's bytes are (read them, stream them); the file comes from
        one of the methods above, which checked the caller."""
        return self._blobs.path(file.sha256)

    def sweep_inputs(self) -> int:
        """Delete expired input files now (and bytes nothing else names); how many went.
        Storing a file runs this on its own at most once a minute."""
        return self._inputs.sweep()

    def claim_key(self, who: Principal, key: str, job_id: str) -> bool:
        """Claim a single-use idempotency key for a job about to be made (Comfy API v2:
        a key refuses any second use for 24 h); False when the key was used."""
        return self._store.claim_key(who.owner, key, job_id)

    def release_key(self, who: Principal, key: str, job_id: str) -> None:
        """Forget ``claim_key(who, key, job_id)``: the submit definitely failed."""
        self._store.release_key(who.owner, key, job_id)

    def key_job(self, who: Principal, key: str) -> str | None:
        """The job a key the caller used in the last 24 h names, or None."""
        return self._store.key_job(who.owner, key)

    def next_queue_number(self) -> int:
        """The next ComfyUI queue ``number`` (0, 1, 2, ... over the database's life)."""
        return self._store.next_count("prompt")

    @staticmethod
    def sniff_mime(data: bytes) -> str | None:
        """The mime type the first bytes of ``data`` announce, or None: a face checks an
        upload's declared type with it before storing anything."""
        return sniff_mime(data)

    # --- API tokens ------------------------------------------------------------------------

    def token_store(self) -> TokenStore:
        """The API tokens in this orchestrator's own database (one connection, closed with
        it): what a web service authenticates its callers with."""
        return self._tokens

    # --- request rates shared by replicas ------------------------------------------------

    def take_rate(self, key: str, amount: float, *, per_minute: float,
                  burst: int) -> float | None:
        """Draw ``amount`` from ``key``'s bucket shared by every replica on the database;
        the seconds to wait (0: go ahead), or None when this process is the only one on
        its database, whose faces meter in memory (no database round trip a request)."""
        if not self._store.replicated:
            return None
        return self._store.take_rate(key, amount, Rate(per_minute=per_minute, burst=burst))

    # --- face hot paths ---------------------------------------------------------------
    # What the HTTP faces call once per request, from one worker thread each: one call
    # that answers everything a handler needs, so a request costs one thread hop and
    # reads the job once.

    def admit_read(self, request: Admission) -> tuple[JobHandle, Job]:
        """``admit``, and the job as recorded: what a face answers a submit with, without
        reading the job back (read again only when the submit changed it, e.g. failed it as
        unrunnable)."""
        handle = self.admit(request)
        return handle, handle.recorded if handle.recorded is not None else handle.get()

    def follow_for(self, who: Principal, job_id: str, after: int | None = None, *,
                   keepalive: float | None = None) -> Following:
        """``follow`` for a caller, opened now: blocking (call it from a worker thread), so
        ``JobNotFound`` (an unknown id, or a job ``who`` may not read, alike) is raised before
        a face starts its answer. The snapshot a fresh stream starts with is the one read of
        the job, and the access check reads that same job."""
        self._check_open()
        if self._replays(job_id, after, lambda: self.job_for(who, job_id)):
            return Following(self._subscribed(job_id, after), keepalive, lambda: self._closed)
        sub, view = self._subscribe_as(who, job_id)
        return Following(sub, keepalive, lambda: self._closed, view=view)

    def job_view(self, job_id: str) -> JobView:
        """The job, its outputs' ids (those its items list and any recorded but not listed
        yet) and its queued items' positions, in one transaction: what a stream's end
        needs, read once. ``JobNotFound`` for an unknown id."""
        return self._store.job_view(job_id)

    def replay_recorded(self, job_id: str) -> Subscription | None:
        """Every event this process holds for a job it just recorded (a face's own submit),
        then each new one: the bus alone, no read of the store, so it may be called on the
        event loop. None when none is held (the job ended and its events were forgotten):
        the caller then uses ``events`` or ``follow``, which read the job."""
        after = self._bus.seq_base
        if self._bus.last_seq(job_id) <= after:
            return None
        return self._bus.subscribe(job_id, after=after)

    def follow_recorded(self, job_id: str) -> Following | None:
        """``replay_recorded`` as a stream for asyncio code, ending after the job's end
        (or when this orchestrator closes); None as for ``replay_recorded``."""
        sub = self.replay_recorded(job_id)
        return None if sub is None else Following(sub, None, lambda: self._closed)

    def _subscribe_as(self, who: Principal, job_id: str
                      ) -> tuple[Subscription, JobView | None]:
        """A subscription whose snapshot is one read of the store (the job with its
        outputs and queue positions), which the caller's access check also looks at, and
        that read (None when the bus answered without one); ``JobNotFound`` (and nothing
        subscribed) when the job is missing or not theirs."""
        refused: builtins.list[JobNotFound] = []
        read: builtins.list[JobView] = []

        def snapshot() -> Snapshot | None:
            try:
                view = self._store.job_view(job_id)
            except JobNotFound:
                view = None
            if view is None or not access.can_read_job(who, view.job):
                refused.append(JobNotFound(job_id))
                return None
            read.append(view)
            return self._snapshot_view(view)

        sub = self._bus.subscribe(job_id, snapshot=snapshot)
        if refused:
            sub.close()
            raise refused[0]
        return sub, read[0] if read else None

    # --- lifecycle ---------------------------------------------------------------------

    def recover(self) -> int:
        """Reconcile items left on nodes by a previous process (see ``NodePool.recover``)."""
        self._pool.check_health()
        return self._pool.recover()

    def _check_open(self) -> None:
        if self._closed:
            raise OrchestratorError("this Orchestrator was closed; open a new one")

    def expire_jobs(self) -> int:
        """Delete the finished jobs past the retention now, with their outputs; how many
        went (0 when jobs are kept). The sweep does this on its own every few minutes."""
        return 0 if self._sweep is None else self._sweep.run_once()

    def _release_unreferenced(self, sha256: str) -> bool:
        """Delete the blob unless a record names it: the store decides, in one query over
        outputs, jobs' inputs and input files (``JobStore.blob_in_use``)."""
        return self._blobs.release(sha256, lambda: not self._store.blob_in_use(sha256))

    def close(self) -> None:
        """Stop workers (items on nodes stay recorded for the next process) and close."""
        if self._closed:
            return
        self._closed = True
        if self._sweep is not None:
            self._sweep.close()
        self._pool.close()
        if isinstance(self._bus, RelayedBus):
            self._bus.close()
        if self._registry is not None:
            self._registry.close()
        self._store.close()

    def __enter__(self) -> Orchestrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Following:
    """A job's events for one client over a subscription already open (``follow_for``):
    as ``follow``, ending after the job's terminal event, ``None`` after each quiet
    ``keepalive``. ``aclose`` releases the subscription, even before the first event (a
    client that left before its stream started holds nothing). ``view``: the store's read
    its first snapshot was made from, for a face's first frames without a second read."""

    def __init__(self, sub: Subscription, keepalive: float | None,
                 closed: Callable[[], bool], *, view: JobView | None = None) -> None:
        self.sub = sub
        self.view = view
        self._events = _until_end(sub, keepalive, closed)

    def __aiter__(self) -> Following:
        return self

    async def __anext__(self) -> BaseModel | None:
        try:
            return await self._events.__anext__()
        except BaseException:
            self.sub.close()
            raise

    async def aclose(self) -> None:
        self.sub.close()
        await self._events.aclose()


# --- admission and following: helpers of the façade sections above ---------------------


@dataclass(frozen=True)
class _AdmissionDoor:
    """The façade as ``admission.Door``: what admission reads, and how it records."""

    orch: Orchestrator

    def object_info(self) -> dict[str, Any]:
        return self.orch.object_info()

    def queued_count(self, owner: str | None = None) -> int:
        return self.orch.queued_count(owner)

    def exclusive(self) -> contextlib.AbstractContextManager[object]:
        return self.orch._store.exclusive(ADMISSION_LOCK)  # across every replica

    def record(self, admitted: Admitted) -> JobHandle:
        req = admitted.request
        images: dict[str, ImageInput] = {name: StoredImage(sha)
                                         for name, sha in admitted.inputs.items()}
        images.update(req.images)
        return self.orch.submit(
            req.workflow, req.values, graph=admitted.graph, count=req.count,
            owner=req.owner, character=req.character, conversation=req.conversation,
            visibility=req.visibility, priority=req.priority, images=images or None,
            metadata=req.metadata, idempotency_key=req.idempotency_key, job_id=req.job_id,
            extra_data=req.extra_data)


def _ends(event: BaseModel) -> bool:
    """After this event nothing more comes for the job."""
    if isinstance(event, Finished):
        return True
    return isinstance(event, Snapshot) and JobStatus(event.status).terminal


async def _until_end(sub: Subscription, keepalive: float | None,
                     closed: Callable[[], bool]) -> AsyncGenerator[BaseModel | None, None]:
    """``sub``'s events up to the job's last; ``None`` after each quiet ``keepalive``."""
    while True:
        event = await sub.aget(keepalive if keepalive is not None else 1.0)
        if event is None:
            if sub.closed or closed():
                return
            if keepalive is not None:
                yield None
            continue
        yield event
        if _ends(event):
            return


@dataclass(frozen=True)
class OutputFile:
    """An output's bytes as one caller gets them: ``public`` when they are the copy
    without the graph ComfyUI embeds (anyone but the owner, for formats that carry one)."""

    record: OutputRecord
    path: Path
    public: bool
