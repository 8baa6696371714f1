"""Progress weighs what takes time: a sampler's steps, not its share of the graph's nodes."""

from __future__ import annotations

from orchestrator.comfy.messages import Executing, ExecutionCached, Progress
from orchestrator.comfy.progress import GraphProgress
from orchestrator.comfy.weights import (
    LOADER_WEIGHT,
    NODE_WEIGHT,
    SAMPLER_START_WEIGHT,
    STEP_WEIGHT,
    node_weights,
    weighted_fraction,
)
from tests import graphs


def test_a_sampler_weighs_its_steps_and_other_nodes_one_each() -> None:
    weights = node_weights(graphs.txt2img(steps=20))
    assert weights["3"] == 20 * STEP_WEIGHT + SAMPLER_START_WEIGHT
    assert weights["4"] == LOADER_WEIGHT
    assert {w for n, w in weights.items() if n not in ("3", "4")} == {NODE_WEIGHT}


def test_the_sampler_moves_the_percentage_through_its_steps() -> None:
    """Counting nodes put 4 of these 7 nodes (57 %) done when the sampler
    started and 71 % at its last step; by weight the steps carry most of the way."""
    tracker = GraphProgress.for_graph(graphs.txt2img(steps=20))
    for node in ("4", "6", "7", "5"):
        tracker.update(Executing("p", node))
    start = tracker.update(Executing("p", "3"))
    half = tracker.update(Progress("p", "3", 10, 20))
    end = tracker.update(Progress("p", "3", 20, 20))
    assert start is not None and half is not None and end is not None
    # a loader (3), 5 other nodes, a sampler of 20 steps of 2 plus its start (2)
    assert start.fraction == 6 / 50
    assert half.fraction == 27 / 50 and end.fraction == 48 / 50


def test_cached_nodes_leave_the_total_so_a_warm_run_starts_at_zero() -> None:
    tracker = GraphProgress.for_graph(graphs.txt2img(steps=4))
    snap = tracker.update(ExecutionCached("p", ("4", "5", "6", "7")))
    assert snap is not None and snap.fraction == 0.0
    snap = tracker.update(Progress("p", "3", 2, 4))
    assert snap is not None and snap.fraction == 5 / 12  # half of 4 steps of 2 + start


def test_the_fraction_is_monotonic_over_a_whole_run() -> None:
    tracker = GraphProgress.for_graph(graphs.txt2img(steps=4))
    messages = [Executing("p", "4"), ExecutionCached("p", ("6",)), Executing("p", "7"),
                Executing("p", "5"), Executing("p", "3"),
                *(Progress("p", "3", s, 4) for s in range(1, 5)), Executing("p", "8"),
                Executing("p", "9")]
    seen = [snap.fraction for m in messages if (snap := tracker.update(m)) is not None]
    assert seen == sorted(seen) and tracker.finished().fraction == 1.0


def test_an_all_cached_graph_is_done() -> None:
    assert weighted_fraction({"1": 1.0}, done={"1"}, cached={"1"}) == 1.0
    assert weighted_fraction({}, done=(), cached=()) == 0.0
