"""What v2 clients keep when a ComfyUI node dies or the orchestrator restarts mid-job."""

from __future__ import annotations

from pathlib import Path

import pytest
from comfy_sdk import IdempotencyKeyReuse

from tests.conftest import ComfyFactory
from tests.helpers import wait_until
from tests.orchestrator.web.v2 import graphs
from tests.orchestrator.web.v2.conftest import (
    SdkFactory,
    ServiceFactory,
    V2Service,
    fresh_seed,
    start_v2,
)

JOB_TIMEOUT = 120.0


def _node_url(service: V2Service, job_id: str) -> str:
    item = service.orch.get(job_id).items[0]
    return next(n.url for n in service.orch.nodes() if n.name == item.node)


def test_a_node_killed_mid_job_still_gives_succeeded_with_outputs(
        comfy_factory: ComfyFactory, v2_factory: ServiceFactory, sdk_for: SdkFactory) -> None:
    nodes = {server.url: server for server in (comfy_factory(), comfy_factory())}
    service = v2_factory(nodes=list(nodes))
    sdk = sdk_for(service, service.alice)
    job = sdk.submit(sdk.workflows.from_json(graphs.nap(4.0, 40)))
    wait_until(lambda: service.orch.get(job.id).items[0].started_at is not None,
               JOB_TIMEOUT, "the job to start on a node")

    nodes[_node_url(service, job.id)].kill()

    done = job.result()
    assert done.status == "succeeded" and len(done.outputs) == 1
    assert done.outputs[0].to_bytes().startswith(b"\x89PNG")
    assert len(service.orch.get(job.id).items[0].attempts) == 2


def test_a_restart_mid_job_keeps_ids_states_and_idempotency_keys(
        comfy_url: str, tmp_path: Path, sdk_for: SdkFactory) -> None:
    first = start_v2(tmp_path, [comfy_url])
    second: V2Service | None = None
    try:
        sdk = sdk_for(first, first.alice)
        key = f"restart-{fresh_seed()}"
        job = sdk.submit(sdk.workflows.from_json(graphs.nap(3.0, 30)), idempotency_key=key)
        wait_until(lambda: job.refresh().status == "running", JOB_TIMEOUT, "the job to run")
        first.stop()

        second = start_v2(tmp_path, [comfy_url],
                          tokens={"alice": first.alice, "bob": first.bob})
        again = sdk_for(second, second.alice)
        resumed = again.jobs.get(job.id)
        assert resumed.status in ("running", "succeeded")
        assert resumed.result().status == "succeeded" and len(resumed.outputs) == 1
        with pytest.raises(IdempotencyKeyReuse):
            again.submit(again.workflows.from_json(graphs.solid()), idempotency_key=key)
    finally:
        first.stop()
        if second is not None:
            second.stop()
