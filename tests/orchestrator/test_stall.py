"""When silence means trouble: the watchdog's pure decisions."""

from __future__ import annotations

from orchestrator.comfy.protocol import PromptPhase
from orchestrator.settings import load_settings
from orchestrator.stall import (
    SOCKET_SILENCE_MAX_S,
    STALL_CEILING_S,
    STALL_FLOOR_S,
    ProgressGaps,
    PromptWatchState,
    StallLimits,
    Verdict,
    expected_gap,
    progress_limit,
    socket_is_stale,
    socket_silence_allowed,
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


def test_a_node_known_for_long_gaps_is_allowed_three_of_them_before_a_reconnect() -> None:
    running = [PromptPhase.RUNNING]
    # Steps 8 s apart: the silence between two of them is no reason to reconnect...
    assert socket_silence_allowed(LIMITS, 8.0) == 24.0
    assert not socket_is_stale(8.5, running, LIMITS, expected_gap_s=8.0)
    assert socket_is_stale(24.5, running, LIMITS, expected_gap_s=8.0)
    # ...while on short gaps (or none known) the floor holds: a frozen socket is noticed
    # within seconds.
    assert socket_silence_allowed(LIMITS, 0.3) == socket_silence_allowed(LIMITS, None) == 5.0
    assert socket_is_stale(5.5, running, LIMITS, expected_gap_s=0.3)
    # However slow the node, the ceiling bounds both the gaps and the back-off.
    assert socket_silence_allowed(LIMITS, 400.0) == SOCKET_SILENCE_MAX_S
    assert socket_silence_needed(LIMITS, 1, 8.0) == 48.0
    assert socket_silence_needed(LIMITS, 2, 8.0) == SOCKET_SILENCE_MAX_S


def test_the_operator_sets_the_socket_silence_floor_and_ceiling() -> None:
    limits = load_settings({"COMFY_ORCH_STALL_SOCKET_SILENCE_S": "2",
                            "COMFY_ORCH_STALL_SOCKET_SILENCE_MAX_S": "30"}).stall_limits
    assert (limits.socket_silence_s, limits.socket_silence_max_s) == (2, 30)
    assert socket_silence_allowed(limits, 0.1) == 2 and socket_silence_allowed(limits, 20) == 30
    shipped = load_settings({}).stall_limits
    assert (shipped.socket_silence_s, shipped.socket_silence_max_s) == (5, SOCKET_SILENCE_MAX_S)
    lifted = load_settings({}, stall_socket_silence_s=90).stall_limits  # ceiling below floor
    assert socket_silence_allowed(lifted, 100) == lifted.socket_silence_max_s == 90


def test_the_expected_gap_is_the_longest_known_of_witnessed_and_per_step() -> None:
    assert expected_gap(None, None) is None
    assert expected_gap(6.5, None) == 6.5
    assert expected_gap(None, 8.0) == 8.0
    assert expected_gap(2.0, 8.0) == 8.0 and expected_gap(9.0, 8.0) == 9.0


def test_the_longest_quiet_stretch_is_kept_unless_a_reconnect_ended_it() -> None:
    gaps = ProgressGaps()
    assert gaps.witnessed_s is None
    for seconds in (1.0, 2.0, 7.0):  # looks during one slow step
        gaps.quiet(seconds)
    gaps.moved()
    gaps.quiet(3.0)
    gaps.moved()
    assert gaps.witnessed_s == 7.0
    # Frozen: silence until the watchdog reconnected, and progress at the next look. The
    # node was not quiet, its socket was: the gap does not make the watchdog more patient.
    gaps.quiet(20.0)
    gaps.moved(brought_by_reconnect=True)
    assert gaps.witnessed_s == 7.0
