"""Prompts through the gateway: submit, read back, list, cancel (the routes' logic).

Every method takes the caller (``Principal``) and acts on that owner's jobs only; another
owner's prompt reads exactly like one that does not exist. Methods block on the store and
are called from the web server's thread pool.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrator.comfy.features import is_canonical_uuid
from orchestrator.errors import JobNotFound
from orchestrator.jobs import Job, JobStatus
from orchestrator.nodes import Health
from orchestrator.service import Orchestrator
from orchestrator.staging import stage_named_inputs
from orchestrator.tokens import Principal
from orchestrator.validation import check_against_object_info, raise_for_problems
from orchestrator.web import limits
from orchestrator.web.auth import can_read_job
from orchestrator.web.errors import InvalidRequest
from orchestrator.web.gateway import errors, history, targets, versions
from orchestrator.web.gateway import jobs as job_views
from orchestrator.web.gateway.hub import ClientHub, queue_remaining
from orchestrator.web.gateway.uploads import UploadStore
from orchestrator.workflow import is_link

# A prompt id becomes our job id and a URL path segment: keep it to safe characters.
PROMPT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}")
# Keys ComfyUI keeps out of history (API keys for Comfy's paid API nodes); they still go
# to the node with the prompt.
SENSITIVE_EXTRA_DATA = frozenset({"auth_token_comfy_org", "api_key_comfy_org"})
# Characters of extra_data kept for /history (the front end puts whole UI workflows there).
EXTRA_DATA_MAX_CHARS = 1_000_000
# Finished prompts /history lists at most, newest kept (ComfyUI keeps 10,000 in memory).
HISTORY_LIMIT = 1000
PAGE = 200  # jobs per store page while collecting lists
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

    # --- submit --------------------------------------------------------------------------

    def submit(self, who: Principal, body: Any, *, max_queued: int,
               max_per_owner: int) -> Answer:
        """``POST /prompt``: 200 ``{prompt_id, number, node_errors}`` or ComfyUI's 400 body.

        Raises ``TooManyRequests`` (queue full) and store errors for the envelope handler.
        Everything that can refuse the request is decided before the job is recorded, so
        a refused request never leaves a job behind (nor runs one a retry runs again).
        """
        if not isinstance(body, dict) or "prompt" not in body:
            return 400, errors.error_body(errors.NO_PROMPT)
        graph = body["prompt"]
        version = self.version()
        problem = (errors.shape_error(graph, version)
                   or prompt_id_problem(body.get("prompt_id"), version))
        if problem is not None:
            return 400, errors.error_body(problem)
        number = _number(body, self.uploads.next_number)
        limits.check_queue(self.orch.store, who.owner, 1, max_queued=max_queued,
                           max_per_owner=max_per_owner)
        files = self.uploads.inputs_named(who.owner, _strings(graph))
        info = self.orch.object_info()
        chosen = targets.plan(graph, info, body.get("partial_execution_targets"),
                              _preflight(info, files), version)
        if chosen.graph is None:
            return 400, chosen.refusal or errors.error_body(errors.NO_PROMPT)
        prompt_id = _prompt_id(body.get("prompt_id"))
        with self._claim(prompt_id) as free:
            if not free:
                return 400, errors.error_body(errors.graph_error(
                    "invalid_prompt", "prompt_id is already in use; send a new one (or none: "
                    "the server then makes one)", prompt_id))
            answer = self._record(who, body, chosen.graph, files, prompt_id, number)
        return 200, {**answer, "node_errors": chosen.node_errors}

    def version(self) -> versions.Version | None:
        """The ComfyUI release the gateway answers as (see ``versions``)."""
        return versions.speaking(n.comfyui_version for n in self.orch.nodes()
                                 if n.health == Health.UP)

    @contextlib.contextmanager
    def _claim(self, prompt_id: str) -> Iterator[bool]:
        """Hold ``prompt_id`` while its job is recorded: True when it is free. Concurrent
        posts of one id would otherwise all find it free and all but one fail to insert."""
        with self._lock:
            free = prompt_id not in self._claimed and not self._exists(prompt_id)
            if free:
                self._claimed.add(prompt_id)
        try:
            yield free
        finally:
            if free:
                with self._lock:
                    self._claimed.discard(prompt_id)

    def _exists(self, prompt_id: str) -> bool:
        try:
            self.orch.get(prompt_id)
        except JobNotFound:
            return False
        return True

    def _record(self, who: Principal, body: dict[str, Any], graph: dict[str, Any],
                files: dict[str, str], prompt_id: str, number: int | float) -> dict[str, Any]:
        client_id = body.get("client_id")
        metadata = {history.NUMBER_KEY: str(number),
                    **_extra_metadata(body.get("extra_data"), client_id)}
        if client_id is not None:
            metadata[history.CLIENT_KEY] = str(client_id)
        extra = body.get("extra_data")
        self.orch.submit(graph=graph, owner=who.owner, job_id=prompt_id, metadata=metadata,
                         images={name: self.orch.blobs.path(sha) for name, sha in files.items()},
                         extra_data=extra if isinstance(extra, dict) else None)
        if client_id is not None:
            self.hub.follow((who.owner, str(client_id)), prompt_id)
        return {"prompt_id": prompt_id, "number": number, "node_errors": {}}

    def adopt(self, who: Principal, client_id: str) -> None:
        """Relay the client's unfinished prompts to its socket, also those posted before a
        restart of the service (their ``client_id`` is in the job's metadata)."""
        for status in LIVE:
            page = self.orch.list(owner=who.owner, status=status, limit=PAGE,
                                  metadata={history.CLIENT_KEY: client_id})
            for job in page.jobs:
                self.hub.follow((who.owner, client_id), job.id, replay=False)

    def queue_info(self) -> dict[str, Any]:
        """``GET /prompt``."""
        return {"exec_info": {"queue_remaining": queue_remaining(self.orch)}}

    # --- reading ---------------------------------------------------------------------------

    def visible(self, who: Principal, prompt_id: str) -> Job:
        """The caller's job; ``JobNotFound`` for any other (also another owner's)."""
        job = self.orch.get(prompt_id)
        if not can_read_job(who, job):
            raise JobNotFound(prompt_id, what="prompt")
        return job

    def history_of(self, who: Principal, prompt_id: str) -> dict[str, Any]:
        """``GET /history/{id}``: ``{}`` until the prompt is finished."""
        job = self.visible(who, prompt_id)
        if not job.status.terminal:
            return {}
        return {job.id: self._entry(job, self._output_classes())}

    def history(self, who: Principal, max_items: int | None,
                offset: int | None) -> dict[str, Any]:
        """``GET /history``: the owner's finished prompts, oldest first, ComfyUI's paging."""
        done = [j for j in _take(self._owner_jobs(who.owner, None), HISTORY_LIMIT,
                                 lambda j: j.status.terminal)]
        chosen = history.select_history([(j.id, j) for j in reversed(done)], max_items, offset)
        classes = self._output_classes()
        return {job_id: self._entry(job, classes) for job_id, job in chosen.items()}

    def queue(self, who: Principal) -> dict[str, Any]:
        """``GET /queue``: the owner's running and pending prompts."""
        return history.queue_body(self._live(who.owner), self._output_classes())

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

    def _live(self, owner: str) -> list[Job]:
        return [j for status in LIVE for j in self._owner_jobs(owner, status)]

    def _owner_jobs(self, owner: str, status: JobStatus | None) -> Iterator[Job]:
        cursor = None
        while True:
            page = self.orch.list(owner=owner, status=status, limit=PAGE, cursor=cursor)
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
        pending = [j for j in self._live(who.owner) if not history.is_running(j)]
        wanted = {str(i) for i in body.get("delete") or ()}
        for job in pending:
            if body.get("clear") or job.id in wanted:
                self.orch.cancel(job.id)
        for job_id in wanted - {j.id for j in pending}:
            self._cancel_if(who, job_id, lambda j: not history.is_running(j))

    def interrupt(self, who: Principal, prompt_id: str | None) -> None:
        """``POST /interrupt``: that prompt if it is running, else every running prompt of
        the owner; never another owner's, and a prompt that does not run is left alone."""
        if prompt_id:
            self._cancel_if(who, prompt_id, lambda j: j.status is JobStatus.RUNNING)
            return
        for job in self._owner_jobs(who.owner, JobStatus.RUNNING):
            self.orch.cancel(job.id)

    def _cancel_if(self, who: Principal, prompt_id: str, wanted: Callable[[Job], bool]
                   ) -> None:
        try:
            job = self.visible(who, prompt_id)
        except JobNotFound:
            return
        if not job.status.terminal and wanted(job):
            self.orch.cancel(job.id)

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
        invalid = [i if isinstance(i, str) else repr(i) for i in ids if not _well_formed(i)]
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
        self.orch.cancel(job.id)
        return True

    # --- /api/jobs ---------------------------------------------------------------------------

    def jobs(self, who: Principal, query: job_views.JobQuery) -> dict[str, Any]:
        """``GET /api/jobs``: the caller's prompts (running, pending and the last
        ``HISTORY_LIMIT`` finished) as ComfyUI's job dicts, filtered and paged."""
        classes = self._output_classes()
        found = [self._queued_view(job, classes) for job in self._live(who.owner)]
        done = _take(self._owner_jobs(who.owner, None), HISTORY_LIMIT,
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


def _well_formed(job_id: Any) -> bool:
    return isinstance(job_id, str) and (is_canonical_uuid(job_id)
                                        or PROMPT_ID_RE.fullmatch(job_id) is not None)


def _preflight(info: dict[str, Any], files: dict[str, str]) -> targets.Check:
    """ComfyUI's own validation rules and nothing stricter: a graph ComfyUI takes, the
    gateway takes (uploaded names stand in for the files staged at dispatch)."""
    def check(run: dict[str, Any]) -> None:
        staged = stage_named_inputs(run, dict.fromkeys(files, b""))
        raise_for_problems(check_against_object_info(staged, info, as_comfyui=True),
                           source="prompt")
    return check


def prompt_id_problem(prompt_id: Any, version: versions.Version | None
                      ) -> dict[str, Any] | None:
    """ComfyUI's error for a client's ``prompt_id``, or None when the id is usable.

    From 0.26 ComfyUI takes only a canonical lowercase UUID (``invalid_prompt_id``
    otherwise); older releases take any value as text, of which we keep ids that are safe
    as a job id and a path segment.
    """
    if prompt_id is None:
        return None
    if versions.has(version, versions.UUID_PROMPT_IDS):
        return None if is_canonical_uuid(prompt_id) else dict(errors.INVALID_PROMPT_ID)
    if not PROMPT_ID_RE.fullmatch(str(prompt_id)):
        return errors.graph_error("invalid_prompt", "prompt_id may hold letters, digits, "
                                  "'_', '.', ':' and '-' (at most 128)", str(prompt_id))
    return None


def _prompt_id(prompt_id: Any) -> str:
    return str(uuid.uuid4()) if prompt_id is None else str(prompt_id)


def _number(body: dict[str, Any], counter: Callable[[], int]) -> int | float:
    """ComfyUI's queue number: the client's ``number``, else the counter (negative for
    ``front``, which ComfyUI uses to jump the queue). ``"nan"`` and ``"inf"`` are refused:
    float() takes them, but no queue can order them and no JSON answer can carry them."""
    if "number" in body:
        try:
            number = float(body["number"])
        except (TypeError, ValueError, OverflowError):
            raise InvalidRequest(f"number {body['number']!r} is not a number") from None
        if not math.isfinite(number):
            raise InvalidRequest(f"number {body['number']!r} is not a finite number")
        return number
    number = counter()
    return -number if body.get("front") else number


def _extra_metadata(extra: Any, client_id: Any) -> dict[str, str]:
    data = {k: v for k, v in (extra if isinstance(extra, dict) else {}).items()
            if k not in SENSITIVE_EXTRA_DATA}
    if client_id is not None:
        data["client_id"] = client_id
    data["create_time"] = int(time.time() * 1000)
    text = json.dumps(data)
    if len(text) > EXTRA_DATA_MAX_CHARS:
        text = json.dumps({k: data[k] for k in ("client_id", "create_time") if k in data})
    return {history.EXTRA_KEY: text}


def _strings(graph: dict[str, Any]) -> Iterator[str]:
    """Every plain string input of the graph: the names it may give uploaded files."""
    for node in graph.values():
        for value in (node.get("inputs") or {}).values():
            if isinstance(value, str) and not is_link(value):
                yield value


def _take(jobs: Iterable[Job], most: int, keep: Callable[[Job], bool]) -> Iterator[Job]:
    taken = 0
    for job in jobs:
        if taken >= most:
            return
        if keep(job):
            taken += 1
            yield job
