"""Whole-graph progress is monotonic and counts nodes from the graph."""

from orchestrator.comfy.messages import Executed, Executing, ExecutionCached, Progress
from orchestrator.comfy.progress import GraphProgress

GRAPH = {"4": {"class_type": "CheckpointLoaderSimple"}, "3": {"class_type": "KSampler"},
         "8": {"class_type": "VAEDecode"}, "9": {"class_type": "SaveImage"}}


def test_cached_nodes_cost_nothing_and_steps_add_fractions() -> None:
    tracker = GraphProgress.for_graph(GRAPH)
    tracker.update(ExecutionCached("p", ("4",)))
    snap = tracker.update(Executing("p", "3"))
    assert snap is not None and snap.nodes_done == 1 and snap.current_class == "KSampler"
    snap = tracker.update(Progress("p", "3", 2, 4))
    # the cached loader leaves the total; three nodes of weight one remain
    assert snap is not None and snap.fraction == 0.5 / 3 and snap.step == 2


def test_fraction_never_goes_backwards() -> None:
    tracker = GraphProgress.for_graph(GRAPH)
    tracker.update(Executing("p", "3"))
    high = tracker.update(Progress("p", "3", 3, 4))
    low = tracker.update(Progress("p", "3", 1, 4))  # a second sampler pass restarts steps
    assert high is not None and low is not None and low.fraction >= high.fraction


def test_finished_is_one_and_executed_marks_output_done() -> None:
    tracker = GraphProgress.for_graph(GRAPH)
    snap = tracker.update(Executed("p", "9", {}))
    assert snap is not None and snap.nodes_done == 1
    assert tracker.finished().fraction == 1.0


def test_the_running_node_resent_after_a_reconnect_is_not_counted_done() -> None:
    tracker = GraphProgress.for_graph(GRAPH)
    tracker.update(Executing("p", "3"))
    before = tracker.update(Progress("p", "3", 2, 4))
    assert tracker.update(Executing("p", "3")) is None  # the resend on a new socket
    assert before is not None and tracker.snapshot().nodes_done == before.nodes_done == 0
    assert tracker.snapshot().step == 2
