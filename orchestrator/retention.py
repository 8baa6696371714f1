"""Job retention: how long finished jobs are kept, and the sweep that deletes them.

The policy is one duration (``keep``; None keeps every job until someone deletes it):
a job expires ``keep`` after it was created, and is deleted at the first sweep after
that at which it is finished (a job still running is never cut short). ``expires_at`` is
the pure answer every front end reports; ``RetentionSweep`` is the shell that carries it
out, with its outputs and, once nothing else names them, their bytes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from orchestrator.errors import OrchestratorError
from orchestrator.jobs import Job, utcnow
from orchestrator.outputs import OutputRecord
from orchestrator.store import JobStore

# seconds between sweeps: retention is counted in days, so minutes late costs nothing
DEFAULT_SWEEP_S = 300.0
SWEEP_BATCH = 200  # jobs deleted per transaction, so writers never wait long

log = logging.getLogger(__name__)


def expires_at(created_at: datetime, keep: timedelta | None) -> datetime | None:
    """When a job created at ``created_at`` may be deleted; None when jobs are kept."""
    return None if keep is None else created_at + keep


def freed_blobs(job: Job, outputs: list[OutputRecord]) -> set[str]:
    """The blobs a deleted job named: its outputs' and its input images'."""
    return {record.sha256 for record in outputs} | set(job.spec.images.values())


class RetentionSweep:
    """Deletes finished jobs past ``keep`` every ``every`` seconds, on a thread of its own.

    ``release(sha256)`` is called for each blob a deleted job named; it must delete the
    bytes only if nothing else names them. ``run_once`` is the deterministic driver;
    ``start``/``close`` run it periodically (close is harmless twice).
    """

    def __init__(self, store: JobStore, release: Callable[[str], object], *,
                 keep: timedelta, every: float = DEFAULT_SWEEP_S,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store, self.release, self.keep, self.every = store, release, keep, every
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Delete every finished job past its retention; how many went."""
        cutoff = self.clock() - self.keep
        total = 0
        while True:
            batch = self.store.delete_expired_jobs(cutoff, limit=SWEEP_BATCH)
            for job, outputs in batch:
                for sha256 in sorted(freed_blobs(job, outputs)):
                    self.release(sha256)
            total += len(batch)
            if len(batch) < SWEEP_BATCH:
                return total

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="retention sweep",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.run_once()
            except OrchestratorError as exc:  # the store is busy or closing: next time
                log.warning("deleting expired jobs failed: %s", exc)

    def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()
