"""comfy-sdk at the shipped limits: several threads run jobs through ``/api/v2`` with no error.

Under the old limit of 600 requests a minute per token, 27 % of 233 jobs from four threads
ended with ``RateLimited`` raised from ``run()`` or ``events()``: the SDK retries a 429 only
on submit, and polls and streams spent the budget. Half the jobs here go through ``run()``
(polling), half through ``submit()`` + ``events()``; each must end ``succeeded`` with its
one PNG downloaded, and the status the client saw must be the one the service records.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from comfy_sdk import Comfy, OutputReady, StatusChange

from tests.orchestrator.web.v2 import graphs
from tests.orchestrator.web.v2.conftest import SdkFactory, V2Service

THREADS = 6
JOBS = 150
JOB_TIMEOUT_S = 300.0
TERMINAL = frozenset({"succeeded", "failed", "canceled", "expired"})


def via_run(client: Comfy) -> tuple[str, str, list[bytes]]:
    job = client.run(client.workflows.from_json(graphs.solid()), timeout=JOB_TIMEOUT_S)
    return job.id, job.status, [output.to_bytes() for output in job.outputs]


def via_events(client: Comfy) -> tuple[str, str, list[bytes]]:
    job = client.submit(client.workflows.from_json(graphs.solid()))
    seen, blobs = "", []
    for event in job.events():
        if isinstance(event, OutputReady):
            data = event.output.to_bytes()
            assert isinstance(data, bytes)  # the sync client's output (typed for both)
            blobs.append(data)
        elif isinstance(event, StatusChange) and event.status in TERMINAL:
            seen = event.status
    return job.id, seen, blobs


def one_job(client: Comfy, n: int) -> str | None:
    """None when job ``n`` went right, else what went wrong."""
    try:
        job_id, seen, blobs = (via_events if n % 2 else via_run)(client)
        final = client.jobs.get(job_id).status
    except Exception as exc:  # noqa: BLE001 - a soak counts failures instead of stopping
        return f"job #{n}: {type(exc).__name__}: {exc}"
    if (seen, final) != ("succeeded", "succeeded"):
        return f"job {job_id}: the client saw {seen!r}, the service says {final!r}"
    if len(blobs) != 1 or blobs[0][:4] != b"\x89PNG":
        return f"job {job_id}: {len(blobs)} output(s) reached the client"
    return None


@pytest.mark.timeout(900)
def test_sdk_threads_run_many_jobs_with_no_error(v2: V2Service, sdk_for: SdkFactory) -> None:
    client = sdk_for(v2, v2.alice)

    started = time.monotonic()
    with ThreadPoolExecutor(THREADS) as pool:
        problems = [p for p in pool.map(lambda n: one_job(client, n), range(JOBS)) if p]
    took = time.monotonic() - started

    assert problems == []
    print(f"{JOBS} jobs from {THREADS} comfy-sdk threads in {took:.1f} s, 0 errors")
