"""Work no node of the pool can run fails at once with the reason, through the real service:
on retry, when the last node able to run it leaves, and after a restart (issue 19 item 5).
Before, each of these left the job "queued, 0 ahead" for ever."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.provision.server import LocalComfy
from tests import graphs
from tests.conftest import ComfyFactory
from tests.orchestrator.web.conftest import Service, start_service


@pytest.fixture(scope="module")
def bare(comfy_factory: ComfyFactory) -> LocalComfy:
    """A real ComfyUI without the test node pack: it cannot run OrchTest* classes."""
    return comfy_factory(custom_nodes=())


@pytest.fixture()
def service(tmp_path: Path, comfy_url: str, bare: LocalComfy) -> Iterator[Service]:
    """The pool: the bare node, and the session's node that has the test pack."""
    running = start_service(tmp_path, comfy_url, nodes=(bare.url, comfy_url))
    yield running
    running.stop()


def name_of(url: str) -> str:
    return url.split("//", 1)[1]


def failed_at_once(service: Service, job_id: str, missing: str) -> dict[str, Any]:
    """The job, which must already be failed for the reason: read once, never waited for."""
    job = service.api.job(service.alice, job_id)
    assert job["status"] == "failed", job
    for item in job["items"]:
        assert item["error"]["code"] == "no_capable_node", item
        assert item["error"]["message"] == f"no node can run {missing}"
        assert item["queue_position"] is None
    return job


def test_retry_after_the_only_capable_node_left_fails_at_once(
    service: Service, comfy_url: str
) -> None:
    api = service.api
    job = api.submit(service.alice, graph=graphs.failing("first try", seed=5))
    assert api.wait_job(service.alice, job["id"])["status"] == "failed"  # ran, and failed
    gone = api.delete(f"/v1/nodes/{name_of(comfy_url)}", token=service.admin)
    assert gone.status_code == 204, gone.text
    retried = api.post(f"/v1/jobs/{job['id']}/retry", token=service.alice)
    assert retried.status_code == 202, retried.text
    failed_at_once(service, job["id"], "class OrchTestFail / class OrchTestSolidImage")


def test_waiting_work_fails_when_the_last_capable_node_leaves(
    service: Service, comfy_url: str
) -> None:
    api = service.api
    busy = api.submit(service.alice, workflow="nap", values={"seconds": 30.0}, count=2)
    waiting = api.submit(service.alice, workflow="nap", values={"seconds": 0.2})
    api.wait_job(service.alice, busy["id"], states=("running",))
    assert api.job(service.alice, waiting["id"])["status"] == "queued"
    gone = api.delete(f"/v1/nodes/{name_of(comfy_url)}", token=service.admin)
    assert gone.status_code == 204, gone.text
    # By the removal's answer nothing that needs the pack is left waiting.
    failed_at_once(service, waiting["id"], "class OrchTestSleep")
    failed_at_once(service, busy["id"], "class OrchTestSleep")


def test_work_left_waiting_fails_on_start_when_the_new_pool_cannot_run_it(
    tmp_path: Path, comfy_url: str, bare: LocalComfy,
) -> None:
    first = start_service(tmp_path, comfy_url, nodes=(comfy_url,))
    try:
        drained = first.api.post(f"/v1/nodes/{name_of(comfy_url)}/drain", token=first.admin,
                                 json={"draining": True})
        assert drained.status_code == 200, drained.text
        job = first.api.submit(first.alice, workflow="nap", values={"seconds": 0.2})
        assert first.api.job(first.alice, job["id"])["status"] == "queued"  # drained, not gone
    finally:
        first.stop()
    second = start_service(tmp_path, comfy_url, nodes=(bare.url,))  # same data folder
    try:
        failed_at_once(second, job["id"], "class OrchTestSleep")
    finally:
        second.stop()
