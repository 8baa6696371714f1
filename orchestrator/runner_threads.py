"""The threads that run one node's items, each kept for the next item (a small pool).

An item's thread follows its prompt for the prompt's whole life (it blocks on the node's
events), so the threads cannot be a fixed-size executor; they can be reused. Starting and
ending a thread per item cost every job about 120 us of CPU; handing an item to a waiting
thread costs about 30 us.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable

RUNNER_IDLE = 30.0  # how long an idle runner thread waits for the next item (seconds)


class _Runner:
    """One runner thread's hand-off: the task given to it while it waited."""

    def __init__(self) -> None:
        self.task: tuple[Callable[[], None], str] | None = None
        self.given = threading.Event()


class RunnerThreads:
    """The threads that run one node's items, each kept for the next item.

    A thread started per item cost every job a ``Thread.start`` and a teardown. Here a
    thread that finished its item waits ``idle`` seconds for another (the latest to finish
    is handed the next, so the others run out their wait and end: no more threads stay
    than the node had items at once lately). A thread is named after the item it runs
    (``item-<id>``) and after its node while it waits (``runner-<node>``).
    """

    def __init__(self, node: str, *, idle: float = RUNNER_IDLE) -> None:
        self.idle_name, self.idle = f"runner-{node}", idle
        self.started = 0  # threads started so far
        self._waiting: list[_Runner] = []
        self._lock = threading.Lock()
        self._closed = False

    def run(self, task: Callable[[], None], name: str) -> None:
        """Run ``task`` on a waiting thread, or on a new one when none waits."""
        with self._lock:
            if self._waiting:
                runner = self._waiting.pop()
                runner.task = (task, name)
                runner.given.set()  # under the lock: a runner giving up sees the task
                return
            self.started += 1
        runner = _Runner()
        runner.task = (task, name)
        threading.Thread(target=self._serve, args=(runner,), name=name, daemon=True).start()

    def _serve(self, runner: _Runner) -> None:
        thread = threading.current_thread()
        while runner.task is not None:
            task, thread.name = runner.task
            try:
                task()
            except BaseException:  # reported as an ended thread's would be; the thread stays
                threading.excepthook(threading.ExceptHookArgs(
                    (*sys.exc_info(), thread)))
            thread.name = self.idle_name
            self._next(runner)

    def _next(self, runner: _Runner) -> None:
        """Wait for the next task (left in ``runner.task``; None: end the thread)."""
        with self._lock:
            runner.task = None
            if self._closed:
                return
            runner.given.clear()
            self._waiting.append(runner)
        runner.given.wait(self.idle)
        with self._lock:
            if runner.task is None and runner in self._waiting:
                self._waiting.remove(runner)  # waited long enough (or closed): end

    def waiting(self) -> int:
        """Threads waiting for an item now."""
        with self._lock:
            return len(self._waiting)

    def close(self) -> None:
        """End the waiting threads; busy ones end after their item."""
        with self._lock:
            self._closed = True
            waiting, self._waiting = self._waiting, []
            for runner in waiting:
                runner.given.set()
