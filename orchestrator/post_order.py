"""Prompts reach a node in the order the node claimed their items.

Each claimed item is prepared and posted on a thread of its own (render, uploads, the
rendered graph's write, then ``POST /prompt``), so two items claimed a moment apart could
reach ComfyUI in either order, and ComfyUI runs what it holds in the order it got it:
a later submit could run first. Here each claim takes a ticket, and a post waits until
every earlier ticket of the node has posted or given up. The wait is bounded: an earlier
item stuck in a slow upload delays the ones behind it by ``MAX_WAIT_S`` at most, not by
its own timeout.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

MAX_WAIT_S = 10.0  # the longest a post waits for the posts claimed before it


class PostOrder:
    """One node's tickets, handed out in claim order (thread-safe)."""

    def __init__(self, *, max_wait_s: float = MAX_WAIT_S) -> None:
        self.max_wait_s = max_wait_s
        self._next = itertools.count()
        self._open: set[int] = set()  # tickets taken and neither posted nor given up
        self._changed = threading.Condition()

    def ticket(self) -> int:
        """A place in line: call in claim order."""
        with self._changed:
            number = next(self._next)
            self._open.add(number)
            return number

    @contextmanager
    def turn(self, ticket: int) -> Iterator[None]:
        """Wait until every earlier ticket is done (or ``max_wait_s``), then hold the
        line while the caller posts; the ticket is done when the block ends."""
        deadline = time.monotonic() + self.max_wait_s
        with self._changed:
            while any(t < ticket for t in self._open):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
        try:
            yield
        finally:
            self.done(ticket)

    def done(self, ticket: int) -> None:
        """``ticket`` posted or never will (failed, canceled first): the next may go.
        Idempotent."""
        with self._changed:
            if ticket in self._open:
                self._open.discard(ticket)
                self._changed.notify_all()

    def waiting(self) -> int:
        """Tickets not done yet."""
        with self._changed:
            return len(self._open)
