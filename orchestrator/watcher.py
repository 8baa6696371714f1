"""Watch one folder and report which names changed, once a burst of changes settles.

Only events that change content count: a file created, written (modified, or closed after
writing), moved or deleted. Opening or reading a file (``opened``, ``closed_no_write``)
changes nothing; counting those made every reload's own reads trigger the next reload, a
loop that pinned a core and starved new files. The kernel is asked for the counted events
only (watchdog's ``event_filter``), and the handler checks the type again for observers
that cannot filter.

An editor's save is a storm of events (temporary file, writes, rename, chmod); they are
coalesced into one batch once the folder has been quiet for ``settle_s`` (or
``max_delay_s`` after the first, so a file written continuously is still picked up). The
batch is handed to ``on_change`` on the watcher's own thread; an exception there is
logged and the watcher keeps watching, so one bad file never stops it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

log = logging.getLogger(__name__)

# The quiet time that ends a burst: an editor's save (temporary file, rename, chmod) takes
# a few milliseconds, so 50 ms joins it into one reload and still feels instant.
SETTLE_S = 0.05
# A burst that never goes quiet (a file written continuously) is still flushed this long
# after its first event, so changes show within a fraction of a second.
MAX_DELAY_S = 0.25
# How long close() waits for each thread; they normally stop within one wake-up.
JOIN_TIMEOUT_S = 5.0

CONTENT_EVENTS: tuple[type[FileSystemEvent], ...] = (
    FileCreatedEvent, FileModifiedEvent, FileMovedEvent, FileDeletedEvent, FileClosedEvent)
_CONTENT_TYPES = frozenset(cls.event_type for cls in CONTENT_EVENTS)


def changed_paths(event: FileSystemEvent) -> tuple[str, ...]:
    """The file paths an event changed: none for directories and for reads."""
    if event.is_directory or event.event_type not in _CONTENT_TYPES:
        return ()
    paths = (event.src_path, getattr(event, "dest_path", "") or "")
    return tuple(str(p) for p in paths if p)


def wait_left(first: float, last: float, now: float, *, settle_s: float = SETTLE_S,
              max_delay_s: float = MAX_DELAY_S) -> float:
    """Seconds to wait before flushing a burst that began at ``first`` and last grew at
    ``last``; zero or less means flush now."""
    return min(last + settle_s, first + max_delay_s) - now


class FolderWatcher:
    """Calls ``on_change(names)`` from its own thread after changes in ``folder`` settle.

    ``name_of`` maps a changed path to the name reported (None: not interesting).
    Start with :meth:`start`; :meth:`close` stops both threads (harmless twice).
    """

    def __init__(self, folder: Path, on_change: Callable[[set[str]], None], *,
                 name_of: Callable[[str], str | None], settle_s: float = SETTLE_S,
                 max_delay_s: float = MAX_DELAY_S) -> None:
        self.folder = folder
        self._on_change = on_change
        self._name_of = name_of
        self._settle_s = settle_s
        self._max_delay_s = max_delay_s
        self._cond = threading.Condition()
        self._pending: set[str] = set()
        self._first = self._last = 0.0
        self._closed = False
        self._observer = Observer()
        self._thread = threading.Thread(target=self._run, name=f"watch {folder.name}",
                                        daemon=True)

    def start(self) -> FolderWatcher:
        self._observer.schedule(_Handler(self), str(self.folder), recursive=False,
                                event_filter=list(CONTENT_EVENTS))
        self._observer.daemon = True
        self._observer.start()
        self._thread.start()
        return self

    def add(self, paths: tuple[str, ...]) -> None:
        """Record changed paths (called from watchdog's thread)."""
        names = {n for p in paths if (n := self._name_of(p))}
        if not names:
            return
        with self._cond:
            now = time.monotonic()
            if not self._pending:
                self._first = now
            self._pending |= names
            self._last = now
            self._cond.notify()

    def _run(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self._on_change(batch)
            except Exception:  # a bad file must never stop the watcher: log and go on
                log.exception("reloading %s from %s failed; still watching",
                              ", ".join(sorted(batch)), self.folder)

    def _next_batch(self) -> set[str] | None:
        with self._cond:
            while not self._closed:
                if not self._pending:
                    self._cond.wait()
                    continue
                left = wait_left(self._first, self._last, time.monotonic(),
                                 settle_s=self._settle_s, max_delay_s=self._max_delay_s)
                if left <= 0:
                    batch, self._pending = self._pending, set()
                    return batch
                self._cond.wait(left)
            return None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._observer.is_alive():
            self._observer.stop()
            self._observer.join(JOIN_TIMEOUT_S)
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(JOIN_TIMEOUT_S)


class _Handler(FileSystemEventHandler):
    """Hands watchdog's events (from its thread) to the watcher; never raises there."""

    def __init__(self, watcher: FolderWatcher) -> None:
        self.watcher = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = changed_paths(event)
        if paths:
            self.watcher.add(paths)
