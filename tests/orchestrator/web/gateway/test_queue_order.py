"""``front`` and ``number`` decide when a prompt runs, and ``GET /queue`` lists pending
prompts in the order the pool will run them (fair share between owners included); over a
real uvicorn and a real ComfyUI node."""

from __future__ import annotations

from typing import Any

import pytest

from tests import graphs
from tests.helpers import wait_until
from tests.orchestrator.web.conftest import Service
from tests.orchestrator.web.gateway.conftest import ComfyApi, comfy_api

# Long enough that every later prompt is posted while it still runs, on a loaded machine.
BLOCKER_S = 6.0


def _started_at(api: ComfyApi, prompt_id: str) -> int:
    """When the prompt started on its node (ComfyUI's ``execution_start``, ms)."""
    messages = api.history(prompt_id, timeout=120)["status"]["messages"]
    return int(next(m[1]["timestamp"] for m in messages if m[0] == "execution_start"))


def _queue(api: ComfyApi) -> dict[str, Any]:
    body: dict[str, Any] = api.get("/queue").json()
    return body


def _wait_running(api: ComfyApi, prompt_id: str) -> None:
    wait_until(lambda: [i[1] for i in _queue(api)["queue_running"]] == [prompt_id], 60,
               f"{prompt_id} to run")


def _wait_queued(api: ComfyApi, prompt_ids: list[str]) -> None:
    def listed() -> bool:
        return {i[1] for i in _queue(api)["queue_pending"]} >= set(prompt_ids)

    wait_until(listed, 30, "prompts to be listed as pending")


@pytest.mark.parametrize(("placement", "seed"), [
    pytest.param({"front": True}, 900, id="front"),
    pytest.param({"number": -5}, 910, id="lower-number"),
])
def test_a_prompt_placed_first_runs_before_the_prompts_queued_before_it(
        alice: ComfyApi, placement: dict[str, Any], seed: int) -> None:
    blocker = alice.prompt(graphs.sleep(BLOCKER_S, 6, seed=seed))
    _wait_running(alice, blocker)
    earlier = [alice.prompt(graphs.sleep(0.2, 1, seed=seed + 1 + i)) for i in range(3)]
    _wait_queued(alice, earlier)
    # The node holds one prompt in its own queue beside the running one (max_in_flight 2):
    # the prompt placed first overtakes it there too, and runs right after the running one.
    on_node = [i[1] for i in _queue(alice)["queue_pending"]][0]
    waiting = [p for p in earlier if p != on_node]

    first = alice.prompt(graphs.sleep(0.2, 1, seed=seed + 50), **placement)

    order = [first, on_node, *waiting]  # as they will run: the first one on the node first
    wait_until(lambda: [i[1] for i in _queue(alice)["queue_pending"]] == order, 30,
               f"the pending prompts listed as {order}")
    assert [i[1] for i in _queue(alice)["queue_running"]] == [blocker]
    started = {p: _started_at(alice, p) for p in [blocker, first, *earlier]}
    assert started[blocker] < started[first], started
    assert all(started[first] < started[p] for p in earlier), started


def test_an_admins_queue_interleaves_owners_as_the_pool_runs_them(
        service: Service, alice: ComfyApi, bob: ComfyApi) -> None:
    admin = comfy_api(service, service.admin)
    blocker = alice.prompt(graphs.sleep(BLOCKER_S, 6, seed=920))
    _wait_running(alice, blocker)
    hers = [alice.prompt(graphs.sleep(0.2, 1, seed=921 + i)) for i in range(3)]
    _wait_queued(alice, hers)
    on_node = [i[1] for i in _queue(alice)["queue_pending"]][0]
    waiting = [p for p in hers if p != on_node]

    his = bob.prompt(graphs.sleep(0.2, 1, seed=925))

    # Bob has nothing on a node and Alice two: the fair share claims his first.
    pending = [i[1] for i in _queue(admin)["queue_pending"]]
    assert pending == [on_node, his, *waiting]
    assert [i[1] for i in _queue(bob)["queue_pending"]] == [his]
    started = {p: _started_at(admin, p) for p in [his, *waiting]}
    assert all(started[his] < started[p] for p in waiting), started
