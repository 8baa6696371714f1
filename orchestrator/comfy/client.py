"""A client for one ComfyUI server: HTTP with requests, events with websocket-client.

This is the only module that calls those two libraries; their exceptions are translated
here, once, into ``NodeError`` subclasses that carry the node URL. Everything it reads is
parsed by the pure ``protocol`` and ``messages`` modules.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import urllib3
import websocket

from orchestrator.comfy import protocol
from orchestrator.comfy.http import Answer, NodeHTTP
from orchestrator.comfy.messages import (
    Executing,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    Message,
    Preview,
    parse_message,
)
from orchestrator.comfy.protocol import HistoryEntry, OutputFile, QueueState, Submitted
from orchestrator.comfy.stream import NodeStream, open_event_socket
from orchestrator.errors import (
    JobCancelled,
    JobFailed,
    NodeError,
    NodeProtocolError,
    NodeTimeout,
    NodeUnreachable,
)

# Timeouts (seconds)
DEFAULT_HTTP_TIMEOUT = 30.0
# How long a websocket read blocks before the loop checks its deadlines.
SOCKET_POLL_INTERVAL = 1.0
# Silence on the socket after which /history is asked directly, in case the end message
# was lost (a reconnect, a proxy dropping frames).
HISTORY_CHECK_INTERVAL = 5.0
# The end (`executing` null) is sent after the history write, but a reconnect can skip
# it; then /history is polled this long for the entry to appear.
HISTORY_SETTLE_TIMEOUT = 5.0
# How long a watcher waits for the node's shared socket to be connected before submitting.
STREAM_CONNECT_WAIT = 3.0

MessageHandler = Callable[[Message], None]


@dataclass(frozen=True)
class RunResult:
    """A prompt that finished successfully on a node."""

    prompt_id: str
    node_url: str
    outputs: tuple[OutputFile, ...]
    history: HistoryEntry


@contextlib.contextmanager
def _translated(url: str, what: str) -> Iterator[None]:
    """Map urllib3 / websocket-client failures to NodeError subclasses, once."""
    try:
        yield
    except NodeError:
        raise
    except (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ProtocolError,
            urllib3.exceptions.MaxRetryError, urllib3.exceptions.ProxyError, ConnectionError,
            websocket.WebSocketException) as exc:
        # Before timeouts: urllib3's NewConnectionError is a ConnectTimeoutError subclass.
        raise NodeUnreachable(url, _reason(exc)) from exc
    except urllib3.exceptions.TimeoutError as exc:
        raise NodeTimeout(url, f"{what} timed out") from exc
    except OSError as exc:
        raise NodeUnreachable(url, _reason(exc)) from exc
    except urllib3.exceptions.HTTPError as exc:
        raise NodeProtocolError(url, f"{what} failed: {exc}") from exc
    except ValueError as exc:  # bad JSON
        raise NodeProtocolError(url, f"{what} answered something that is not JSON") from exc


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "refused" in text.lower() or isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, websocket.WebSocketConnectionClosedException):
        return "websocket closed"
    return text.split("(Caused by", 1)[-1].strip(" ()'\"")[:160] or type(exc).__name__


class ComfyClient:
    """Talks to one ComfyUI server. Thread-safe for HTTP calls; one ``run`` per thread.

    ``url`` is the server's base address (``http://127.0.0.1:8188``). Every method raises
    ``NodeUnreachable``/``NodeTimeout``/``NodeProtocolError`` for transport problems,
    ``GraphRejected`` when ComfyUI refuses a graph, ``JobFailed`` when a node raised.
    """

    def __init__(self, url: str, *, timeout: float = DEFAULT_HTTP_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._http = NodeHTTP(self.url, timeout=timeout)
        self._closed = False

    # --- plain HTTP ----------------------------------------------------------------------

    def _request(self, method: str, path: str, **kwargs: Any) -> Answer:
        if self._closed:
            raise NodeError(self.url, "this client was closed; open a new ComfyClient")
        with _translated(self.url, f"{method} {path}"):
            return self._http.request(method, path, **kwargs)

    def _json(self, path: str, **kwargs: Any) -> Any:
        resp = self._request("GET", path, **kwargs)
        if resp.status_code != 200:
            raise NodeProtocolError(self.url, f"GET {path} answered HTTP {resp.status_code}")
        with _translated(self.url, f"GET {path}"):
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

    def submit(
        self,
        graph: Mapping[str, Any],
        *,
        prompt_id: str | None = None,
        client_id: str | None = None,
        extra_data: Mapping[str, Any] | None = None,
        front: bool = False,
    ) -> Submitted:
        """Queue ``graph`` under ``prompt_id`` (ours to choose; a uuid4 when omitted)."""
        body = protocol.prompt_body(
            graph, client_id=client_id or uuid.uuid4().hex,
            prompt_id=prompt_id or str(uuid.uuid4()),
            extra_data=extra_data, front=front,
        )
        resp = self._request("POST", "/prompt", json_body=body)
        with _translated(self.url, "POST /prompt"):
            answer = resp.json()
        return protocol.parse_submit_response(resp.status_code, answer, url=self.url)

    def delete_queued(self, prompt_ids: Sequence[str]) -> None:
        """Remove pending prompts (a running one is untouched: use ``interrupt``)."""
        self._request("POST", "/queue", json_body={"delete": list(prompt_ids)})

    def supports_job_cancel(self) -> bool:
        """Whether the node has newer ComfyUI's ``POST /api/jobs/{id}/cancel``.

        Probed with an id that cannot exist: a server without the route answers with
        aiohttp's plain-text 404/405, one with it answers in JSON (job not found).
        """
        resp = self._request("POST", f"/api/jobs/orch-probe-{uuid.uuid4().hex}/cancel")
        kind = resp.headers.get("Content-Type", "")
        return resp.status_code not in (404, 405) or kind.startswith("application/json")

    def cancel_job(self, prompt_id: str) -> None:
        """Newer ComfyUI: cancel ``prompt_id`` whether pending or running, in one call."""
        self._request("POST", f"/api/jobs/{prompt_id}/cancel")

    def interrupt(self, prompt_id: str) -> None:
        """Interrupt ``prompt_id`` only if it is the one running (never a global interrupt)."""
        self._request("POST", "/interrupt", json_body={"prompt_id": prompt_id})

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
        with _translated(self.url, "POST /upload/image"):
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
        Raises ``JobFailed``, ``JobCancelled``, ``NodeTimeout`` or ``NodeUnreachable``.
        """
        prompt_id = prompt_id or str(uuid.uuid4())
        with PromptWatch(self, prompt_id) as watch:
            if submit:
                self.submit(graph, prompt_id=prompt_id, client_id=watch.client_id)
            watch.follow(on_message, timeout=timeout, idle_timeout=idle_timeout)
        entry = self.settled_history(prompt_id)
        return RunResult(prompt_id, self.url, entry.outputs, entry)

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

    def close(self) -> None:
        self._closed = True
        self._http.close()

    def __enter__(self) -> ComfyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PromptWatch:
    """Follows one prompt; entered before the prompt is submitted so no event is missed.

    With a ``stream`` (the node's shared socket) it reads that prompt's messages from it
    and posts under the stream's client id; without one it opens a socket of its own.
    ``history_interval`` is how long silence lasts before ``/history`` is asked directly
    (short for a prompt posted by an earlier process, whose events go elsewhere).
    """

    def __init__(self, client: ComfyClient, prompt_id: str, *,
                 client_id: str | None = None, stream: NodeStream | None = None,
                 history_interval: float = HISTORY_CHECK_INTERVAL) -> None:
        self.client = client
        self.prompt_id = prompt_id
        self.stream = stream
        # ComfyUI routes a prompt's events to the socket of the client_id that posted it.
        self.client_id = stream.client_id if stream else (client_id or uuid.uuid4().hex)
        self.history_interval = history_interval
        self._ws: websocket.WebSocket | None = None
        self._queue: queue.Queue[Message] | None = None
        self.started = False

    def __enter__(self) -> PromptWatch:
        if self.stream is not None:
            self._queue = self.stream.subscribe(self.prompt_id)
            # Events sent before the shared socket is up would be lost; history checks
            # cover a node that is down, so this wait is bounded and never fails.
            self.stream.wait_connected(STREAM_CONNECT_WAIT)
        else:
            self._connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.stream is not None:
            self.stream.unsubscribe(self.prompt_id)
        if self._ws is not None:
            with contextlib.suppress(Exception):
                self._ws.close()
            self._ws = None

    def _connect(self) -> None:
        with _translated(self.client.url, "websocket connect"):
            self._ws = open_event_socket(self.client.url, self.client_id,
                                         connect_timeout=self.client.timeout,
                                         poll=SOCKET_POLL_INTERVAL)

    def follow(self, on_message: MessageHandler | None, *, timeout: float | None,
               idle_timeout: float | None, stop: threading.Event | None = None) -> None:
        """Read messages until this prompt ends; raise on error/interrupt/time-outs.

        Setting ``stop`` (a cancel) ends the wait with ``JobCancelled`` within a second.
        """
        deadline = time.monotonic() + timeout if timeout else None
        last_seen = last_check = time.monotonic()
        while True:
            msg = self._next()
            now = time.monotonic()
            if stop is not None and stop.is_set():
                raise JobCancelled(self.prompt_id, "canceled")
            if msg is None:
                if deadline and now > deadline:
                    raise NodeTimeout(self.client.url, f"prompt {self.prompt_id} took longer "
                                      f"than {timeout:.0f}s")
                if self.started and idle_timeout and now - last_seen > idle_timeout:
                    raise NodeTimeout(self.client.url, f"no event for {idle_timeout:.0f}s while "
                                      f"prompt {self.prompt_id} was running (stuck node?)")
                if now - last_check > self.history_interval:
                    last_check = now
                    if self._ended_per_history():
                        return
                continue
            if not self._mine(msg):
                continue
            last_seen = now
            if self._handle(msg, on_message):
                return

    def _mine(self, msg: Message) -> bool:
        if isinstance(msg, Preview) and msg.prompt_id is None:
            return self.started
        return msg.prompt_id == self.prompt_id

    def _handle(self, msg: Message, on_message: MessageHandler | None) -> bool:
        """Deliver one message; True when it is the end of the prompt."""
        if isinstance(msg, ExecutionStart):
            self.started = True
        if on_message is not None:
            on_message(msg)
        if isinstance(msg, ExecutionError):
            raise JobFailed(self.prompt_id, node_id=msg.node_id, class_type=msg.node_type,
                            exception_message=msg.exception_message,
                            exception_type=msg.exception_type, traceback=msg.traceback,
                            node_url=self.client.url)
        if isinstance(msg, ExecutionInterrupted):
            raise JobCancelled(self.prompt_id, "interrupted on the node")
        return isinstance(msg, Executing) and msg.node is None

    def _next(self) -> Message | None:
        if self._queue is not None:
            try:
                return self._queue.get(timeout=SOCKET_POLL_INTERVAL)
            except queue.Empty:
                return None
        assert self._ws is not None
        try:
            frame = self._ws.recv()
        except websocket.WebSocketTimeoutException:
            return None
        except UnicodeDecodeError:
            raise NodeProtocolError(self.client.url, "a websocket text frame is not UTF-8"
                                    ) from None
        except (websocket.WebSocketException, OSError):
            self._reconnect()
            return None
        try:
            return parse_message(frame)
        except NodeProtocolError as exc:
            raise NodeProtocolError(self.client.url, exc.reason) from exc

    def _reconnect(self) -> None:
        """The socket dropped: reconnect once (the prompt may still run), else give up."""
        self.__exit__()
        self._connect()

    def _ended_per_history(self) -> bool:
        entry = self.client.history(self.prompt_id)
        if entry is None:
            if not self.client.queue().holds(self.prompt_id):
                # Neither queued, running nor finished: the node lost it (restart).
                raise NodeUnreachable(self.client.url,
                                      f"prompt {self.prompt_id} vanished from the node")
            return False
        if entry.error is not None:
            err = entry.error
            raise JobFailed(self.prompt_id, node_id=err.get("node_id"),
                            class_type=err.get("node_type"),
                            exception_message=str(err.get("exception_message", "")),
                            exception_type=str(err.get("exception_type", "")),
                            node_url=self.client.url)
        if entry.interrupted:
            raise JobCancelled(self.prompt_id, "interrupted on the node")
        return True
