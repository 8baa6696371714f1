"""A higher priority overtakes on the node too, not only in the pool's queue (pure).

The pool keeps up to ``max_in_flight`` prompts on each node, so one usually waits in the
node's own queue behind the one running. The pool's queue runs by priority, but ComfyUI
runs its pending prompts by their ``number``, lowest first, and a prompt posted without
one goes to the back. So a prompt of a higher priority than one already waiting on a node
may be claimed by that node beyond its ``max_in_flight`` (by one) and is posted with a
``number`` just before the first waiting prompt of a lower priority: it runs right after
the one running now, behind any waiting prompt of its own priority or higher.

Nothing is taken back off the node: every prompt posted still runs once, under its own
id, so recovery and reconciling by prompt id are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

# How far before the first lower-priority prompt one is placed when nothing of ours waits
# ahead of it (ComfyUI takes any float as a number).
NUMBER_GAP = 1.0


@dataclass(frozen=True)
class Waiting:
    """A prompt of ours posted to a node and not started there yet."""

    priority: int
    number: float  # ComfyUI's queue number, as the node answered the post


def _known(waiting: Sequence[Waiting]) -> list[Waiting]:
    return [w for w in waiting if math.isfinite(w.number)]


def overtake_floor(waiting: Sequence[Waiting]) -> int | None:
    """The priority an item must exceed to overtake on this node: the lowest of its
    waiting prompts (None: nothing waits there, nothing to overtake)."""
    known = _known(waiting)
    return min(w.priority for w in known) if known else None


def queue_number(priority: int, waiting: Sequence[Waiting]) -> float | None:
    """The ``number`` to post a prompt of ``priority`` with, so it runs before every
    waiting prompt of a lower priority and after the others; None when none is lower
    (posted without a number: the back of the node's queue, as usual)."""
    known = _known(waiting)
    lower = [w.number for w in known if w.priority < priority]
    if not lower:
        return None
    first_lower = min(lower)
    ahead = [w.number for w in known if w.priority >= priority and w.number < first_lower]
    if not ahead:
        return first_lower - NUMBER_GAP
    return (max(ahead) + first_lower) / 2
