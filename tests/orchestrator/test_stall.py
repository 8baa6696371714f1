"""When silence means trouble: the watchdog's pure decisions."""

from __future__ import annotations

from orchestrator.comfy.protocol import PromptPhase
from orchestrator.settings import load_settings
from orchestrator.stall import (
    SOCKET_SILENCE_MAX_S,
    STALL_CEILING_S,
    STALL_FLOOR_S,
    PromptWatchState,
    StallLimits,
    Verdict,
    progress_limit,
    socket_is_stale,
    socket_silence_needed,
    verdict,
)

LIMITS = StallLimits(floor_s=10.0, ceiling_s=100.0, factor=4.0, socket_silence_s=5.0)


def test_the_progress_limit_is_a_multiple_of_the_measured_time_within_floor_and_ceiling(
) -> None:
    assert progress_limit(5.0, LIMITS) == 20.0
    assert progress_limit(1.0, LIMITS) == 10.0     # floor
    assert progress_limit(60.0, LIMITS) == 100.0   # ceiling
    assert progress_limit(None, LIMITS) == 100.0   # nothing measured: the ceiling


def test_shipped_defaults_fit_real_generation_times_not_test_times() -> None:
    assert STALL_FLOOR_S >= 60 and STALL_CEILING_S >= 600
    settings = load_settings({"COMFY_ORCH_STALL_CEILING_S": "1200"})
    assert settings.stall_limits.ceiling_s == 1200 and settings.stall_limits.floor_s == 120


def test_a_ceiling_below_the_floor_is_lifted_to_it() -> None:
    limits = load_settings({}, stall_floor_s=300, stall_ceiling_s=60).stall_limits
    assert limits.ceiling_s == limits.floor_s == 300


def test_a_quiet_socket_is_stale_only_when_http_shows_its_work_running_or_ended() -> None:
    assert socket_is_stale(6.0, [PromptPhase.RUNNING], LIMITS)
    assert socket_is_stale(6.0, [PromptPhase.PENDING, PromptPhase.DONE], LIMITS)
    assert not socket_is_stale(6.0, [PromptPhase.PENDING], LIMITS)  # waits behind others
    assert not socket_is_stale(4.0, [PromptPhase.RUNNING], LIMITS)  # not quiet for long
    assert not socket_is_stale(60.0, [], LIMITS)


def state(phase: PromptPhase | None, idle: float, *, expected: float | None = 5.0,
          before: bool = False) -> PromptWatchState:
    return PromptWatchState(phase=phase, idle_s=idle, expected_s=expected,
                            given_up_before=before)


def test_a_running_prompt_without_progress_past_its_limit_is_given_up_once() -> None:
    assert verdict(state(PromptPhase.RUNNING, 21.0), LIMITS) == Verdict.GIVE_UP
    assert verdict(state(PromptPhase.RUNNING, 19.0), LIMITS) == Verdict.WAIT
    assert verdict(state(PromptPhase.RUNNING, 500.0, before=True), LIMITS) == Verdict.WAIT


def test_a_prompt_not_running_is_never_given_up() -> None:
    for phase in (PromptPhase.PENDING, PromptPhase.DONE, PromptPhase.ABSENT, None):
        assert verdict(state(phase, 500.0), LIMITS) == Verdict.WAIT


def test_reconnects_that_bring_no_progress_back_off() -> None:
    running = [PromptPhase.RUNNING]
    assert socket_is_stale(6.0, running, LIMITS, fruitless=0)
    assert not socket_is_stale(6.0, running, LIMITS, fruitless=1)  # now 10 s are needed
    assert socket_is_stale(11.0, running, LIMITS, fruitless=1)
    assert socket_silence_needed(LIMITS, 40) == SOCKET_SILENCE_MAX_S
