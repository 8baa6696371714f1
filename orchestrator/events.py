"""The orchestrator's own job events and their fan-out to subscribers.

Events are typed pydantic models, numbered per job (``seq``) so a stream can resume
after a reconnect (SSE ``Last-Event-ID``). The bus keeps each job's recent events in
memory; a subscriber that arrives late first gets a snapshot of the job's current state
(built by the caller from the store, which is the truth), then everything newer.

Progress and preview events are high-volume and ephemeral; state changes are also in the
store, so nothing durable depends on this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from orchestrator.jobs import utcnow

# How many events per job are kept for resume; progress is thinned by the runner already.
JOB_HISTORY_LIMIT = 2000
# Jobs whose events are kept after they ended (for late subscribers and resume).
ENDED_JOBS_KEPT = 1000


class _Event(BaseModel):
    job_id: str
    seq: int = 0
    at: datetime = Field(default_factory=utcnow)


class Snapshot(_Event):
    """The job's state when a subscriber connected (not stored in history)."""

    type: Literal["snapshot"] = "snapshot"
    status: str
    progress: float
    items: list[dict[str, Any]]
    outputs: list[str] = Field(default_factory=list)


class Queued(_Event):
    type: Literal["queued"] = "queued"
    count: int


class Dispatched(_Event):
    type: Literal["dispatched"] = "dispatched"
    item: int
    node: str
    prompt_id: str
    attempt: int


class Started(_Event):
    type: Literal["started"] = "started"
    item: int
    node: str


class ProgressEvent(_Event):
    """Per-step progress: ``fraction`` is the whole job (all items, whole graphs)."""

    type: Literal["progress"] = "progress"
    item: int
    node: str
    node_id: str | None
    class_type: str | None
    value: int | None
    max: int | None
    item_fraction: float
    fraction: float
    nodes_done: int = 0   # of this item's graph (cached nodes count as done)
    nodes_total: int = 0  # every node of the graph, not only those seen so far


class PreviewEvent(_Event):
    type: Literal["preview"] = "preview"
    item: int
    mime: str
    image: bytes = Field(repr=False)


class OutputEvent(_Event):
    type: Literal["output"] = "output"
    item: int
    output_id: str
    node_id: str
    mime: str
    filename: str


class ItemFailed(_Event):
    type: Literal["item_failed"] = "item_failed"
    item: int
    node: str | None
    message: str
    will_retry: bool
    # The node's own 400 body when its ``POST /prompt`` refused the graph, for a front end
    # that answers as ComfyUI would (the gateway); kept out of the event's wire form.
    rejection: dict[str, Any] | None = Field(default=None, exclude=True)


class Finished(_Event):
    """The job reached a terminal status (succeeded, partially_failed, failed, canceled)."""

    type: Literal["finished"] = "finished"
    status: str
    error: str | None = None


JobEvent = Annotated[
    Snapshot | Queued | Dispatched | Started | ProgressEvent | PreviewEvent | OutputEvent
    | ItemFailed | Finished,
    Field(discriminator="type"),
]


class Subscription:
    """One job's events, for threads (``get``, iteration) or asyncio code (``aget``);
    ``close()`` (or leaving ``with``) unsubscribes."""

    def __init__(self, bus: EventBus, job_id: str) -> None:
        self.bus = bus
        self.job_id = job_id
        self.queue: queue.Queue[BaseModel | None] = queue.Queue()
        self.closed = False
        # Set while a coroutine waits in ``aget``: called after every put.
        self._waker: Callable[[], None] | None = None

    def put(self, event: BaseModel | None) -> None:
        """Hand over one event (None: closed), waking an asyncio waiter if there is one."""
        self.queue.put(event)
        waker = self._waker
        if waker is not None:
            waker()

    def get(self, timeout: float | None = None) -> BaseModel | None:
        """The next event, or None on timeout or after close."""
        try:
            return self.queue.get(timeout=timeout)
        except queue.Empty:
            return None

    async def aget(self, timeout: float | None = None) -> BaseModel | None:
        """``get`` for asyncio code: the wait is on the event loop itself.

        Waiting in a worker thread instead costs two thread hops per event; on a busy
        machine each can take milliseconds, and a stream makes several per job. The wait
        is a bare future and a timer, not ``wait_for`` (which makes a task per event).
        """
        with contextlib.suppress(queue.Empty):
            return self.queue.get_nowait()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        waiter: asyncio.Future[None] | None = None

        def wake() -> None:
            if waiter is not None:
                with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                    loop.call_soon_threadsafe(_resolve, waiter)

        self._waker = wake
        try:
            # Armed before looking: an event put in between wakes us or is seen here.
            while self.queue.empty() and not self.closed:
                waiter = loop.create_future()
                if deadline is None:
                    await waiter
                    continue
                if deadline <= loop.time():
                    return None
                timer = loop.call_at(deadline, _resolve, waiter)
                try:
                    await waiter
                finally:
                    timer.cancel()
        finally:
            self._waker = None
        try:
            return self.queue.get_nowait()
        except queue.Empty:
            return None

    def __iter__(self) -> Iterator[BaseModel]:
        while not self.closed:
            event = self.queue.get()
            if event is None:
                return
            yield event
            if isinstance(event, Finished):
                return

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.bus._unsubscribe(self)
            self.put(None)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class EventBus:
    """Thread-safe per-job fan-out with bounded history for resume.

    Sequence numbers start above ``seq_base``. The service passes a base derived from the
    start time, so ids of a later process are always higher than an earlier one's and a
    ``Last-Event-ID`` from before a restart is recognised as stale (the client then gets
    a snapshot instead of a replay that would skip what happened in between).
    """

    def __init__(self, *, seq_base: int = 0) -> None:
        self.seq_base = seq_base
        self._lock = threading.Lock()
        self._history: dict[str, deque[BaseModel]] = {}
        self._seq: dict[str, int] = {}
        self._subs: dict[str, list[Subscription]] = {}
        self._ended: deque[str] = deque()

    def publish(self, event: _Event) -> _Event:
        """Number ``event`` within its job, keep it, and hand it to every subscriber."""
        with self._lock:
            seq = self._seq.get(event.job_id, self.seq_base) + 1
            self._seq[event.job_id] = seq
            event.seq = seq
            self._history.setdefault(event.job_id, deque(maxlen=JOB_HISTORY_LIMIT)).append(event)
            subs = list(self._subs.get(event.job_id, ()))
            if isinstance(event, Finished):
                self._remember_ended(event.job_id)
        for sub in subs:
            sub.put(event)
        return event

    def _remember_ended(self, job_id: str) -> None:
        self._ended.append(job_id)
        while len(self._ended) > ENDED_JOBS_KEPT:
            old = self._ended.popleft()
            if not self._subs.get(old):
                self._history.pop(old, None)
                self._seq.pop(old, None)

    def subscribe(self, job_id: str, *, after: int | None = None,
                  snapshot: Callable[[], Snapshot | None] | None = None) -> Subscription:
        """Subscribe to ``job_id``: first a snapshot (when given), then events.

        ``snapshot`` is called under the bus lock: publishers commit to the store before
        publishing, so no event can fall between the snapshot and the first delivery
        (at worst one is seen twice). With ``after`` (a resume), the kept events numbered
        above it are replayed instead, so nothing in between is lost. What ``snapshot``
        raises reaches the caller, with nothing subscribed.
        """
        sub = Subscription(self, job_id)
        if after is not None and after < self.seq_base:
            after = None  # an id from an earlier process: start over with a snapshot
        with self._lock:
            history = list(self._history.get(job_id, ()))
            self._subs.setdefault(job_id, []).append(sub)
            if after is not None:
                for event in history:
                    if getattr(event, "seq", 0) > after:
                        sub.put(event)
            elif snapshot is not None:
                try:
                    snap = snapshot()
                except BaseException:  # the job is missing (or unreadable): nothing stays
                    self._subs[job_id].remove(sub)
                    raise
                if snap is not None:
                    snap.seq = self._seq.get(job_id, self.seq_base)
                    sub.put(snap)
        return sub

    def history(self, job_id: str) -> list[BaseModel]:
        with self._lock:
            return list(self._history.get(job_id, ()))

    def last_seq(self, job_id: str) -> int:
        with self._lock:
            return self._seq.get(job_id, self.seq_base)

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            subs = self._subs.get(sub.job_id, [])
            if sub in subs:
                subs.remove(sub)
