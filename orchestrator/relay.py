"""Events shared between replicas on one PostgreSQL, through LISTEN/NOTIFY.

A replica's ``RelayedBus`` is its ``EventBus`` that also sends every event it publishes
on a PostgreSQL channel, and publishes locally every event another replica sent. So an
SSE stream, a gateway websocket or a v2 ``events()`` opened on replica B shows the
progress and outputs of an item that replica A runs. Each replica numbers events in its
own bus; a client that reconnects to another replica resumes from a snapshot when its
``Last-Event-ID`` means nothing there (``EventBus.subscribe``).

Events are ephemeral here as in one process: one that a replica misses while its
listening connection is down is not replayed (the store holds the state it reports).
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import psycopg
from pydantic import TypeAdapter, ValidationError

from orchestrator.events import EventBus, JobEvent, PreviewEvent, _Event

CHANNEL = "comfy_orch_events"
MAX_PAYLOAD = 7900  # bytes; PostgreSQL refuses a NOTIFY payload of 8000 or more
# Timeouts (seconds)
LISTEN_POLL_S = 1.0  # how often the listener checks whether it should stop
RECONNECT_S = 1.0  # wait before listening again after the connection dropped

_EVENT: TypeAdapter[Any] = TypeAdapter(JobEvent)


def encode(origin: str, event: _Event) -> str | None:
    """The NOTIFY payload for ``event``, or None when it is not relayed: previews carry
    images too large for a notification, and a client asks the running replica for them."""
    if isinstance(event, PreviewEvent):
        return None
    payload = json.dumps({"origin": origin, "event": event.model_dump(mode="json")})
    return payload if len(payload.encode()) <= MAX_PAYLOAD else None


def decode(origin: str, payload: str) -> _Event | None:
    """The event another replica sent, or None (our own, or not an event)."""
    try:
        message = json.loads(payload)
        if message.get("origin") == origin:
            return None
        event = _EVENT.validate_python(message["event"])
    except (ValueError, KeyError, TypeError, ValidationError, AttributeError):
        return None
    return event if isinstance(event, _Event) else None


class RelayedBus(EventBus):
    """An ``EventBus`` whose events reach every replica on the database at ``url``."""

    def __init__(self, url: str, origin: str, *, seq_base: int = 0) -> None:
        super().__init__(seq_base=seq_base)
        self.url, self.origin = url, origin
        self._send_lock = threading.Lock()
        self._sender: psycopg.Connection[Any] | None = None
        self._stopped = threading.Event()
        self._listening = threading.Event()
        self._thread = threading.Thread(target=self._listen_loop, daemon=True,
                                        name="event-relay")
        self._thread.start()

    def publish(self, event: _Event) -> _Event:
        """Publish here, then to the other replicas (a failed send loses only the relay)."""
        published = super().publish(event)
        payload = encode(self.origin, published)
        if payload is not None:
            self._send(payload)
        return published

    def wait_listening(self, timeout: float) -> bool:
        """Whether the listener is subscribed to the channel (within ``timeout``)."""
        return self._listening.wait(timeout)

    def close(self) -> None:
        """Stop listening and sending; harmless twice."""
        self._stopped.set()
        self._thread.join()
        with self._send_lock:
            if self._sender is not None:
                self._sender.close()
                self._sender = None

    def _send(self, payload: str) -> None:
        with self._send_lock, contextlib.suppress(psycopg.Error):
            if self._stopped.is_set():
                return
            if self._sender is None or self._sender.closed:
                self._sender = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
            self._sender.execute("SELECT pg_notify(%s, %s)", [CHANNEL, payload])

    def _listen_loop(self) -> None:
        while not self._stopped.is_set():
            try:
                self._listen()
            except psycopg.Error:
                self._listening.clear()
                self._stopped.wait(RECONNECT_S)

    def _listen(self) -> None:
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self._listening.set()
            while not self._stopped.is_set():
                for note in conn.notifies(timeout=LISTEN_POLL_S):
                    event = decode(self.origin, note.payload)
                    if event is not None:
                        super().publish(event)
