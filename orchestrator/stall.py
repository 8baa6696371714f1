"""When a node's silence means trouble (pure: no I/O, no clock, no threads).

ComfyUI's websocket can go silent for good while its HTTP routes keep answering, and a
prompt can hang on a node without failing. The watchdog (``watchdog.py``) samples what it
sees and asks these functions what to do: reconnect a socket, or give up on a prompt on
that node and requeue it elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from orchestrator.comfy.protocol import PromptPhase

# Defaults (seconds). A prompt may make no visible progress for a while legitimately:
# loading a checkpoint from disk, a VAE decode of a large image, or a video model's first
# step, each of which can take a minute or more on a real GPU. So a prompt is given up
# only after STALL_FACTOR times its measured duration on that node, never sooner than the
# floor, and never later than the ceiling (which also applies when nothing was measured).
STALL_FACTOR = 4.0
STALL_FLOOR_S = 120.0
STALL_CEILING_S = 900.0
# Silence on a node's socket, while it has work in flight, after which HTTP is asked
# where that work is and the socket is reconnected: the floor. ComfyUI sends progress at
# every sampler step (well under a second on a GPU) and an event before every node, so
# five quiet seconds are already unusual, and a reconnect is cheap: ComfyUI resends the
# running prompt's `executing` to it.
SOCKET_SILENCE_S = 5.0
# A node known to go quiet longer between frames (a video model's steps, a large image on
# a small GPU, a long VAE decode) is given this many times the longest gap it is known for:
# the longest its running prompt has gone without progress so far, or its measured seconds
# per step for that workload. Three times: a step that is slow once is not a dead socket.
SOCKET_GAP_FACTOR = 3.0
# The most silence ever allowed before a reconnect (seconds): the ceiling of what a node's
# known gaps buy, and of the back-off below. A prompt that sends nothing for a long time
# (a slow node without progress events, or a hung one) keeps a healthy socket quiet too:
# each reconnect that brought no progress doubles the silence needed for the next.
SOCKET_SILENCE_MAX_S = 60.0


@dataclass(frozen=True)
class StallLimits:
    """How long silence may last; an operator's settings (``Settings.stall_*``)."""

    floor_s: float = STALL_FLOOR_S
    ceiling_s: float = STALL_CEILING_S
    factor: float = STALL_FACTOR
    socket_silence_s: float = SOCKET_SILENCE_S
    socket_gap_factor: float = SOCKET_GAP_FACTOR
    socket_silence_max_s: float = SOCKET_SILENCE_MAX_S


def progress_limit(expected_s: float | None, limits: StallLimits) -> float:
    """Seconds a running prompt may go without progress: ``factor`` times its expected
    duration (None: not measured yet) within ``[floor_s, ceiling_s]``."""
    if expected_s is None:
        return limits.ceiling_s
    return min(max(expected_s * limits.factor, limits.floor_s), limits.ceiling_s)


def socket_is_stale(silence_s: float, phases: list[PromptPhase], limits: StallLimits,
                    fruitless: int = 0, expected_gap_s: float | None = None) -> bool:
    """Whether a node's socket should be reconnected: silent for longer than its work
    explains (``socket_silence_needed``) while HTTP shows one of its prompts running or
    already ended (whose end the socket then never brought). Pending prompts alone
    explain a quiet socket."""
    if silence_s < socket_silence_needed(limits, fruitless, expected_gap_s):
        return False
    return any(p in (PromptPhase.RUNNING, PromptPhase.DONE) for p in phases)


def socket_silence_allowed(limits: StallLimits, expected_gap_s: float | None) -> float:
    """Seconds of silence a node's running work explains: ``socket_gap_factor`` times the
    longest gap expected between its frames (None: nothing known), never less than the
    floor ``socket_silence_s`` (so a frozen socket on fast work is noticed in seconds)
    nor more than the ceiling ``socket_silence_max_s``."""
    floor = limits.socket_silence_s
    ceiling = max(limits.socket_silence_max_s, floor)
    if not expected_gap_s or expected_gap_s <= 0:
        return floor
    return min(max(floor, expected_gap_s * limits.socket_gap_factor), ceiling)


def socket_silence_needed(limits: StallLimits, fruitless: int,
                          expected_gap_s: float | None = None) -> float:
    """Seconds of silence before a reconnect: what the work explains
    (``socket_silence_allowed``), doubled by each of ``fruitless`` reconnects in a row
    that brought no progress, up to the ceiling."""
    allowed = socket_silence_allowed(limits, expected_gap_s)
    ceiling = max(limits.socket_silence_max_s, allowed)
    return min(allowed * (1 << min(fruitless, 16)), ceiling)


def expected_gap(witnessed_s: float | None, step_s: float | None) -> float | None:
    """The longest gap between frames a running prompt is expected to leave: the longest
    it has left so far, or its node's measured seconds per step for its workload,
    whichever is longer (None: neither known yet)."""
    known = [s for s in (witnessed_s, step_s) if s is not None and s > 0]
    return max(known) if known else None


@dataclass
class ProgressGaps:
    """The longest stretch a running prompt went without progress, as sampled.

    The watchdog looks once a second, so each stretch is known from below (it began at or
    before the look that saw the last progress, and lasted past the last look that saw
    none): too short a figure only makes a reconnect come sooner. A stretch that ended at
    the look right after a reconnect was the socket's silence, not the node's (the new
    socket brought what the old one held back), and teaches nothing.
    """

    longest_s: float = 0.0
    open_s: float = 0.0  # the stretch going on now, as far as it was witnessed

    def quiet(self, seconds: float) -> None:
        """A look saw no progress for ``seconds`` (since the last progress or the start)."""
        self.open_s = max(self.open_s, seconds)

    def moved(self, *, brought_by_reconnect: bool = False) -> None:
        """A look saw progress: the open stretch ended."""
        if not brought_by_reconnect:
            self.longest_s = max(self.longest_s, self.open_s)
        self.open_s = 0.0

    @property
    def witnessed_s(self) -> float | None:
        return self.longest_s or None


class Verdict(StrEnum):
    """What to do with one prompt in flight."""

    WAIT = "wait"      # nothing wrong, or nothing to conclude yet
    GIVE_UP = "give_up"  # interrupt it on this node and requeue it elsewhere


@dataclass(frozen=True)
class PromptWatchState:
    """One prompt in flight as the watchdog last saw it."""

    phase: PromptPhase | None  # per HTTP; None when not asked this round
    idle_s: float              # since its last progress (or since it was seen running)
    expected_s: float | None   # its measured duration on this node, if any
    given_up_before: bool      # already moved once for a stall: never twice


def verdict(state: PromptWatchState, limits: StallLimits) -> Verdict:
    """GIVE_UP a prompt that HTTP shows running with no progress for longer than its
    ``progress_limit``; at most once per item (a second stall is left to the node)."""
    if state.given_up_before or state.phase != PromptPhase.RUNNING:
        return Verdict.WAIT
    if state.idle_s < progress_limit(state.expected_s, limits):
        return Verdict.WAIT
    return Verdict.GIVE_UP


def stall_reason(node: str, idle_s: float, limit_s: float) -> str:
    """The sentence recorded on an item that was moved off a stalled node."""
    return (f"no progress for {idle_s:.0f}s on node {node} (limit {limit_s:.0f}s from its "
            "measured speed); interrupted there and requeued on another node")
