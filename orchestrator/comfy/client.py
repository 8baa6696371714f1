"""A client for one ComfyUI server: HTTP over urllib3, events over websocket-client.

Every failure of those libraries is translated once (``translate.translated``) into a
``NodeError`` subclass that carries the node URL. Everything it reads is parsed by the
pure ``protocol``, ``features`` and ``messages`` modules.

ComfyUI releases differ in what they offer (``/api/jobs`` from 0.16, job cancel and
UUID-only prompt ids from 0.26): the client asks the node once what it has
(``detect_features``) and speaks accordingly.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.comfy import protocol
from orchestrator.comfy.features import NodeFeatures, features_from
from orchestrator.comfy.http import Answer, NodeHTTP
from orchestrator.comfy.protocol import (
    HistoryEntry,
    OutputFile,
    PromptState,
    QueueState,
    Submitted,
)
from orchestrator.comfy.translate import translated
from orchestrator.comfy.watch import (
    HISTORY_CHECK_INTERVAL,
    STREAM_CONNECT_WAIT,
    MessageHandler,
    PromptWatch,
)
from orchestrator.errors import (
    NodeError,
    NodeProtocolError,
    NodeTimeout,
    NodeUnreachable,
    PromptIdRejected,
)

__all__ = ["HISTORY_CHECK_INTERVAL", "STREAM_CONNECT_WAIT", "ComfyClient", "MessageHandler",
           "PromptWatch", "RunResult"]

# Timeouts (seconds)
DEFAULT_HTTP_TIMEOUT = 30.0
# The end (`executing` null) is sent after the history write, but a reconnect can skip
# it, and `execution_success` comes a few ms before the write: then /history is polled
# this long for the entry to appear.
HISTORY_SETTLE_TIMEOUT = 5.0
# A prompt is declared gone only after this many look-ups in a row miss it, this far
# apart: one pair of reads is never enough to spend a second run on it.
ABSENCE_CONFIRMATIONS = 3
ABSENCE_PAUSE = 0.25
# Cancels remembered per node, so a canceled pending prompt that ComfyUI 0.30 drops
# without a trace is not taken for a lost one (a few minutes of cancels at most).
CANCEL_MEMORY = 4096

BetweenReads = Callable[[str], None]


@dataclass(frozen=True)
class RunResult:
    """A prompt that finished successfully on a node."""

    prompt_id: str
    node_url: str
    outputs: tuple[OutputFile, ...]
    history: HistoryEntry


class ComfyClient:
    """Talks to one ComfyUI server. Thread-safe for HTTP calls; one ``run`` per thread.

    ``url`` is the server's base address (``http://127.0.0.1:8188``). Every method raises
    ``NodeUnreachable``/``NodeTimeout``/``NodeProtocolError`` for transport problems,
    ``GraphRejected`` when ComfyUI refuses a graph, ``JobFailed`` when a node raised.
    ``between_reads`` is called with the prompt id between the two reads of a look-up on
    a node without ``/api/jobs`` (tests widen the window a real race has with it).
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_HTTP_TIMEOUT,
                 between_reads: BetweenReads | None = None) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.between_reads = between_reads
        self._http = NodeHTTP(self.url, timeout=timeout)
        self._closed = False
        self._features: NodeFeatures | None = None
        self._cancelled: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    # --- plain HTTP ----------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Answer:
        if self._closed:
            raise NodeError(self.url, "this client was closed; open a new ComfyClient")
        with translated(self.url, f"{method} {path}"):
            return self._http.request(method, path, **kwargs)

    def _json(self, path: str, **kwargs: Any) -> Any:
        resp = self._request("GET", path, **kwargs)
        if resp.status_code != 200:
            raise NodeProtocolError(self.url, f"GET {path} answered HTTP {resp.status_code}")
        with translated(self.url, f"GET {path}"):
            return resp.json()

    def system_stats(self) -> dict[str, Any]:
        return dict(self._json("/system_stats"))

    def object_info(self, class_type: str | None = None) -> dict[str, Any]:
        return dict(self._json(f"/object_info/{class_type}" if class_type else "/object_info"))

    def models(self, folder: str | None = None) -> list[str]:
        return list(self._json(f"/models/{folder}" if folder else "/models"))

    def queue(self) -> QueueState:
        return protocol.parse_queue(self._json("/queue"), url=self.url)

    def history(self, prompt_id: str) -> HistoryEntry | None:
        return protocol.parse_history(prompt_id, self._json(f"/history/{prompt_id}"), url=self.url)

    def history_entry(self, prompt_id: str) -> dict[str, Any] | None:
        """The ``/history/{id}`` entry as the node wrote it (every UI output key, in the
        node's order, and the status messages), or None while it is unknown or running;
        for the gateway, which relays it as ComfyUI would."""
        found = self._json(f"/history/{prompt_id}")
        entry = found.get(prompt_id) if isinstance(found, dict) else None
        return dict(entry) if isinstance(entry, dict) else None

    # --- what the node speaks ------------------------------------------------------------

    @property
    def features(self) -> NodeFeatures:
        """The node's features, detected on first use (see ``detect_features``); may be
        set, to speak as to another release."""
        features = self._features
        return features if features is not None else self.detect_features()

    @features.setter
    def features(self, features: NodeFeatures) -> None:
        self._features = features

    def detect_features(self, system_stats: Mapping[str, Any] | None = None) -> NodeFeatures:
        """Ask the node what it has and keep the answer: its version (``/system_stats``,
        pass it when just read), ``/api/features``, ``/api/jobs`` and job cancel.

        Three small requests; the pool calls it each time a node comes (back) up, since a
        restart may have brought another ComfyUI release.
        """
        stats = system_stats if system_stats is not None else self.system_stats()
        probe = str(uuid.uuid4())  # an id no node holds: the routes answer "not found"
        jobs_api = self._answers_as_comfyui("GET", f"/api/jobs/{probe}")
        job_cancel = jobs_api and self._answers_as_comfyui("POST", f"/api/jobs/{probe}/cancel")
        features = features_from(stats, flags=self._optional_json("/api/features"),
                                 jobs_api=jobs_api, job_cancel=job_cancel)
        self._features = features
        return features

    def _answers_as_comfyui(self, method: str, path: str) -> bool:
        """Whether ``path`` is one of the node's routes: ComfyUI answers its own routes in
        JSON (a 404 "job not found" too); aiohttp's 404/405 for a missing one is text."""
        resp = self._request(method, path)
        kind = resp.headers.get("Content-Type", "")
        return resp.status_code < 500 and kind.startswith("application/json")

    def _optional_json(self, path: str) -> Any:
        resp = self._request("GET", path)
        if resp.status_code != 200:
            return None
        with translated(self.url, f"GET {path}"):
            return resp.json()

    # --- submitting ----------------------------------------------------------------------

    def submit(
        self,
        graph: Mapping[str, Any],
        *,
        prompt_id: str | None = None,
        client_id: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
        front: bool = False,
        number: float | None = None,
        fresh: bool = False,
    ) -> Submitted:
        """Queue ``graph`` under ``prompt_id`` (ours to choose; a uuid4 when omitted).

        ``number`` places it in the node's queue (ComfyUI runs the lowest first); without
        it the node gives the next of its counter (the back, or the front with ``front``).

        Raises ``PromptIdRejected`` without sending when the node's release would refuse
        the id (0.26+ takes canonical lowercase UUIDs only). ComfyUI queues a duplicate id
        a second time rather than refusing it, so a chosen id is looked up first, and
        again when the post fails on the way (a timeout, a reset): a prompt the node
        already holds is answered as submitted (``number`` NaN), never sent twice.

        ``fresh`` says the caller minted ``prompt_id`` durably and no one has posted it
        yet (the first post after a claim): no node can hold it, so the look-up, a round
        trip to the node on every job, is skipped. A failed post is still looked up.
        """
        if prompt_id is not None:
            self.check_prompt_id(prompt_id)
            if not fresh and self.lookup(prompt_id).known:
                return Submitted(prompt_id, math.nan)
        prompt_id = prompt_id or str(uuid.uuid4())
        body = protocol.prompt_body(
            graph, client_id=client_id or uuid.uuid4().hex, prompt_id=prompt_id,
            extra_data=extra_data, front=front,
        )
        if number is not None:
            body["number"] = number
        try:
            resp = self._request("POST", "/prompt", json_body=body)
        except (NodeTimeout, NodeUnreachable):
            if self._queued_after_all(prompt_id):
                return Submitted(prompt_id, math.nan)
            raise
        with translated(self.url, "POST /prompt"):
            answer = resp.json()
        return protocol.parse_submit_response(resp.status_code, answer, url=self.url,
                                              prompt_id=prompt_id)

    def check_prompt_id(self, prompt_id: object) -> None:
        """Raise ``PromptIdRejected`` when this node's release would refuse ``prompt_id``."""
        problem = self.features.prompt_id_problem(prompt_id)
        if problem is not None:
            raise PromptIdRejected(problem, prompt_id=prompt_id, node_url=self.url)

    def _queued_after_all(self, prompt_id: str) -> bool:
        try:
            return self.lookup(prompt_id).known
        except NodeError:
            return False  # still unreachable: the caller's error stands

    # --- where a prompt is ---------------------------------------------------------------

    def lookup(self, prompt_id: str) -> PromptState:
        """One look at where ``prompt_id`` is: pending, running, done (with its entry) or
        absent. A finished prompt may read as running for a few ms after
        ``execution_success``: ComfyUI announces the end before it writes history."""
        return self.lookup_many([prompt_id])[prompt_id]

    def lookup_many(self, prompt_ids: Sequence[str]) -> dict[str, PromptState]:
        """``lookup`` for several prompts: ``/api/jobs/{id}`` each where the node has it,
        else one ``/queue`` and then ``/history/{id}`` for those not in it - in that order,
        so a prompt ending between the reads is found in one or the other."""
        if self.features.jobs_api:
            return {pid: self._job_state(pid) for pid in prompt_ids}
        queue = self.queue()
        for prompt_id in prompt_ids:
            if self.between_reads is not None:
                self.between_reads(prompt_id)
        return {pid: protocol.state_from_reads(
                    pid, queue, None if queue.holds(pid) else self.history(pid))
                for pid in prompt_ids}

    def _job_state(self, prompt_id: str) -> PromptState:
        resp = self._request("GET", f"/api/jobs/{prompt_id}")
        with translated(self.url, f"GET /api/jobs/{prompt_id}"):
            body = resp.json() if resp.content else None
        return protocol.parse_job(prompt_id, resp.status_code, body, url=self.url)

    def locate(self, prompt_id: str) -> PromptState:
        """``lookup`` that declares a prompt ABSENT only when repeated looks miss it."""
        return self.locate_many([prompt_id])[prompt_id]

    def locate_many(self, prompt_ids: Sequence[str], *,
                    confirmations: int = ABSENCE_CONFIRMATIONS,
                    pause: float = ABSENCE_PAUSE) -> dict[str, PromptState]:
        """``lookup_many``, then the missing ones again ``confirmations - 1`` more times
        ``pause`` seconds apart: ABSENT from here means gone, not "between two reads"."""
        states = self.lookup_many(prompt_ids)
        for _ in range(confirmations - 1):
            missing = [pid for pid, state in states.items() if not state.known]
            if not missing:
                break
            time.sleep(pause)
            states.update(self.lookup_many(missing))
        return states

    def settled_history(self, prompt_id: str) -> HistoryEntry:
        """The history entry of an ended prompt, waiting briefly for ComfyUI's write."""
        deadline = time.monotonic() + HISTORY_SETTLE_TIMEOUT
        while True:
            entry = self.history(prompt_id)
            if entry is not None:
                return entry
            if time.monotonic() > deadline:
                raise NodeProtocolError(self.url, f"prompt {prompt_id} ended but has no history")
            time.sleep(0.05)

    # --- stopping prompts ----------------------------------------------------------------

    def cancel(self, prompt_id: str) -> None:
        """Cancel ``prompt_id`` whether pending or running, with the node's own means.

        ``POST /api/jobs/{id}/cancel`` where the node has it, else a queue delete plus an
        interrupt aimed at that prompt only. The cancel is remembered (``was_cancelled``):
        0.30 drops a canceled pending prompt from every list, which must not read as lost.
        """
        with self._lock:
            self._cancelled[prompt_id] = None
            while len(self._cancelled) > CANCEL_MEMORY:
                self._cancelled.popitem(last=False)
        if self.features.job_cancel:
            self.cancel_job(prompt_id)
        else:
            self.delete_queued([prompt_id])
            self.interrupt(prompt_id)

    def was_cancelled(self, prompt_id: str) -> bool:
        """Whether ``cancel`` was asked for ``prompt_id`` through this client."""
        with self._lock:
            return prompt_id in self._cancelled

    def delete_queued(self, prompt_ids: Sequence[str]) -> None:
        """Remove pending prompts (a running one is untouched: use ``interrupt``)."""
        self._request("POST", "/queue", json_body={"delete": list(prompt_ids)})

    def cancel_job(self, prompt_id: str) -> None:
        """ComfyUI 0.26+: cancel ``prompt_id`` whether pending or running, in one call."""
        self._request("POST", f"/api/jobs/{prompt_id}/cancel")

    def interrupt(self, prompt_id: str) -> None:
        """Interrupt ``prompt_id`` only if it is the one running (never a global interrupt)."""
        self._request("POST", "/interrupt", json_body={"prompt_id": prompt_id})

    # --- files ---------------------------------------------------------------------------

    def upload_image(self, data: bytes, filename: str, *, subfolder: str = "",
                     overwrite: bool = False) -> str:
        """Store ``data`` in the node's input folder; return the name ComfyUI chose.

        ComfyUI renames a clash with different content to ``name (1).png``: always use the
        returned name.
        """
        form = {"type": "input", "subfolder": subfolder, "overwrite": str(overwrite).lower(),
                "image": (filename, data)}
        resp = self._request("POST", "/upload/image", fields=form)
        if resp.status_code != 200:
            raise NodeProtocolError(self.url, f"upload of {filename} answered {resp.status_code}")
        with translated(self.url, "POST /upload/image"):
            answer = resp.json()
        sub = answer.get("subfolder") or ""
        return f"{sub}/{answer['name']}" if sub else str(answer["name"])

    def view(self, file: OutputFile) -> bytes:
        """Download one output file through ``/view``."""
        resp = self._request("GET", "/view", params=file.view_params())
        if resp.status_code != 200:
            raise NodeProtocolError(
                self.url, f"/view of {file.filename} answered HTTP {resp.status_code}"
            )
        return resp.content

    # --- running a prompt ----------------------------------------------------------------

    def run(
        self,
        graph: Mapping[str, Any],
        *,
        prompt_id: str | None = None,
        on_message: MessageHandler | None = None,
        timeout: float | None = None,
        idle_timeout: float | None = None,
        submit: bool = True,
    ) -> RunResult:
        """Submit ``graph`` and follow it until it has really finished.

        The websocket is opened before the submit so no event is missed; ``on_message``
        sees every message of this prompt (previews included). The end is ``executing``
        with ``node: null`` — ``execution_success`` comes before the history write.
        With ``submit=False`` the prompt is assumed queued already (reattach after a
        crash). ``idle_timeout`` bounds silence while the prompt runs (a stuck node).
        Raises ``JobFailed``, ``JobCancelled``, ``NodeTimeout``, ``NodeUnreachable`` or
        ``PromptIdRejected``.
        """
        if prompt_id is not None and submit:
            self.check_prompt_id(prompt_id)
        prompt_id = prompt_id or str(uuid.uuid4())
        with PromptWatch(self, prompt_id) as watch:
            if submit:
                self.submit(graph, prompt_id=prompt_id, client_id=watch.client_id)
            watch.follow(on_message, timeout=timeout, idle_timeout=idle_timeout)
        entry = self.settled_history(prompt_id)
        return RunResult(prompt_id, self.url, entry.outputs, entry)

    def close(self) -> None:
        self._closed = True
        self._http.close()

    def __enter__(self) -> ComfyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

