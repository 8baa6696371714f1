"""The claim-time choice over a pool's live state (no server needed: nodes are only read)."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from orchestrator.dispatch import PREFERRED_NODE_KEY, Capabilities, Requirements
from orchestrator.jobs import Item, Job, JobSpec
from orchestrator.nodes import Node, NodeConfig, NodeHealth
from orchestrator.placement import Placement
from orchestrator.speed import SpeedBook


def pool_of(*names: str) -> Any:
    workers = {}
    for name in names:
        node = Node(NodeConfig(url=f"http://127.0.0.1:1/{name}", name=name),
                    health=NodeHealth.UP, capabilities=Capabilities())
        workers[name] = SimpleNamespace(node=node, lock=threading.Lock(), running={})
    return SimpleNamespace(lock=threading.Lock(), workers=workers,
                           requirements_of=lambda job: Requirements(frozenset(), frozenset()))


def job(metadata: dict[str, str] | None = None) -> Job:
    spec = JobSpec(graph={"1": {"class_type": "X", "inputs": {}}}, metadata=metadata or {})
    return Job(id="j1", spec=spec, items=[Item(id="i1", job_id="j1", index=0)])


def measured(pool: Any, placement: Placement, fast_s: float, slow_s: float) -> None:
    key = placement.key_of(job())
    placement.book.record("fast", key, fast_s)
    placement.book.record("slow", key, slow_s)


def test_a_slow_free_node_declines_what_the_fast_free_node_finishes_sooner() -> None:
    pool = pool_of("fast", "slow")
    placement = Placement(pool, SpeedBook())
    measured(pool, placement, 1.0, 3.0)
    the_job = job()
    assert placement.accepts("fast", the_job, the_job.items[0])
    assert not placement.accepts("slow", the_job, the_job.items[0])
    placement.speed_aware = False  # first-free dispatch
    assert placement.accepts("slow", the_job, the_job.items[0])


def test_the_node_cache_affinity_prefers_takes_the_item_even_when_slower() -> None:
    pool = pool_of("fast", "slow")
    placement = Placement(pool, SpeedBook())
    measured(pool, placement, 1.0, 3.0)
    the_job = job({PREFERRED_NODE_KEY: "slow"})
    assert placement.accepts("slow", the_job, the_job.items[0])


def test_a_node_an_item_stalled_on_leaves_it_to_the_others_unless_it_is_alone() -> None:
    placement = Placement(pool_of("fast", "slow"), SpeedBook())
    the_job = job()
    placement.avoided("i1", "fast")
    assert not placement.accepts("fast", the_job, the_job.items[0])
    assert placement.accepts("slow", the_job, the_job.items[0])
    alone = Placement(pool_of("fast"), SpeedBook())
    alone.avoided("i1", "fast")
    assert alone.accepts("fast", the_job, the_job.items[0])


def sampler_job(steps: int) -> Job:
    spec = JobSpec(graph={"1": {"class_type": "KSampler", "inputs": {"steps": steps}}})
    return Job(id=f"j{steps}", spec=spec, items=[Item(id=f"i{steps}", job_id=f"j{steps}",
                                                       index=0)])


def test_an_eta_counts_the_items_steps_at_the_measured_seconds_per_step() -> None:
    placement = Placement(pool_of("fast"), SpeedBook())
    short, long = sampler_job(20), sampler_job(80)
    assert placement.key_of(short) == placement.key_of(long)  # one workload: steps are values
    placement.book.record("fast", placement.key_of(short), 10.0, steps=20)
    assert placement.eta_s(short, 0) == 10.0
    assert placement.eta_s(long, 0) == 40.0  # not the workload's mean of 10 s
    assert placement.eta_s(long, 2) == 120.0
