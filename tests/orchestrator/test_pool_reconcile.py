"""What the pool does with items it finds on a node (after a restart of ours or the node's)
and with cancels, against a real ComfyUI: nothing runs twice, nothing is taken for lost."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.comfy.client import ComfyClient
from orchestrator.dispatch import prompt_id_for
from orchestrator.jobs import ItemStatus, JobStatus
from orchestrator.service import JobHandle, Orchestrator
from tests.helpers import wait_until
from tests.orchestrator.comfy.test_watch import finish_before_second_read
from tests.orchestrator.test_pool import orch_factory, workflows  # noqa: F401 - fixtures

# What differs most between releases: every one of them is held to it.
pytestmark = pytest.mark.every_comfyui


@pytest.fixture()
def observer(comfy_url: str) -> Iterator[ComfyClient]:
    """A client of our own on the node, to see what it holds and ran."""
    with ComfyClient(comfy_url) as client:
        yield client


def node_name(url: str) -> str:
    return url.split("//", 1)[1]


def one_running_one_pending(orch: Orchestrator,
                            observer: ComfyClient) -> tuple[JobHandle, JobHandle, str]:
    """A long item running on the node and a short one waiting behind it in the node's
    queue: the blocker, the waiting one, and the waiting one's prompt id.

    The second is submitted once the first runs: each item posts its prompt from a thread
    of its own, so two submitted together may reach the node in either order, and the
    short one, posted first, would have run and gone before anything waited.
    """
    # Long enough that the other prompt still waits when a later process starts.
    blocker = orch.submit("nap", {"seconds": 30.0})
    wait_until(lambda: blocker.get().items[0].status == ItemStatus.RUNNING, 60,
               "one item running on the node")
    waiting = orch.submit("nap", {"seconds": 0.2})
    pending_prompt = prompt_id_for(waiting.get().items[0].id, 1)
    wait_until(lambda: observer.queue().holds(pending_prompt), 30,
               "the other item pending on the node")
    return blocker, waiting, pending_prompt


def test_recovery_collects_a_prompt_that_ends_between_the_two_reads(
    comfy_url: str, workflows: Path, tmp_path: Path, observer: ComfyClient,  # noqa: F811
) -> None:
    """Issue 13 item 11 in the pool: ``NodePool._reconcile`` asked /history then /queue, so a prompt
    ending between the two was requeued and run a second time."""
    data = tmp_path / "data"
    with Orchestrator(data_dir=data, workflows_dir=workflows, nodes=[comfy_url]) as first:
        handle = first.submit("nap", {"seconds": 4.0})
        wait_until(lambda: handle.get().items[0].status == ItemStatus.RUNNING, 60, "running")
    # The process is gone; the prompt still runs on the node.
    with Orchestrator(data_dir=data, workflows_dir=workflows, nodes=[comfy_url],
                      start=False) as orch:
        client = orch._pool.worker(node_name(comfy_url)).node.client
        client.features = dataclasses.replace(client.features, jobs_api=False)  # two reads
        client.between_reads = finish_before_second_read(observer)
        assert orch.recover() == 1
        orch._pool.start()
        job = orch.wait(handle.id, timeout=60)
    item = job.items[0]
    assert job.status == JobStatus.SUCCEEDED and len(item.attempts) == 1
    assert len(item.output_ids) == 1
    assert observer.lookup(prompt_id_for(item.id, 1)).known
    assert not observer.lookup(prompt_id_for(item.id, 2)).known  # never sent again


def test_a_cancel_that_never_reached_the_node_is_carried_out_on_recovery(
    comfy_url: str, workflows: Path, tmp_path: Path, observer: ComfyClient,  # noqa: F811
) -> None:
    """An item left canceling by a process that died is canceled on the node, and its
    prompt's disappearance (0.30 drops a canceled pending job) is not read as a loss."""
    data = tmp_path / "data"
    with Orchestrator(data_dir=data, workflows_dir=workflows, nodes=[comfy_url]) as first:
        blocker, waiting, pending_prompt = one_running_one_pending(first, observer)
        first._store.request_cancel(waiting.id)  # recorded; the process dies before telling
    with Orchestrator(data_dir=data, workflows_dir=workflows, nodes=[comfy_url]) as orch:
        job = orch.wait(waiting.id, timeout=30)
        assert job.status == JobStatus.CANCELED and len(job.items[0].attempts) == 1
        assert orch.get(blocker.id).status == JobStatus.RUNNING  # so that one was pending
        assert not observer.lookup(pending_prompt).known  # removed from the node
        orch.cancel(blocker.id)


def test_cancel_of_an_item_pending_on_the_node_removes_it_and_never_requeues(
    comfy_url: str, orch_factory: Callable[..., Orchestrator],  # noqa: F811
    observer: ComfyClient,
) -> None:
    orch = orch_factory([comfy_url])
    blocker, waiting, pending_prompt = one_running_one_pending(orch, observer)
    orch.cancel(waiting.id)
    job = waiting.wait(timeout=30)
    assert job.status == JobStatus.CANCELED and len(job.items[0].attempts) == 1
    assert not observer.lookup(pending_prompt).known
    orch.cancel(blocker.id)


def test_a_cancel_landing_while_the_prompt_is_on_its_way_still_reaches_the_node(
    comfy_url: str, orch_factory: Callable[..., Orchestrator],  # noqa: F811
    observer: ComfyClient,
) -> None:
    """The item is dispatched (recorded) before its prompt is posted; a cancel in between
    found nothing on the node to remove, and the prompt then ran, orphaned."""
    orch = orch_factory([comfy_url], start=False)
    client = orch._pool.worker(node_name(comfy_url)).node.client
    client.features = dataclasses.replace(client.features, jobs_api=False)  # two reads
    blocker = orch.submit("nap", {"seconds": 30.0})
    waiting = orch.submit("nap", {"seconds": 0.2})
    pending_prompt = prompt_id_for(waiting.get().items[0].id, 1)

    def cancel_before_the_post(prompt_id: str) -> None:
        # Called by the look-up that precedes the post: the cancel lands just before it.
        if prompt_id == pending_prompt and not waiting.get().status.terminal:
            orch.cancel(waiting.id)

    client.between_reads = cancel_before_the_post
    orch.recover()
    orch._pool.start()
    job = waiting.wait(timeout=60)
    assert job.status == JobStatus.CANCELED
    assert blocker.get().status == JobStatus.RUNNING  # so that prompt would be pending
    wait_until(lambda: not observer.lookup(pending_prompt).known, 10,
               "the prompt removed from the node")
    orch.cancel(blocker.id)
