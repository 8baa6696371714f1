"""Prompts through the gateway: submit, read back, list, cancel (the routes' logic).

Every method takes the caller (``Principal``) and acts on that owner's jobs only; another
owner's prompt reads exactly like one that does not exist. Methods block on the store and
are called from the web server's thread pool.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from orchestrator.errors import GraphRejected, JobNotFound
from orchestrator.jobs import Job, JobStatus
from orchestrator.service import Orchestrator
from orchestrator.staging import stage_named_inputs
from orchestrator.tokens import Principal
from orchestrator.web import limits
from orchestrator.web.auth import can_read_job
from orchestrator.web.errors import InvalidRequest
from orchestrator.web.gateway import errors, history
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
# ComfyUI's /api/jobs status words.
_JOB_STATUS = {JobStatus.QUEUED: "pending", JobStatus.RUNNING: "in_progress",
               JobStatus.CANCELING: "in_progress", JobStatus.SUCCEEDED: "completed",
               JobStatus.PARTIALLY_FAILED: "completed", JobStatus.FAILED: "failed",
               JobStatus.CANCELED: "cancelled", JobStatus.EXPIRED: "failed"}

Answer = tuple[int, dict[str, Any]]


@dataclass
class Gateway:
    """What the gateway's routes share: the orchestrator, the uploads and the sockets."""

    orch: Orchestrator
    uploads: UploadStore
    hub: ClientHub
    _classes: tuple[dict[str, Any] | None, frozenset[str]] = (None, frozenset())

    # --- submit --------------------------------------------------------------------------

    def submit(self, who: Principal, body: Any, *, max_queued: int) -> Answer:
        """``POST /prompt``: 200 ``{prompt_id, number, node_errors}`` or ComfyUI's 400 body.

        Raises ``TooManyRequests`` (queue full) and store errors for the envelope handler.
        """
        if not isinstance(body, dict) or "prompt" not in body:
            return 400, errors.error_body(errors.NO_PROMPT)
        graph = body["prompt"]
        problem = errors.shape_error(graph) or self._id_problem(body.get("prompt_id"))
        if problem is not None:
            return 400, errors.error_body(problem)
        limits.check_queue(self.orch.store.queued_count(), 1, max_queued)
        files = self.uploads.inputs_named(who.owner, _strings(graph))
        try:
            self.orch.preflight(stage_named_inputs(graph, dict.fromkeys(files, b"")))
        except GraphRejected as exc:
            return 400, errors.rejection_body(exc, graph, self.orch.object_info())
        return 200, self._record(who, body, graph, files)

    def _id_problem(self, prompt_id: Any) -> dict[str, Any] | None:
        if prompt_id is None:
            return None
        if not PROMPT_ID_RE.fullmatch(str(prompt_id)):
            return errors.graph_error("invalid_prompt", "prompt_id may hold letters, digits, "
                                      "'_', '.', ':' and '-' (at most 128)", str(prompt_id))
        try:
            self.orch.get(str(prompt_id))
        except JobNotFound:
            return None
        return errors.graph_error("invalid_prompt", "prompt_id is already in use; send a new "
                                  "one (or none: the server then makes one)", str(prompt_id))

    def _record(self, who: Principal, body: dict[str, Any], graph: dict[str, Any],
                files: dict[str, str]) -> dict[str, Any]:
        prompt_id = str(body.get("prompt_id") or uuid.uuid4())
        number = _number(body, self.uploads.next_number)
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
        return history.history_entry(job, self.orch.outputs_of(job.id), classes)

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
        """``POST /api/jobs/{id}/cancel``: cancel whatever state it is in; a finished job is
        left as it is. ``JobNotFound`` for an id the caller cannot see."""
        return self._cancel(self.visible(who, job_id))

    def cancel_jobs(self, who: Principal, body: Any) -> dict[str, Any]:
        """``POST /api/jobs/cancel`` with ``{"job_ids": [...]}``: all or nothing, so one id
        the caller cannot see answers 404 and cancels none."""
        ids = body.get("job_ids") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise InvalidRequest('send {"job_ids": ["<prompt id>", ...]}')
        jobs = [self.visible(who, job_id) for job_id in ids]
        return {"jobs": [self._cancel(job) for job in jobs]}

    def _cancel(self, job: Job) -> dict[str, Any]:
        before = _JOB_STATUS[job.status]
        if job.status.terminal:
            return {"job_id": job.id, "cancelled": False, "status": before}
        after = self.orch.cancel(job.id)
        return {"job_id": job.id, "cancelled": True, "status": _JOB_STATUS[after.status],
                "previous_status": before}


def _number(body: dict[str, Any], counter: Callable[[], int]) -> int | float:
    """ComfyUI's queue number: the client's ``number``, else the counter (negative for
    ``front``, which ComfyUI uses to jump the queue)."""
    if "number" in body:
        try:
            return float(body["number"])
        except (TypeError, ValueError):
            raise InvalidRequest(f"number {body['number']!r} is not a number") from None
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
