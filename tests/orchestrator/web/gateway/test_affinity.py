"""Cache affinity: a gateway client's prompts go to the node that ran its last one while
that node has room, so ComfyUI's cache serves the client as one server's would (a real
uvicorn over a pool of two real ComfyUI nodes)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from tests import graphs
from tests.conftest import ComfyFactory
from tests.helpers import wait_until
from tests.orchestrator.web.conftest import Service, start_service
from tests.orchestrator.web.gateway.conftest import ComfyApi, comfy_api


@pytest.fixture(scope="module")
def pool(comfy_url: str, comfy_factory: ComfyFactory,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    second = comfy_factory()
    service = start_service(tmp_path_factory.mktemp("pool"), comfy_url,
                            nodes=(comfy_url, second.url))
    try:
        yield service
    finally:
        service.stop()


def _node_of(service: Service, prompt_id: str) -> str | None:
    return service.orch.get(prompt_id).items[0].node


def _cached(api: ComfyApi, prompt_id: str) -> list[str]:
    messages = dict((m[0], m[1]) for m in api.history(prompt_id)["status"]["messages"])
    return list(messages["execution_cached"]["nodes"])


def test_a_clients_prompts_stay_on_its_node_and_hit_its_cache(pool: Service) -> None:
    api = comfy_api(pool, pool.alice)
    first = api.prompt(graphs.solid_image(8, 8, seed=500), client_id="c1")
    api.history(first)
    home = _node_of(pool, first)

    found: list[tuple[str | None, list[str]]] = []
    for _ in range(4):  # each waited for, as a client waits for its image
        again = api.prompt(graphs.solid_image(8, 8, seed=500), client_id="c1")
        cached = sorted(_cached(api, again))
        found.append((_node_of(pool, again), cached))

    assert found == [(home, ["1", "2"])] * 4  # all of it from that node's cache


def test_a_busy_node_lets_the_client_spill_to_another(pool: Service) -> None:
    api = comfy_api(pool, pool.alice)
    warm = api.prompt(graphs.solid_image(8, 8, seed=510), client_id="c2")
    api.history(warm)
    home = _node_of(pool, warm)

    long = [api.prompt(graphs.sleep(30, 30, seed=511 + i), client_id="c2") for i in range(3)]
    wait_until(lambda: all(_node_of(pool, p) for p in long), 60, "all three on nodes")

    placed = Counter(_node_of(pool, p) for p in long)
    assert placed[home] == 2  # the node's max_in_flight
    assert sum(placed.values()) == 3
    for prompt_id in long:
        api.post("/interrupt", json={"prompt_id": prompt_id})
        api.post("/queue", json={"delete": [prompt_id]})
