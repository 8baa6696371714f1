"""Background readers of a job's event stream, against a real service."""

from __future__ import annotations

from tests.ui.conftest import JOB_TIMEOUT_S, Service, wait_until
from ui.watcher import Watchers


def test_a_watcher_follows_steps_to_the_end_of_a_job(service: Service) -> None:
    client = service.client()
    job = client.submit({"workflow": "slow", "values": {"seconds": 1.0}}, {})
    watchers = Watchers(service.client)
    watcher = watchers.watch(job.id)
    wait_until(lambda: watcher.progress().item(0).class_type == "OrchTestSleep",
               JOB_TIMEOUT_S, "a progress event from the sleeping node")
    wait_until(lambda: watcher.progress().finished, JOB_TIMEOUT_S, "the finished event")
    assert watcher.progress().status == "succeeded" and watcher.progress().fraction == 1.0
    wait_until(lambda: not watcher.alive, JOB_TIMEOUT_S, "the thread to end")


def test_only_the_newest_watchers_are_kept(service: Service) -> None:
    client = service.client()
    jobs = [client.submit({"workflow": "slow", "values": {"seconds": 60}}, {}) for _ in range(3)]
    watchers = Watchers(service.client, limit=2)
    first = watchers.watch(jobs[0].id)
    for job in jobs[1:]:
        watchers.watch(job.id)
    for job in jobs:
        client.cancel(job.id)
    wait_until(lambda: not first.alive, JOB_TIMEOUT_S, "the oldest watcher to stop")
    watchers.stop_all()
