"""Several ``comfy-orch serve`` replicas on one PostgreSQL and one ComfyUI, as an operator
runs them: real processes, a real database, a real node, SIGKILL for a replica's death.

The replicas share the data directory (blobs and tokens: the shared volume) and the
database (the queue); which replica claims an item is read from ``items.replica``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from orchestrator.store import leases
from orchestrator.tokens import TokenStore
from tests import graphs
from tests.helpers import wait_until
from tests.orchestrator.cli.test_serve_cmd import wait_for_url
from tests.orchestrator.web.conftest import read_events
from tests.postgres import restart

HTTP_TIMEOUT = 30.0
JOB_TIMEOUT_S = 240.0
# A dead replica's items are adopted once its lease lapses, then reconciled on the next
# health tick of a survivor.
ADOPTION_S = leases.LEASE_S + 60.0


class Replica:
    """One ``comfy-orch serve`` process; ``stop`` interrupts it, ``kill`` SIGKILLs it."""

    def __init__(self, process: subprocess.Popen[str], url: str, token: str) -> None:
        self.process, self.url, self.token = process, url, token

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
        return requests.request(method, self.url + path, headers=headers,
                                timeout=HTTP_TIMEOUT, **kwargs)

    def submit(self, graph: dict[str, Any]) -> str:
        response = self.request("POST", "/v1/jobs", json={"graph": graph})
        assert response.status_code == 202, response.text
        return str(response.json()["id"])

    def job(self, job_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def kill(self) -> None:
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


StartReplica = Callable[..., Replica]


@pytest.fixture
def start_replica(postgres_url: str, comfy_url: str, tmp_path: Path) -> Iterator[StartReplica]:
    """Start replicas over one database and one data directory; all stopped at the end."""
    data = tmp_path / "shared"
    with TokenStore.open(data, postgres_url) as tokens:  # the replicas' database
        token = tokens.create("alice")
    started: list[Replica] = []

    def start(*, node: bool = True, env: dict[str, str] | None = None) -> Replica:
        command = [sys.executable, "-m", "orchestrator", "serve", "--port", "0",
                   "--data", str(data), "--db", postgres_url]
        process = subprocess.Popen(
            command + (["--node", comfy_url] if node else []),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        replica = Replica(process, "", token)
        started.append(replica)
        replica.url = wait_for_url(process)
        _drain(process)
        return replica

    yield start
    for replica in started:
        replica.stop()


def _drain(process: subprocess.Popen[str]) -> None:
    """Keep reading the replica's log so a full pipe never blocks it."""

    def read() -> None:
        assert process.stdout is not None
        for _ in iter(process.stdout.readline, ""):
            pass

    threading.Thread(target=read, daemon=True).start()


def _replicas_of(url: str, job_ids: list[str]) -> list[str | None]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT replica FROM items WHERE job_id = ANY(%s)",
                            [job_ids]).fetchall()
    return [row[0] for row in rows]


def _history_prompts(comfy_url: str) -> list[str]:
    history = requests.get(f"{comfy_url}/history", params={"max_items": 100000},
                           timeout=HTTP_TIMEOUT).json()
    return list(history)


def _finished(replica: Replica, job_id: str) -> Callable[[], bool]:
    return lambda: replica.job(job_id)["status"] in ("succeeded", "failed", "canceled",
                                                     "partially_failed")


def test_two_replicas_complete_a_batch_each_job_run_once(
        start_replica: StartReplica, postgres_url: str, comfy_url: str) -> None:
    a, b = start_replica(), start_replica()
    jobs = [(a if n % 2 else b).submit(graphs.solid_image(8, 8, seed=n)) for n in range(200)]
    for job_id in jobs:
        wait_until(_finished(a, job_id), JOB_TIMEOUT_S, f"job {job_id} to finish")
    done = [b.job(job_id) for job_id in jobs]
    assert [job["status"] for job in done] == ["succeeded"] * len(jobs)
    assert all(item["attempts"] == 1 and len(item["output_ids"]) == 1
               for job in done for item in job["items"])
    assert len(set(_replicas_of(postgres_url, jobs))) == 2  # both replicas claimed work
    with psycopg.connect(postgres_url) as conn:
        prompt_ids = {row[0] for row in conn.execute(
            "SELECT body::jsonb ->> 'prompt_id' FROM items WHERE job_id = ANY(%s)", [jobs])}
    assert len(prompt_ids) == len(jobs)  # one prompt per job, each ComfyUI ran
    assert prompt_ids <= set(_history_prompts(comfy_url))


def test_a_sigkilled_replicas_long_item_finishes_on_the_other_with_one_output(
        start_replica: StartReplica, postgres_url: str, comfy_url: str) -> None:
    a = start_replica()
    job_id = a.submit(graphs.sleep(seconds=6.0, steps=6))
    wait_until(lambda: a.job(job_id)["status"] == "running", JOB_TIMEOUT_S,
               f"job {job_id} to run on the first replica")
    (first,) = _replicas_of(postgres_url, [job_id])
    b = start_replica()
    a.kill()
    wait_until(_finished(b, job_id), ADOPTION_S + JOB_TIMEOUT_S, f"job {job_id} to finish")
    job = b.job(job_id)
    assert job["status"] == "succeeded"
    (item,) = job["items"]
    assert item["attempts"] == 1 and len(item["output_ids"]) == 1  # collected, not rerun
    outputs = b.request("GET", "/v1/outputs", params={"job": job_id}).json()["outputs"]
    assert [output["id"] for output in outputs] == item["output_ids"]
    assert b.request("GET", f"/v1/outputs/{item['output_ids'][0]}/content").status_code == 200
    (adopter,) = _replicas_of(postgres_url, [job_id])
    assert first is not None and adopter not in (None, first)  # adopted by the survivor


def test_events_of_an_item_run_by_one_replica_are_read_from_another(
        start_replica: StartReplica) -> None:
    runner = start_replica()
    reader = start_replica(node=False)  # no node: it can only relay what the runner does
    job_id = runner.submit(graphs.sleep(seconds=2.0, steps=4))
    response = reader.request("GET", f"/v1/jobs/{job_id}/events", stream=True)
    assert response.status_code == 200
    events = read_events(response, stop=lambda frame: frame["event"] == "finished")
    kinds = [frame["event"] for frame in events]
    assert kinds[-1] == "finished" and events[-1]["data"]["status"] == "succeeded"
    assert "progress" in kinds and "output" in kinds


def _settled(replica: Replica, job_id: str) -> Callable[[], bool]:
    """``_finished``, answering False while the replica cannot reach its database."""

    def check() -> bool:
        try:
            return _finished(replica, job_id)()
        except (AssertionError, requests.RequestException):
            return False

    return check


def test_a_postgresql_restart_mid_run_loses_nothing_and_runs_each_job_once(
        start_replica: StartReplica, postgres_server: str, postgres_url: str,
        comfy_url: str) -> None:
    a, b = start_replica(), start_replica()
    before = set(_history_prompts(comfy_url))
    jobs = [(a if n % 2 else b).submit(graphs.sleep(seconds=0.5, steps=2, seed=n))
            for n in range(12)]
    wait_until(lambda: any(a.job(job_id)["status"] == "running" for job_id in jobs),
               JOB_TIMEOUT_S, "a job to run")
    restart(postgres_server)  # every replica's connections drop mid-run
    late = [(a if n % 2 else b).submit(graphs.sleep(seconds=0.2, steps=1, seed=100 + n))
            for n in range(4)]  # both replicas take work again once reconnected
    jobs += late
    for job_id in jobs:
        wait_until(_settled(a, job_id), JOB_TIMEOUT_S, f"job {job_id} to finish")
    done = [b.job(job_id) for job_id in jobs]
    assert [job["status"] for job in done] == ["succeeded"] * len(jobs)
    assert all(len(item["output_ids"]) == 1 for job in done for item in job["items"])
    with psycopg.connect(postgres_url) as conn:
        prompt_ids = {row[0] for row in conn.execute(
            "SELECT body::jsonb ->> 'prompt_id' FROM items WHERE job_id = ANY(%s)", [jobs])}
    ran = set(_history_prompts(comfy_url)) - before
    assert len(prompt_ids) == len(jobs) and ran == prompt_ids  # each job ran once


def test_the_owner_queue_bound_holds_for_concurrent_submits_on_two_replicas(
        start_replica: StartReplica, postgres_url: str) -> None:
    # No node: nothing leaves the queue, so the shipped per-owner bound (1000 images) is
    # met by this test's submits alone, 8 images each, sent to both replicas at once.
    a, b = start_replica(node=False), start_replica(node=False)
    body = {"graph": graphs.solid_image(8, 8), "count": 8}

    def post(n: int) -> int:
        return (a if n % 2 else b).request("POST", "/v1/jobs", json=body).status_code

    with ThreadPoolExecutor(max_workers=16) as workers:
        codes = list(workers.map(post, range(160)))
    assert set(codes) == {202, 429}
    assert codes.count(202) == 1000 // 8
    with psycopg.connect(postgres_url) as conn:
        (queued,) = conn.execute("SELECT count(*) FROM items").fetchone() or (0,)
    assert queued == 1000


def test_a_client_resuming_on_another_replica_gets_a_snapshot_then_the_rest(
        start_replica: StartReplica) -> None:
    """Event ids are a replica's own: a ``Last-Event-ID`` from the runner, sent to the
    other replica, starts there with the job's snapshot (never a replay of that replica's
    events that happen to bear the same numbers), then every later event to the end."""
    replicas: dict[bool, Replica] = {}

    def start(node: bool) -> None:
        replicas[node] = start_replica(node=node)

    starting = [threading.Thread(target=start, args=(node,))
                for node in (True, False)]  # started together: their ids must still differ
    for thread in starting:
        thread.start()
    for thread in starting:
        thread.join()
    runner, reader = replicas[True], replicas[False]
    job_id = runner.submit(graphs.sleep(seconds=3.0, steps=6))
    first = runner.request("GET", f"/v1/jobs/{job_id}/events", stream=True)
    seen = read_events(first, stop=lambda frame: frame["event"] == "progress")
    first.close()
    response = reader.request("GET", f"/v1/jobs/{job_id}/events", stream=True,
                              headers={"Last-Event-ID": seen[-1]["id"]})
    assert response.status_code == 200
    rest = read_events(response, stop=lambda frame: frame["event"] == "finished")
    assert rest[0]["event"] == "snapshot"
    assert rest[-1]["event"] == "finished" and rest[-1]["data"]["status"] == "succeeded"
    outputs = rest[0]["data"]["outputs"] + [frame["data"]["output_id"] for frame in rest
                                            if frame["event"] == "output"]
    assert sorted(outputs) == sorted(runner.job(job_id)["items"][0]["output_ids"])


def test_a_tokens_request_rate_is_one_limit_across_replicas(
        start_replica: StartReplica) -> None:
    # The rate is lowered (shipped: bursts of 2000, 12000 a minute) so a few dozen
    # requests empty the bucket, and the refill (one request per 10 s) stays out of it.
    env = {"COMFY_ORCH_RATE_BURST": "10", "COMFY_ORCH_RATE_PER_MINUTE": "6"}
    a, b = start_replica(node=False, env=env), start_replica(node=False, env=env)
    codes = [(a if n % 2 else b).request("GET", "/v1/jobs").status_code for n in range(30)]
    assert set(codes) == {200, 429}
    assert 10 <= codes.count(200) <= 12  # one bucket: its burst, and a refill at most
    refused = [n for n, code in enumerate(codes) if code == 429]
    assert {n % 2 for n in refused} == {0, 1}  # both replicas refuse
