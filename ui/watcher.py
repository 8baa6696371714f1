"""Background readers of job event streams, so a job card can show live steps and previews.

A :class:`Watcher` is a daemon thread that follows one job's ``/events`` stream and folds
each frame into a :class:`~ui.events.JobProgress`; the card's fragment reads the latest
value on each tick. Threads never touch Streamlit: they only replace one immutable value
under a lock. A dropped stream is reopened from the last event id (``Last-Event-ID``), so
nothing is missed; the thread ends when the job ends, after too many failures, or on
``stop()``. :class:`Watchers` keeps one per job for a browser session.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from ui.api import ApiClient, PanelError
from ui.events import JobProgress, apply

# Reconnect delays (seconds) after a dropped stream; then the watcher gives up and the card
# falls back to statuses from GET /v1/jobs/{id}.
RECONNECT_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 5.0)
MAX_WATCHERS = 16  # per browser session; the oldest is stopped when more are asked for

ClientFactory = Callable[[], ApiClient]


class Watcher:
    """Follows one job's events on a daemon thread; ``progress()`` is the latest state."""

    def __init__(self, job_id: str, client_factory: ClientFactory) -> None:
        self.job_id = job_id
        self._client_factory = client_factory
        self._progress = JobProgress(job_id)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"events {job_id}", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def progress(self) -> JobProgress:
        with self._lock:
            return self._progress

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Ask the thread to end; it does at its next event or keep-alive."""
        self._stop.set()

    def _run(self) -> None:
        client = self._client_factory()
        failures = 0
        while not self._stop.is_set() and not self.progress().finished:
            try:
                self._follow(client)
                failures = 0
            except PanelError as exc:
                self.error = str(exc)
                if failures >= len(RECONNECT_DELAYS_S):
                    return
                self._stop.wait(RECONNECT_DELAYS_S[failures])
                failures += 1

    def _follow(self, client: ApiClient) -> None:
        with client.events(self.job_id, after=self.progress().last_id) as frames:
            for frame in frames:
                with self._lock:
                    self._progress = apply(self._progress, frame)
                if self._stop.is_set():
                    return


class Watchers:
    """One watcher per job for a browser session, the most recent ``limit`` kept alive."""

    def __init__(self, client_factory: ClientFactory, *, limit: int = MAX_WATCHERS) -> None:
        self._client_factory = client_factory
        self._limit = limit
        self._watchers: OrderedDict[str, Watcher] = OrderedDict()

    def watch(self, job_id: str) -> Watcher:
        """The job's watcher, started (again, if its stream gave up) when needed."""
        watcher = self._watchers.get(job_id)
        if watcher is None or (not watcher.alive and not watcher.progress().finished):
            watcher = Watcher(job_id, self._client_factory).start()
            self._watchers[job_id] = watcher
        self._watchers.move_to_end(job_id)
        while len(self._watchers) > self._limit:
            _, oldest = self._watchers.popitem(last=False)
            oldest.stop()
        return watcher

    def stop_all(self) -> None:
        for watcher in self._watchers.values():
            watcher.stop()
        self._watchers.clear()
