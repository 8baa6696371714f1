"""Faults against real processes: a node SIGKILLed or restarted, the orchestrator SIGKILLed."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from orchestrator.jobs import ItemStatus, JobStatus
from orchestrator.provision.server import LocalComfy
from orchestrator.service import Orchestrator
from tests.orchestrator.test_pool import (  # noqa: F401 - fixtures shared with the pool tests
    extra_nodes,
    orch_factory,
    wait_until,
    workflows,
)

ROOT = Path(__file__).resolve().parents[2]


def node_name(server: LocalComfy) -> str:
    return f"{server.host}:{server.port}"


@pytest.mark.every_comfyui
def test_sigkilled_node_mid_job_every_item_finishes_elsewhere_once(
    extra_nodes: list[LocalComfy], orch_factory: Callable[..., Orchestrator]  # noqa: F811
) -> None:
    victim, survivor = extra_nodes
    orch = orch_factory([victim.url, survivor.url])
    handle = orch.submit("nap", {"seconds": 1.0}, count=6)
    wait_until(lambda: any(i.status == ItemStatus.RUNNING and i.node == node_name(victim)
                           for i in handle.get().items), 60, "an item running on the victim")
    victim.kill()
    try:
        job = handle.wait(timeout=120)
        assert job.status == JobStatus.SUCCEEDED
        outputs = orch.outputs_of(job.id)
        assert len(outputs) == 6 and len({o.item_id for o in outputs}) == 6  # none twice
        moved = [i for i in job.items if len(i.attempts) > 1]
        assert moved and all(i.node == node_name(survivor) for i in moved)
        assert all(i.attempts[0].error for i in moved)  # attempt history kept
    finally:
        victim.start()


@pytest.mark.every_comfyui
def test_restarted_node_loses_its_queue_and_items_are_resubmitted(
    extra_nodes: list[LocalComfy], orch_factory: Callable[..., Orchestrator]  # noqa: F811
) -> None:
    node = extra_nodes[1]
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
