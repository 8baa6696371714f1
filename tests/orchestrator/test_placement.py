"""Speed-aware placement against two real ComfyUI nodes, one made 5x slower: an item waits
for the fast node when that finishes it sooner than the free slow one would, and shows
its ETA meanwhile."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from orchestrator.jobs import ItemStatus, JobStatus
from orchestrator.nodes import NodeConfig
from orchestrator.provision.server import LocalComfy
from tests import graphs
from tests.conftest import ComfyFactory
from tests.faults import set_slowdown
from tests.helpers import wait_until
from tests.service import RunningService, start_running

# Far apart, so the choice holds however much a busy machine adds to each item.
SLOWDOWN = 5.0
ITEM_S = 2.0


def seed() -> int:
    return uuid.uuid4().int % 10**9


@pytest.fixture()
def fast_and_slow(comfy_server: LocalComfy,
                  comfy_factory: ComfyFactory) -> Iterator[tuple[LocalComfy, LocalComfy]]:
    slow = comfy_factory()
    set_slowdown(slow.base_dir, SLOWDOWN)
    try:
        yield comfy_server, slow
    finally:
        slow.stop()


@pytest.fixture()
def running(fast_and_slow: tuple[LocalComfy, LocalComfy],
            tmp_path: Path) -> Iterator[RunningService]:
    # One item per node at a time, so "free" and "finishes soonest" differ visibly.
    nodes = [NodeConfig(url=s.url, max_in_flight=1) for s in fast_and_slow]
    service = start_running(tmp_path / "data", tmp_path / "workflows", nodes)
    try:
        yield service
    finally:
        service.stop()


def test_an_item_waits_for_the_fast_node_instead_of_taking_the_free_slow_one(
    fast_and_slow: tuple[LocalComfy, LocalComfy], running: RunningService
) -> None:
    fast, slow = (s.url.split("//")[1] for s in fast_and_slow)
    orch = running.orch
    # Nothing measured yet: the first two items go to whichever node is free, and teach
    # the pool each node's speed for this workload.
    warm = orch.submit(graph=graphs.sleep(ITEM_S, steps=4, seed=seed()), count=2).wait(120)
    assert warm.status == JobStatus.SUCCEEDED
    assert {item.node for item in warm.items} == {fast, slow}
    key = orch._pool.placement.key_of(warm)
    wait_until(lambda: all(orch._pool.speeds.estimate(n, key) for n in (fast, slow)), 10,
               "both nodes measured")
    fast_s = orch._pool.speeds.item_seconds(fast, key)
    slow_s = orch._pool.speeds.item_seconds(slow, key)
    assert fast_s is not None and slow_s is not None and slow_s > 2 * fast_s, (fast_s, slow_s)

    # The fast node is busy with one item; the slow one is free.
    first = orch.submit(graph=graphs.sleep(ITEM_S, steps=4, seed=seed()))
    wait_until(lambda: first.get().items[0].status == ItemStatus.RUNNING, 60,
               "the first item running")
    assert first.get().items[0].node == fast
    second = orch.submit(graph=graphs.sleep(ITEM_S, steps=4, seed=seed()), owner="ops")
    token = running.tokens.create("ops")
    shown = requests.get(f"{running.url}/v1/jobs/{second.id}", timeout=10,
                         headers={"Authorization": f"Bearer {token}"}).json()["items"][0]
    v2 = requests.get(f"{running.url}/api/v2/jobs/{second.id}", timeout=10,
                      headers={"Authorization": f"Bearer {token}"}).json()
    # Queued while the slow node is free: it waits for the fast one, and says how long.
    assert shown["status"] == "queued" and shown["queue_position"] == 0
    assert 0 < shown["eta_s"] < slow_s
    assert v2["queue_position"] == 1 and 0 < v2["metrics"]["eta_ms"] < slow_s * 1000
    done = second.wait(timeout=60)
    assert done.status == JobStatus.SUCCEEDED
    assert done.items[0].node == fast  # not the slow node, free all along
    assert first.wait(timeout=60).items[0].node == fast
