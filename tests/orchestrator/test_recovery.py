"""Faults against real processes: a node SIGKILLed or restarted, the orchestrator SIGKILLed."""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orchestrator import planner, rendering
from orchestrator.jobs import ItemStatus, JobStatus
from orchestrator.provision.server import LocalComfy
from orchestrator.service import Orchestrator
from orchestrator.store import DATABASE_NAME
from orchestrator.store.sql_store import SqlJobStore
from tests.orchestrator.test_pool import (  # noqa: F401 - fixtures shared with the pool tests
    extra_nodes,
    orch_factory,
    wait_until,
    workflows,
)

ROOT = Path(__file__).resolve().parents[2]


def node_name(server: LocalComfy) -> str:
    return f"{server.host}:{server.port}"


def answering(*servers: LocalComfy) -> None:
    """Start again any of the module's shared nodes an earlier test killed: done by the test
    that needs it, so a node killed last in a module is never started again for nothing."""
    for server in servers:
        if not server.is_answering():
            server.start()


@pytest.mark.every_comfyui
def test_sigkilled_node_mid_job_every_item_finishes_elsewhere_once(
    extra_nodes: list[LocalComfy], orch_factory: Callable[..., Orchestrator]  # noqa: F811
) -> None:
    victim, survivor = extra_nodes
    answering(victim, survivor)
    orch = orch_factory([victim.url, survivor.url])
    handle = orch.submit("nap", {"seconds": 1.0}, count=6)
    wait_until(lambda: any(i.status == ItemStatus.RUNNING and i.node == node_name(victim)
                           for i in handle.get().items), 60, "an item running on the victim")
    victim.kill()  # started again by the next test that needs it (``answering``)
    job = handle.wait(timeout=120)
    assert job.status == JobStatus.SUCCEEDED
    outputs = orch.outputs_of(job.id)
    assert len(outputs) == 6 and len({o.item_id for o in outputs}) == 6  # none twice
    moved = [i for i in job.items if len(i.attempts) > 1]
    assert moved and all(i.node == node_name(survivor) for i in moved)
    assert all(i.attempts[0].error for i in moved)  # attempt history kept


@pytest.mark.every_comfyui
def test_restarted_node_loses_its_queue_and_items_are_resubmitted(
    extra_nodes: list[LocalComfy], orch_factory: Callable[..., Orchestrator]  # noqa: F811
) -> None:
    node = extra_nodes[1]
    answering(node)
    orch = orch_factory([node.url])
    handle = orch.submit("nap", {"seconds": 1.0}, count=4)
    wait_until(lambda: sum(i.status.on_node for i in handle.get().items) == 2, 60,
               "one item running and one queued on the node")
    node.restart()
    job = handle.wait(timeout=180)
    assert job.status == JobStatus.SUCCEEDED
    assert any(len(i.attempts) > 1 for i in job.items)
    assert len(orch.outputs_of(job.id)) == 4


def test_sigkilled_orchestrator_loses_nothing_and_reruns_nothing(
    tmp_path: Path, workflows: Path, comfy_url: str,  # noqa: F811
    extra_nodes: list[LocalComfy],  # noqa: F811
) -> None:
    data = tmp_path / "crash-data"
    answering(*extra_nodes)
    nodes = [comfy_url, *(s.url for s in extra_nodes)]
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.orchestrator.crash_child", str(data), str(workflows),
         "3", "8", *nodes], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        job_ids = [line.strip() for line in iter(child.stdout.readline, "ready\n")]
        assert len(job_ids) == 3
        with Orchestrator(data_dir=data, workflows_dir=workflows, start=False) as probe:
            wait_until(lambda: any(i.status == ItemStatus.SUCCEEDED
                                   for j in job_ids for i in probe.get(j).items), 60,
                       "a first finished item")
            on_node_at_kill = {i.id: i.prompt_id for j in job_ids for i in probe.get(j).items
                               if i.status.on_node}
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert on_node_at_kill, "the kill should hit items on nodes"
    with Orchestrator(data_dir=data, workflows_dir=workflows, nodes=nodes) as orch:
        jobs = [orch.wait(j, timeout=180) for j in job_ids]
        assert all(job.status == JobStatus.SUCCEEDED for job in jobs)
        items = {i.id: i for job in jobs for i in job.items}
        assert len(items) == 24
        outputs = [o for j in job_ids for o in orch.outputs_of(j)]
        assert len(outputs) == 24 and len({o.item_id for o in outputs}) == 24
        collected = [i for i, pid in on_node_at_kill.items() if items[i].prompt_id == pid
                     and len(items[i].attempts) == 1]
        assert collected, "items that were on a node were collected or reattached, not rerun"


class _Watch:
    """Counts checks (requirements worked out) and renders, and those made inside a
    store claim (a claim's transaction holds the database: nothing heavy may run there)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.claiming = threading.local()
        claim = SqlJobStore.claim_next

        def claim_next(store: SqlJobStore, *args: Any, **kwargs: Any) -> Any:
            self.claiming.on = True
            try:
                return claim(store, *args, **kwargs)
            finally:
                self.claiming.on = False

        monkeypatch.setattr(SqlJobStore, "claim_next", claim_next)
        monkeypatch.setattr(planner, "checked_nodes", self._spy("check", planner.checked_nodes))
        monkeypatch.setattr(rendering, "render", self._spy("render", rendering.render))

    def _spy(self, what: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def spy(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((what, bool(getattr(self.claiming, "on", False))))
            return real(*args, **kwargs)
        return spy

    def count(self, what: str) -> int:
        return sum(1 for name, _ in self.calls if name == what)

    def inside_claims(self) -> list[str]:
        return [name for name, inside in self.calls if inside]


def _waiting_job(orch_factory: Callable[..., Orchestrator]) -> str:  # noqa: F811
    """A job recorded by a process with no node (it waits), which then closes."""
    first = orch_factory([])
    job_id = first.submit("seeded", {}, count=2).id
    first.close()
    return job_id


def _stored_requirements(data_dir: Path, job_id: str) -> str | None:
    with contextlib.closing(sqlite3.connect(data_dir / DATABASE_NAME)) as conn:
        row = conn.execute("SELECT requirements FROM jobs WHERE id = ?", (job_id,)).fetchone()
    return None if row is None else row[0]


def test_after_a_restart_requirements_come_from_the_store_and_claims_never_render(
    tmp_path: Path, comfy_url: str, orch_factory: Callable[..., Orchestrator],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = _waiting_job(orch_factory)
    assert _stored_requirements(tmp_path / "data", job_id) is not None
    watch = _Watch(monkeypatch)

    job = orch_factory([comfy_url]).wait(job_id, timeout=60)

    assert job.status == JobStatus.SUCCEEDED
    assert watch.count("check") == 0  # stored with the job at submit
    assert watch.count("render") == 2  # once per item, at dispatch
    assert watch.inside_claims() == []


def test_a_job_stored_without_requirements_gets_them_once_outside_any_claim(
    tmp_path: Path, comfy_url: str, orch_factory: Callable[..., Orchestrator],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = _waiting_job(orch_factory)
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / DATABASE_NAME)) as conn:
        conn.execute("UPDATE jobs SET requirements = NULL")  # as an older version left it
        conn.commit()
    watch = _Watch(monkeypatch)

    job = orch_factory([comfy_url]).wait(job_id, timeout=60)

    assert job.status == JobStatus.SUCCEEDED
    assert watch.count("check") == 1
    assert watch.count("render") == 2
    assert watch.inside_claims() == []
    assert _stored_requirements(tmp_path / "data", job_id) is not None
