"""Following one prompt on a node until it has really ended.

A watcher is entered before its prompt is posted, so no event is missed. It reads the
prompt's messages (from the node's shared socket, or a socket of its own) and, when the
socket stays silent, asks the node where the prompt is. A prompt is declared lost only
when repeated look-ups agree it is gone (``ComfyClient.locate``), never on one read.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

import websocket

from orchestrator.comfy.messages import (
    Executing,
    ExecutionError,
    ExecutionInterrupted,
    ExecutionStart,
    Message,
    Preview,
    parse_message,
)
from orchestrator.comfy.protocol import HistoryEntry, PromptPhase
from orchestrator.comfy.stream import NodeStream, open_event_socket
from orchestrator.comfy.translate import translated
from orchestrator.errors import (
    JobCancelled,
    JobFailed,
    NodeProtocolError,
    NodeTimeout,
    NodeUnreachable,
)

if TYPE_CHECKING:
    from orchestrator.comfy.client import ComfyClient

# Timeouts (seconds)
# How long a websocket read blocks before the loop checks its deadlines.
SOCKET_POLL_INTERVAL = 1.0
# Silence on the socket after which the node is asked directly, in case the end message
# was lost (a reconnect, a proxy dropping frames).
HISTORY_CHECK_INTERVAL = 5.0
# How long a watcher waits for the node's shared socket to be connected before submitting.
STREAM_CONNECT_WAIT = 3.0

MessageHandler = Callable[[Message], None]


class PromptWatch:
    """Follows one prompt; entered before the prompt is submitted so no event is missed.

    With a ``stream`` (the node's shared socket) it reads that prompt's messages from it
    and posts under the stream's client id; without one it opens a socket of its own.
    ``history_interval`` is how long silence lasts before the node is asked directly
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
        self._queue: queue.SimpleQueue[Message] | None = None
        self.started = False

    def __enter__(self) -> PromptWatch:
        if self.stream is not None:
            self._queue = self.stream.subscribe(self.prompt_id)
            # Events sent before the shared socket is up would be lost; look-ups cover a
            # node that is down, so this wait is bounded and never fails.
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
        with translated(self.client.url, "websocket connect"):
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
                self._check_deadlines(now, deadline, timeout, last_seen, idle_timeout)
                if now - last_check > self.history_interval:
                    last_check = now
                    if self._ended_per_lookup(on_message):
                        return
                continue
            if not self._mine(msg):
                continue
            last_seen = now
            if self._handle(msg, on_message):
                return

    def _check_deadlines(self, now: float, deadline: float | None, timeout: float | None,
                         last_seen: float, idle_timeout: float | None) -> None:
        if deadline and now > deadline:
            raise NodeTimeout(self.client.url, f"prompt {self.prompt_id} took longer "
                              f"than {timeout:.0f}s")
        if self.started and idle_timeout and now - last_seen > idle_timeout:
            raise NodeTimeout(self.client.url, f"no event for {idle_timeout:.0f}s while "
                              f"prompt {self.prompt_id} was running (stuck node?)")

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

    def _ended_per_lookup(self, on_message: MessageHandler | None = None) -> bool:
        """Ask the node where the prompt is: True once it ended well; raise if it failed,
        was interrupted, or is confirmed gone. A start the socket never brought is
        delivered from what HTTP shows (an ``execution_start`` without a timestamp)."""
        state = self.client.locate(self.prompt_id)
        if state.phase == PromptPhase.RUNNING and not self.started:
            self._handle(ExecutionStart(prompt_id=self.prompt_id), on_message)
        if state.phase == PromptPhase.ABSENT:
            if self.client.was_cancelled(self.prompt_id):
                # ComfyUI 0.30 drops a canceled pending prompt without a trace.
                raise JobCancelled(self.prompt_id, "canceled")
            # Neither queued, running nor finished over repeated looks: the node lost it.
            raise NodeUnreachable(self.client.url,
                                  f"prompt {self.prompt_id} vanished from the node")
        if state.phase != PromptPhase.DONE:
            return False  # also right after execution_success: the write is ms away
        assert state.entry is not None
        raise_for_entry(state.entry, node_url=self.client.url)
        return True


def raise_for_entry(entry: HistoryEntry, *, node_url: str) -> None:
    """Raise what a finished prompt's history entry says went wrong, if anything."""
    if entry.error is not None:
        err = entry.error
        raise JobFailed(entry.prompt_id, node_id=err.get("node_id"),
                        class_type=err.get("node_type"),
                        exception_message=str(err.get("exception_message", "")),
                        exception_type=str(err.get("exception_type", "")),
                        node_url=node_url)
    if entry.interrupted:
        raise JobCancelled(entry.prompt_id, "interrupted on the node")
