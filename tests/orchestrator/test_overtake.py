"""Where a prompt goes in a node's own queue so a higher priority overtakes there (pure)."""

from __future__ import annotations

import math

from orchestrator.overtake import Waiting, overtake_floor, queue_number


def test_a_higher_priority_goes_just_before_the_first_lower_one_waiting() -> None:
    waiting = [Waiting(0, 7.0), Waiting(0, 8.0)]
    assert queue_number(10, waiting) == 6.0
    assert queue_number(0, waiting) is None  # not higher: the back of the queue, as usual


def test_it_stays_behind_waiting_prompts_of_its_own_priority_or_higher() -> None:
    waiting = [Waiting(10, 5.0), Waiting(0, 7.0), Waiting(20, 4.0)]
    assert queue_number(10, waiting) == 6.0  # after 4 and 5, before 7
    assert queue_number(30, waiting) == 3.0  # before all of them


def test_numbers_a_node_did_not_give_are_left_out() -> None:
    assert queue_number(10, [Waiting(0, math.nan)]) is None
    assert overtake_floor([Waiting(0, math.nan)]) is None


def test_the_floor_is_the_lowest_waiting_priority() -> None:
    assert overtake_floor([]) is None
    assert overtake_floor([Waiting(5, 1.0), Waiting(2, 2.0)]) == 2
