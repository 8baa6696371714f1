"""Prompts through the gateway: submit, read back, list, cancel (the routes' logic).

Every method takes the caller (``Principal``) and reads or acts through the façade's one
access rule (``Orchestrator.job_for``, ``jobs_for``, ``cancel_for``): an owner's own prompts,
every owner's for an admin, as through ``/v1``; a prompt the caller may not see reads
exactly like one that does not exist. Bulk cancels (``clear``, ``/interrupt`` without an
id) act on the caller's own prompts only. Methods block on the store and are called from
the web server's thread pool.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrator.admission import Admission, QueueBound
from orchestrator.errors import JobNotFound
from orchestrator.events import Dispatched, Queued
from orchestrator.jobs import ItemStatus, Job, JobStatus
from orchestrator.nodes import NodeHealth
from orchestrator.service import PREFERRED_NODE_KEY, Orchestrator
from orchestrator.tokens import Principal
from orchestrator.web.errors import InvalidRequest
from orchestrator.web.gateway import (
    errors,
    history,
    nodecheck,
    promptbody,
    targets,
    versions,
)
from orchestrator.web.gateway import jobs as job_views
from orchestrator.web.gateway.hub import ClientHub, queue_remaining
from orchestrator.web.gateway.uploads import UploadStore

# Finished prompts /history lists at most, newest kept (ComfyUI keeps 10,000 in memory).
HISTORY_LIMIT = 1000
PAGE = 200  # jobs per store page while collecting lists
CLIENTS_REMEMBERED = 10_000  # clients whose last prompt is kept for cache affinity
LIVE = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.CANCELING)
Answer = tuple[int, dict[str, Any]]


@dataclass
class Gateway:
    """What the gateway's routes share: the orchestrator, the uploads and the sockets."""

    orch: Orchestrator
    uploads: UploadStore
    hub: ClientHub
    _classes: tuple[dict[str, Any] | None, frozenset[str]] = (None, frozenset())
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _claimed: set[str] = field(default_factory=set)
    # client → its last prompt and the node that prompt preferred when it was posted
    _last: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)

    # --- submit --------------------------------------------------------------------------

    def submit(self, who: Principal, body: Any, *, max_queued: int,
               max_per_owner: int) -> Answer:
        """``POST /prompt``: 200 ``{prompt_id, number, node_errors}`` or ComfyUI's 400 body.

        Raises ``QueueFull`` and store errors for the envelope handler. Everything that
        can refuse the request is decided before the job is recorded, so a refused request
        never leaves a job behind (nor runs one a retry runs again): ComfyUI's own checks
        here, the rest in the core's one admission order (``Orchestrator.admit``).
        """
        if not isinstance(body, dict) or "prompt" not in body:
            return 400, errors.error_body(errors.NO_PROMPT)
        graph = body["prompt"]
        version = self.version()
        problem = (errors.shape_error(graph, version)
                   or promptbody.prompt_id_problem(body.get("prompt_id"), version))
        if problem is not None:
            return 400, errors.error_body(problem)
        number, priority = promptbody.queue_place(body, self.uploads.next_number)
        files = self.uploads.inputs_named(who, promptbody.strings(graph))
        chosen = self._plan(body, files, version)
        if chosen.graph is None:
            return 400, chosen.refusal or errors.error_body(errors.NO_PROMPT)
        prompt_id = promptbody.chosen_prompt_id(body.get("prompt_id"))
        with self._claim(prompt_id) as free:
            if not free:
                return 400, errors.error_body(errors.graph_error(
                    "invalid_prompt", "prompt_id is already in use; send a new one (or none: "
                    "the server then makes one)", prompt_id))
            status, answer = self._record(who, body, Admission(
                graph=chosen.graph, owner=who.owner, job_id=prompt_id, priority=priority,
                inputs=files, bound=QueueBound(max_queued=max_queued,
                                               max_per_owner=max_per_owner),
                preflight=False, source="prompt"), number)
        if status != 200:
            return status, answer
        return 200, {**answer, "node_errors": chosen.node_errors}

    def _plan(self, body: dict[str, Any], files: dict[str, str],
              version: versions.Version | None) -> targets.Plan:
        """The pre-flight's plan; a graph it refuses only for checks a class's own
        ``VALIDATE_INPUTS`` may take over goes to a free node, which decides
        (``nodecheck``): ComfyUI runs such a graph when the class allows it."""
        graph, wanted = body["prompt"], body.get("partial_execution_targets")
        info = self.orch.object_info()
        chosen = targets.plan(graph, info, wanted, promptbody.preflight(self.orch, files),
                              version)
        if chosen.graph is None and nodecheck.node_may_waive(chosen.refusal):
            lenient = targets.plan(graph, info, wanted, promptbody.preflight(
                self.orch, files, waive=nodecheck.WAIVABLE), version)
            if lenient.graph is not None and self.orch.capable_node_free(lenient.graph):
                return lenient
        return chosen

    def version(self) -> versions.Version | None:
        """The ComfyUI release the gateway answers as (see ``versions``)."""
        return versions.speaking(n.comfyui_version for n in self.orch.nodes()
                                 if n.health == NodeHealth.UP)

    @contextlib.contextmanager
    def _claim(self, prompt_id: str) -> Iterator[bool]:
        """Hold ``prompt_id`` while its job is recorded: True when it is free. Concurrent
        posts of one id would otherwise all find it free and all but one fail to insert."""
        with self._lock:
            free = prompt_id not in self._claimed and not self.orch.job_exists(prompt_id)
            if free:
                self._claimed.add(prompt_id)
        try:
            yield free
        finally:
            if free:
                with self._lock:
                    self._claimed.discard(prompt_id)

    def _record(self, who: Principal, body: dict[str, Any], request: Admission,
                number: int | float) -> Answer:
        """Admit ``request`` (the graph to run, at its place in the queue) with what the
        client posted; the node's 400 when a free node refused it (``nodecheck``)."""
        client_id, graph = body.get("client_id"), request.graph or {}
        preferred = self._affinity(who, client_id)
        metadata = {history.NUMBER_KEY: str(number),
                    **promptbody.extra_metadata(body.get("extra_data"), client_id),
                    **preferred}
        if client_id is not None:
            metadata[history.CLIENT_KEY] = str(client_id)
        extra = body.get("extra_data")
        decides = self.orch.capable_node_free(graph)
        handle = self.orch.admit(request.model_copy(update={
            "metadata": metadata, "extra_data": extra if isinstance(extra, dict) else {}}))
        refusal = nodecheck.node_refusal(self.orch, who, handle.id, graph) if decides \
            else None
        if refusal is not None:
            return 400, refusal  # the client never hears of it again: no socket relay
        with self._lock:
            self._last[(who.owner, str(client_id or ""))] = (
                handle.id, preferred.get(PREFERRED_NODE_KEY))
            while len(self._last) > CLIENTS_REMEMBERED:
                self._last.pop(next(iter(self._last)))
        if client_id is not None:
            # Its first ``status`` frame counts the queue here, on this request's worker
            # thread, so the relay need not hop to one for it.
            self.hub.follow((who.owner, str(client_id)), handle.id,
                            remaining=queue_remaining(self.orch))
        return 200, {"prompt_id": handle.id, "number": number, "node_errors": {}}

    def _affinity(self, who: Principal, client_id: Any) -> dict[str, str]:
        """Send the client's prompt to the node that ran its last one, while that node has
        room, so ComfyUI's cache serves this client as one server's would (the pool still
        spreads other clients). A client without ``client_id`` is its owner's one client."""
        with self._lock:
            last = self._last.get((who.owner, str(client_id or "")))
        node = self._node_of(*last) if last is not None else None
        return {PREFERRED_NODE_KEY: node} if node else {}

    def _node_of(self, job_id: str, preferred: str | None) -> str | None:
        """The node the prompt went to, told by its events this process still holds (no
        read of the store); a prompt not dispatched yet goes where it prefers. Only when
        its events are gone (its first, ``Queued``, too) is the job read."""
        dispatched = self.orch.latest_event(job_id, Dispatched)
        if dispatched is not None:
            return dispatched.node
        if self.orch.latest_event(job_id, Queued) is not None:
            return preferred
        try:
            job = self.orch.get(job_id)
        except JobNotFound:
            return None
        return job.items[-1].node or job.spec.metadata.get(PREFERRED_NODE_KEY)

    def adopt(self, who: Principal, client_id: str) -> None:
        """Relay the client's unfinished prompts to its socket, also those posted before a
        restart of the service (their ``client_id`` is in the job's metadata)."""
        for status in LIVE:
            page = self.orch.jobs_for(who, owner=who.owner, status=status, limit=PAGE,
                                  metadata={history.CLIENT_KEY: client_id})
            for job in page.jobs:
                self.hub.follow((who.owner, client_id), job.id, replay=False)

    def queue_info(self) -> dict[str, Any]:
        """``GET /prompt``."""
        return {"exec_info": {"queue_remaining": queue_remaining(self.orch)}}

    # --- reading ---------------------------------------------------------------------------

    def visible(self, who: Principal, prompt_id: str) -> Job:
        """A job the caller may read (``Orchestrator.job_for``: theirs, any for an admin);
        ``JobNotFound`` for any other, exactly as for an unknown id."""
        return self.orch.job_for(who, prompt_id, what="prompt")

    def history_of(self, who: Principal, prompt_id: str) -> dict[str, Any]:
        """``GET /history/{id}``: ``{}`` until the prompt is finished."""
        job = self.visible(who, prompt_id)
        if not job.status.terminal:
            return {}
        return {job.id: self._entry(job, self._output_classes())}

    def history(self, who: Principal, max_items: int | None,
                offset: int | None) -> dict[str, Any]:
        """``GET /history``: the owner's finished prompts, oldest first, ComfyUI's paging."""
        done = [j for j in _take(self._jobs(who, None), HISTORY_LIMIT,
                                 lambda j: j.status.terminal)]
        chosen = history.select_history([(j.id, j) for j in reversed(done)], max_items, offset)
        classes = self._output_classes()
        return {job_id: self._entry(job, classes) for job_id, job in chosen.items()}

    def queue(self, who: Principal) -> dict[str, Any]:
        """``GET /queue``: the owner's running and pending prompts, pending ones in the
        order the pool will run them."""
        live = self._live(who)
        # One owner's prompts are claimed by priority, then age (``history.run_order``):
        # the pool's positions, a look-up each, are asked only to interleave owners.
        several = len({job.spec.owner for job in live}) > 1
        return history.queue_body(live, self._output_classes(),
                                  {job.id: self._position(job) for job in live if several})

    def _position(self, job: Job) -> int | None:
        """How many queued items the pool claims before the job's first queued one."""
        for item in job.items:
            if item.status is ItemStatus.QUEUED:
                try:
                    return self.orch.queue_position(item.id)
                except JobNotFound:
                    return None  # it left the queue meanwhile
        return None

    def _entry(self, job: Job, classes: frozenset[str]) -> dict[str, Any]:
        records = self.hub.records(job)
        node = self.hub.results.of(job, records)
        if node is None:
            return history.history_entry(job, records, classes)
        return history.history_entry(job, records, classes, ui=node.outputs,
                                     cached=node.cached)

    def _output_classes(self) -> frozenset[str]:
        """Classes that are output nodes; worked out again only when the pool's merged
        ``/object_info`` is a new one (it is kept until some node's changes)."""
        merged = self.orch.object_info()
        known, classes = self._classes
        if known is not merged:
            classes = frozenset(name for name, info in merged.items()
                                if isinstance(info, dict) and info.get("output_node"))
            self._classes = (merged, classes)
        return classes

    def _live(self, who: Principal, *, own: bool = False) -> list[Job]:
        return [j for status in LIVE for j in self._jobs(who, status, own=own)]

    def _jobs(self, who: Principal, status: JobStatus | None, *, own: bool = False
              ) -> Iterator[Job]:
        """The jobs ``who`` may see (``Orchestrator.jobs_for``: an admin sees every
        owner's, as through ``/v1``), or with ``own`` the caller's own: what a bulk
        cancel acts on, so an admin's client never clears everyone's queue."""
        cursor = None
        while True:
            page = self.orch.jobs_for(who, owner=who.owner if own else None, status=status,
                                      limit=PAGE, cursor=cursor)
            yield from page.jobs
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    # --- canceling -------------------------------------------------------------------------

    def delete_queued(self, who: Principal, body: Any) -> None:
        """``POST /queue``: ``delete`` / ``clear`` remove pending prompts (running ones stay,
        as on ComfyUI); unknown ids are ignored."""
        if not isinstance(body, dict):
            raise InvalidRequest('send {"delete": [prompt ids]} or {"clear": true}')
        pending = [j for j in self._live(who, own=True) if not history.is_running(j)]
        wanted = {str(i) for i in body.get("delete") or ()}
        for job in pending:
            if body.get("clear") or job.id in wanted:
                self.orch.cancel_for(who, job.id)
        for job_id in wanted - {j.id for j in pending}:
            self._cancel_if(who, job_id, lambda j: not history.is_running(j))

    def interrupt(self, who: Principal, prompt_id: str | None) -> None:
        """``POST /interrupt``: that prompt if it is running, else every running prompt of
        the owner; never another owner's, and a prompt that does not run is left alone."""
        if prompt_id:
            self._cancel_if(who, prompt_id, lambda j: j.status is JobStatus.RUNNING)
            return
        for job in self._jobs(who, JobStatus.RUNNING, own=True):
            self.orch.cancel_for(who, job.id)

    def _cancel_if(self, who: Principal, prompt_id: str, wanted: Callable[[Job], bool]
                   ) -> None:
        try:
            job = self.visible(who, prompt_id)
        except JobNotFound:
            return
        if not job.status.terminal and wanted(job):
            self.orch.cancel_for(who, job.id)

    def cancel_job(self, who: Principal, job_id: str) -> dict[str, Any]:
        """``POST /api/jobs/{id}/cancel``: ``{"cancelled": bool}``, true when a pending or
        running prompt of the caller's was cancelled; any other id is a no-op, as on
        ComfyUI (another owner's prompt reads exactly like an unknown one)."""
        return {"cancelled": self._cancel(who, job_id)}

    def cancel_jobs(self, who: Principal, body: Any) -> Answer:
        """``POST /api/jobs/cancel`` with ``{"job_ids": [...]}``: each id cancelled as
        ``cancel_job`` does; a malformed id refuses the whole batch up front (400)."""
        ids = body.get("job_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list):
            return 400, {"error": "job_ids must be a list"}
        invalid = [i if isinstance(i, str) else repr(i) for i in ids
                   if not promptbody.well_formed(i)]
        if invalid:
            return 400, {"error": "job_ids contains invalid id(s)", "invalid_ids": invalid}
        cancelled = [self._cancel(who, job_id) for job_id in ids]
        return 200, {"cancelled": any(cancelled)}

    def _cancel(self, who: Principal, job_id: str) -> bool:
        try:
            job = self.visible(who, job_id)
        except JobNotFound:
            return False
        if job.status.terminal:
            return False
        self.orch.cancel_for(who, job.id)
        return True

    # --- /api/jobs ---------------------------------------------------------------------------

    def jobs(self, who: Principal, query: job_views.JobQuery) -> dict[str, Any]:
        """``GET /api/jobs``: the caller's prompts (running, pending and the last
        ``HISTORY_LIMIT`` finished) as ComfyUI's job dicts, filtered and paged."""
        classes = self._output_classes()
        found = [self._queued_view(job, classes) for job in self._live(who)]
        done = _take(self._jobs(who, None), HISTORY_LIMIT,
                     lambda j: j.status.terminal)
        found += [job_views.finished_job(job.id, self._entry(job, classes)) for job in done]
        return job_views.select(found, query)

    def job(self, who: Principal, job_id: str) -> dict[str, Any]:
        """``GET /api/jobs/{id}``: one job with its outputs and workflow once finished;
        ``JobNotFound`` for an id the caller cannot see."""
        job = self.visible(who, job_id)
        classes = self._output_classes()
        if not job.status.terminal:
            return self._queued_view(job, classes)
        return job_views.finished_job(job.id, self._entry(job, classes), detail=True)

    def _queued_view(self, job: Job, classes: frozenset[str]) -> dict[str, Any]:
        status = job_views.IN_PROGRESS if history.is_running(job) else job_views.PENDING
        return job_views.queued_job(history.prompt_tuple(job, classes), status)


def _take(jobs: Iterable[Job], most: int, keep: Callable[[Job], bool]) -> Iterator[Job]:
    taken = 0
    for job in jobs:
        if taken >= most:
            return
        if keep(job):
            taken += 1
            yield job
