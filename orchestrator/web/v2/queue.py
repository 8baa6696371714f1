"""Queue positions for queued jobs, from one cached scan of the queue.

The job store answers "how many items are queued" but not "where is this job": the
position is computed here from the queued jobs, oldest first (every v2 job has the same
priority, so that is the order the pool takes them in, up to fairness between owners).
One scan serves every request for ``TTL_S`` seconds, so polling clients cost one scan a
second however many there are.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from orchestrator.jobs import JobStatus
from orchestrator.store import JobStore

TTL_S = 1.0  # seconds a scan is reused; positions move at most once per finished item
PAGE = 200  # jobs per store page while scanning
SCAN_MAX = 10_000  # jobs scanned at most: the default queue bound


class QueuePositions:
    """``position(job_id)``: 1 for the next job to run, None when not queued."""

    def __init__(self, store: JobStore, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.clock = clock
        self._lock = threading.Lock()
        self._at = float("-inf")
        self._positions: dict[str, int] = {}

    def position(self, job_id: str) -> int | None:
        with self._lock:
            if self.clock() - self._at > TTL_S or job_id not in self._positions:
                self._positions = self._scan()
                self._at = self.clock()
            return self._positions.get(job_id)

    def _scan(self) -> dict[str, int]:
        newest_first: list[str] = []
        cursor = None
        while len(newest_first) < SCAN_MAX:
            page = self.store.list_jobs(status=JobStatus.QUEUED, limit=PAGE, cursor=cursor)
            newest_first += [job.id for job in page.jobs]
            cursor = page.next_cursor
            if cursor is None:
                break
        return {job_id: n for n, job_id in enumerate(reversed(newest_first), start=1)}
