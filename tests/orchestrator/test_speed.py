"""Measured speeds and the node that finishes soonest (pure)."""

from __future__ import annotations

import pytest

from orchestrator.speed import (
    NodeLoad,
    SpeedBook,
    best_nodes,
    eta_s,
    graph_shape,
    graph_steps,
    remaining_s,
    workload_key,
)
from orchestrator.stall import StallLimits, progress_limit
from tests import graphs


def test_prompt_and_seed_do_not_change_the_workload_but_models_and_shape_do() -> None:
    base = workload_key(workflow=None, graph=graphs.txt2img(seed=1))
    assert workload_key(workflow=None, graph=graphs.txt2img(seed=99)) == base
    assert workload_key(workflow=None, graph=graphs.txt2img(checkpoint="other.safetensors")
                        ) != base
    assert workload_key(workflow=None, graph=graphs.sleep()) != base
    assert workload_key(workflow="portrait", graph=None, models=[("C", "ckpt", "a.ckpt")]) != (
        workload_key(workflow="portrait", graph=None, models=[("C", "ckpt", "b.ckpt")]))


def test_the_shape_names_links_and_models_but_no_values() -> None:
    shape = graph_shape(graphs.txt2img(seed=5))
    text = repr(shape)
    assert "a red fox" not in text and "tiny-sd15.safetensors" in text
    assert ["3", "KSampler", [("latent_image", "5", 0), ("model", "4", 0),
                              ("negative", "7", 0), ("positive", "6", 0)], []] in shape


def test_the_running_estimate_weighs_recent_runs_more() -> None:
    book = SpeedBook(weight=0.5)
    book.record("a", "w", 10.0, steps=20)
    est = book.record("a", "w", 20.0, steps=20)
    assert est.item_s == 15.0 and est.step_s == 0.75 and est.runs == 2
    assert book.last_workload("a") == "w"


def test_an_unmeasured_node_is_guessed_from_how_it_compares_on_other_work() -> None:
    book = SpeedBook()
    book.record("fast", "w1", 1.0)
    book.record("slow", "w1", 3.0)
    book.record("fast", "w2", 2.0)
    assert book.item_seconds("slow", "w2") == pytest.approx(6.0)
    assert book.item_seconds("slow", "w3") is None


def test_the_node_that_finishes_soonest_wins_not_the_free_one() -> None:
    fast_busy = NodeLoad("fast", backlog_s=1.0, item_s=1.0)
    slow_free = NodeLoad("slow", backlog_s=0.0, item_s=3.0)
    assert best_nodes([fast_busy, slow_free]) == ["fast"]
    assert best_nodes([NodeLoad("fast", 3.0, 1.0), slow_free]) == ["slow"]


def test_a_warm_node_wins_a_tie() -> None:
    cold = NodeLoad("cold", 0.0, 2.0)
    warm = NodeLoad("warm", 0.0, 2.1, warm=True)
    assert best_nodes([cold, warm]) == ["warm"]
    assert set(best_nodes([cold, NodeLoad("other", 0.0, 2.0)])) == {"cold", "other"}


def test_unmeasured_nodes_get_a_chance_and_nothing_measured_means_first_free() -> None:
    assert best_nodes([NodeLoad("a", 0.0, None), NodeLoad("b", 0.0, None)]) == ["a", "b"]
    assert "new" in best_nodes([NodeLoad("known", 0.0, 2.0), NodeLoad("new", 0.0, None)])


def test_remaining_time_of_running_and_waiting_items() -> None:
    assert remaining_s(10.0, None) == 10.0
    assert remaining_s(10.0, 4.0) == 6.0
    assert remaining_s(10.0, 30.0) == 0.05
    assert remaining_s(None, 1.0) is None


def test_eta_follows_each_item_to_the_node_that_finishes_it_soonest() -> None:
    loads = [NodeLoad("fast", 0.0, 1.0), NodeLoad("slow", 0.0, 3.0)]
    assert eta_s(loads, 0) == 1.0
    # fast finishes at 1, 2, 3 and slow at 3: the fifth item ends at 4 on the fast node
    assert eta_s(loads, 4) == 4.0
    assert eta_s([NodeLoad("a", 0.0, None)], 3) is None
    # far back in a long queue the pool's rate (4/3 items a second) takes over
    assert eta_s(loads, 100_000) == pytest.approx(100_000 * 0.75, rel=0.01)


def test_a_graph_asks_for_the_sum_of_its_samplers_steps() -> None:
    assert graph_steps(graphs.txt2img(steps=20)) == 20
    assert graph_steps(graphs.sleep(1.0, steps=6)) == 6
    assert graph_steps(graphs.failing()) is None
    assert graph_steps({"1": {"class_type": "KSampler", "inputs": {"steps": ["2", 0]}}}) is None


def test_an_item_is_expected_to_take_its_steps_times_the_measured_seconds_per_step() -> None:
    book = SpeedBook()
    book.record("a", "w", 10.0, steps=20)  # 0.5 s a step
    assert book.item_seconds("a", "w", steps=80) == 40.0
    assert book.item_seconds("a", "w") == 10.0  # steps unknown: the item's mean
    book.record("b", "w2", 3.0, steps=3)
    book.record("a", "w2", 1.0, steps=3)
    # b is three times slower than a on what both ran
    assert book.item_seconds("b", "w", steps=80) == pytest.approx(120.0)


def test_the_stall_limit_and_the_eta_follow_the_items_steps() -> None:
    book = SpeedBook()
    book.record("a", "w", 10.0, steps=20)
    limits = StallLimits(floor_s=1.0, ceiling_s=10_000.0, factor=4.0)
    # A 200-step item is not stalled at a 20-step item's limit (40 s), but at 400 s.
    assert progress_limit(book.item_seconds("a", "w", steps=200), limits) == 400.0
    assert progress_limit(book.item_seconds("a", "w", steps=20), limits) == 40.0
    loads = [NodeLoad("a", 0.0, book.item_seconds("a", "w", steps=200))]
    assert eta_s(loads, 1) == 200.0
