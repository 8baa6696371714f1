"""Which websocket each ComfyUI client listens on, and the relays that feed them.

ComfyUI sends a prompt's messages to the socket of the ``client_id`` that posted it, and a
client that reconnects with the same id replaces its old socket. The hub keeps one socket
per (owner, client id) — two owners choosing the same id never see each other's prompts —
and one relay per posted prompt, a task on the web server's event loop, which follows the
job's events (``Orchestrator.follow``), translates them (``relay.PromptRelay``)
and hands the frames to whichever socket that client has at that moment; with none, they
are dropped, as ComfyUI drops them. Store reads (the queue length in ``status`` frames,
the job at its end) go to a worker thread, so the loop never waits on the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from orchestrator.events import Finished, Queued, Snapshot, Started
from orchestrator.jobs import Job, JobStatus
from orchestrator.outputs import OutputRecord
from orchestrator.service import Following, Orchestrator
from orchestrator.web.gateway.nodehistory import NodeResult, NodeResults
from orchestrator.web.gateway.relay import Frame, PromptRelay, encode_preview

ClientKey = tuple[str, str]  # (owner, client id)
Outgoing = str | bytes | None  # None tells the socket's writer to stop


@dataclass(eq=False)
class Connection:
    """One open socket: its loop and queue of frames to send."""

    key: ClientKey
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Outgoing] = field(default_factory=asyncio.Queue)
    previews_with_metadata: bool = False

    def put(self, item: Outgoing) -> None:
        """Queue ``item`` from any thread; dropped once the server's loop has stopped."""
        if _running_loop() is self.loop:  # a relay on the socket's own loop: no hop
            self.queue.put_nowait(item)
            return
        try:
            self.loop.call_soon_threadsafe(self.queue.put_nowait, item)
        except RuntimeError:
            pass  # the loop is closed: the server stopped and the socket with it


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def queue_remaining(orch: Orchestrator) -> int:
    """ComfyUI's ``queue_remaining``: prompts waiting plus prompts on nodes, pool-wide."""
    return orch.backlog()


class ClientHub:
    """Sockets by client, and the relays of prompts that have not ended yet."""

    def __init__(self, orch: Orchestrator) -> None:
        self.orch = orch
        self._lock = threading.Lock()
        self._sockets: dict[ClientKey, Connection] = {}
        self._relays: dict[ClientKey, dict[str, PromptRelay]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.results = NodeResults(orch)

    # --- sockets -------------------------------------------------------------------------

    def attach(self, conn: Connection) -> None:
        """Make ``conn`` the client's socket; an older one for the same client is told to
        stop (ComfyUI replaces it the same way)."""
        with self._lock:
            old = self._sockets.get(conn.key)
            self._sockets[conn.key] = conn
        if old is not None:
            old.put(None)

    def detach(self, conn: Connection) -> None:
        with self._lock:
            if self._sockets.get(conn.key) is conn:
                del self._sockets[conn.key]

    def resume_frames(self, key: ClientKey) -> list[str]:
        """What a reconnecting client is told about its prompts that run right now."""
        with self._lock:
            relays = list(self._relays.get(key, {}).values())
        return [f for f in (r.current_executing() for r in relays) if f is not None]

    def deliver(self, key: ClientKey, frames: list[Frame]) -> None:
        with self._lock:
            conn = self._sockets.get(key)
        if conn is None:
            return
        for frame in frames:
            conn.put(frame if isinstance(frame, str)
                     else encode_preview(frame, with_metadata=conn.previews_with_metadata))

    # --- relays --------------------------------------------------------------------------

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """Run relays on ``loop`` (the web server's); the async routes call this first."""
        self._loop = loop

    def follow(self, key: ClientKey, job_id: str, *, replay: bool = True,
               remaining: int | None = None) -> None:
        """Relay ``job_id``'s messages to the client ``key`` until the job ends; from any
        thread.

        ``replay`` starts with every event the bus kept for the job (a prompt just
        posted); without it, with what happens from now on (a prompt of an earlier process,
        adopted when its client reconnects). A prompt already relayed is left alone.
        ``remaining``: the queue's length as the poster counted it, for the prompt's first
        ``status`` frame (counted again on a worker thread without it).
        """
        loop = self._loop
        if loop is None:  # a bug: every route that can reach here binds first
            raise RuntimeError("ClientHub.bind(loop) must be called before follow()")
        relay = PromptRelay(job_id)
        with self._lock:
            relays = self._relays.setdefault(key, {})
            if job_id in relays:
                return
            relays[job_id] = relay
        asyncio.run_coroutine_threadsafe(self._run(key, relay, replay, remaining), loop)

    async def _run(self, key: ClientKey, relay: PromptRelay, replay: bool,
                   remaining: int | None) -> None:
        try:
            await self._pump(key, relay, replay, remaining)
        except Exception as exc:  # noqa: BLE001 - a bug: logged where the loop logs them
            asyncio.get_running_loop().call_exception_handler({
                "message": f"the relay of prompt {relay.prompt_id} stopped", "exception": exc})
        finally:
            with self._lock:
                relays = self._relays.get(key, {})
                relays.pop(relay.prompt_id, None)
                if not relays:
                    self._relays.pop(key, None)

    async def _pump(self, key: ClientKey, relay: PromptRelay, replay: bool,
                    first_count: int | None) -> None:
        # Replaying every event the core holds for the job, nothing is lost between the
        # submit and this stream, however fast it ran: a prompt just posted here from the
        # bus alone, on this loop (``follow_recorded``); the stream ends with the job or
        # when the service closes.
        recorded = self.orch.follow_recorded(relay.prompt_id) if replay else None
        events: Following | AsyncGenerator[BaseModel | None, None] = (
            recorded or self.orch.follow(relay.prompt_id,
                                         self.orch.replay_after() if replay else None))
        # Closed on leaving, not when collected: the bus drops the subscription at once.
        async with contextlib.aclosing(events):
            async for event in events:
                if _ended(event):
                    await self._finish(key, relay)
                    return
                if event is None:
                    continue
                remaining = 0
                if isinstance(event, Queued) and first_count is not None:
                    remaining, first_count = first_count, None
                elif isinstance(event, Queued | Started):
                    remaining = await asyncio.to_thread(queue_remaining, self.orch)
                self.deliver(key, relay.translate(event, queue_remaining=_fixed(remaining)))

    async def _finish(self, key: ClientKey, relay: PromptRelay) -> None:
        job, remaining, node = await asyncio.to_thread(self._ending, relay.prompt_id)
        self.deliver(key, relay.finish(job, queue_remaining=remaining, node=node))

    def _ending(self, job_id: str) -> tuple[Job, int, NodeResult | None]:
        job = self.orch.get(job_id)
        node = self.results.of(job, self.records(job)) if job.status.terminal else None
        return job, queue_remaining(self.orch), node

    def records(self, job: Job) -> list[OutputRecord]:
        """The job's output records in the order they were made (the store lists newest
        first; ComfyUI lists a node's files as the node made them)."""
        return list(reversed(self.orch.outputs_of(job.id)))


def _fixed(value: int) -> Callable[[], int]:
    return lambda: value


def _ended(event: BaseModel | None) -> bool:
    """The job's terminal event, or a snapshot of a job that had already ended (the bus
    forgot its events: the client still gets the closing messages)."""
    if isinstance(event, Finished):
        return True
    return isinstance(event, Snapshot) and JobStatus(event.status).terminal
