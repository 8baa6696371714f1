"""What became of items the store has on a node: reattach, collect, cancel or requeue.

Run after a crash of ours (``NodePool.recover``), when a node comes back after being down
(``NodePool.reconcile_node``), and for a dead replica's items. Each item's prompt is
looked up on its node: still there (pending, running, or done: outputs are collected,
nothing runs twice) → reattach; gone → back to the queue; a cancel that never reached the
node → carried out now.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from orchestrator.comfy.protocol import PromptState
from orchestrator.errors import NodeError
from orchestrator.jobs import Item, ItemStatus, Job

if TYPE_CHECKING:
    from orchestrator.pool import NodePool, NodeWorker


def reconcile(pool: NodePool, worker: NodeWorker, pairs: list[tuple[Job, Item]]) -> None:
    """Settle each ``(job, item)`` the store has on ``worker``'s node.

    "Gone" is decided by ``ComfyClient.locate_many``: misses over repeated look-ups, in an
    order that never misses a prompt ending between two reads. A node that does not
    answer is marked down and its items go back to the queue.
    """
    posted = [(job, item) for job, item in pairs
              if item.prompt_id is not None and item.graph is not None]
    for _job, item in pairs:
        if item.prompt_id is None or item.graph is None:
            pool.requeue_quietly(item, "dispatched but never submitted")
    if not posted:
        return
    try:
        states = _locate(worker, [item for _job, item in posted])
    except NodeError as exc:
        worker.node.mark_down(str(exc))
        for _job, item in posted:
            pool.requeue_quietly(item, str(exc))
        return
    for job, item in posted:
        _settle(pool, worker, job, item, states[str(item.prompt_id)])


def _locate(worker: NodeWorker, items: list[Item]) -> dict[str, PromptState]:
    client = worker.node.client
    for item in items:
        if item.status == ItemStatus.CANCELING:
            client.cancel(str(item.prompt_id))  # the cancel may never have reached it
    return client.locate_many([str(item.prompt_id) for item in items])


def _settle(pool: NodePool, worker: NodeWorker, job: Job, item: Item,
            state: PromptState) -> None:
    if item.status == ItemStatus.CANCELING:
        pool.requeue_quietly(item, "canceled")  # records the cancel
    elif not state.known:
        pool.requeue_quietly(item, f"prompt {item.prompt_id} vanished from {item.node}")
    else:
        worker.execute(job, item, submit=False)
