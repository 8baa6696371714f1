"""The node's own verdict on a prompt, heard before the gateway answers ``POST /prompt``.

Some classes check their inputs on the node (``VALIDATE_INPUTS``, sync or async), and
``/object_info`` does not say which: our pre-flight cannot know what they refuse. ComfyUI
answers such a prompt with 400 and its ``node_errors``. So when a node able to run the
prompt has room right now, the gateway waits (briefly) for the prompt to reach it and
relays that node's refusal as it was given; with no free node the prompt queues and the
answer is 200, as before. The wait ends at the job's first dispatch outcome, which comes
as soon as the node has answered the prompt's ``POST /prompt``.
"""

from __future__ import annotations

import time
from typing import Any

from orchestrator import dispatch
from orchestrator.errors import ConfigError, JobNotFound
from orchestrator.events import Dispatched, Finished, ItemFailed, Subscription
from orchestrator.service import Orchestrator

# Seconds the gateway waits for a free node's answer before answering 200 anyway (the
# prompt then runs or fails as any queued prompt does). Dispatch takes milliseconds on a
# loopback node; the bound covers uploading the prompt's input images to a remote one.
DISPATCH_WAIT_S = 10.0


def node_refusal(orch: Orchestrator, job_id: str) -> dict[str, Any] | None:
    """The 400 body a free node gave the job's prompt, or None (dispatched, queued,
    failed for another reason, or no answer within ``DISPATCH_WAIT_S``).

    A refused job is deleted once it has ended: ComfyUI keeps no trace of a prompt it
    answered 400, and neither do we."""
    if not capable_node_free(orch, job_id):
        return None
    bus = orch.bus
    deadline = time.monotonic() + DISPATCH_WAIT_S
    # Resuming after the bus's base replays what the job already went through.
    with bus.subscribe(job_id, after=bus.seq_base) as sub:
        refusal = _outcome(sub, deadline)
        if refusal is not None and _ended(sub, deadline):
            orch.store.delete_finished_job(job_id)
    return refusal


def _outcome(sub: Subscription, deadline: float) -> dict[str, Any] | None:
    while (left := deadline - time.monotonic()) > 0:
        event = sub.get(left)
        if isinstance(event, ItemFailed):
            return event.rejection
        if event is None or isinstance(event, Dispatched | Finished):
            return None
    return None


def _ended(sub: Subscription, deadline: float) -> bool:
    # Deleted only after its runner has published the end: it reads the job until then.
    while (left := deadline - time.monotonic()) > 0:
        event = sub.get(left)
        if event is None or isinstance(event, Finished):
            return event is not None
    return False


def capable_node_free(orch: Orchestrator, job_id: str) -> bool:
    """Whether some node that can run the job has room now (it is then dispatched at
    once, so the wait is short)."""
    pool = orch.pool
    try:
        needs = pool.requirements_of(orch.get(job_id))
    except JobNotFound:
        return False
    for info in orch.nodes():
        try:
            worker = pool.worker(info.name)
        except ConfigError:
            continue  # removed meanwhile
        caps = worker.node.capabilities
        if caps is not None and worker.has_room() and dispatch.can_run(needs, caps):
            return True
    return False
