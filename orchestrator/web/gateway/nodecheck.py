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

from orchestrator.errors import JobNotFound
from orchestrator.events import Dispatched, Finished, ItemFailed, Subscription
from orchestrator.jobs import ItemStatus
from orchestrator.service import Orchestrator
from orchestrator.tokens import Principal

# Seconds the gateway waits for a free node's answer before answering 200 anyway (the
# prompt then runs or fails as any queued prompt does). Dispatch takes milliseconds on a
# loopback node; the bound covers uploading the prompt's input images to a remote one.
DISPATCH_WAIT_S = 10.0
# How often (seconds) the wait looks whether the prompt was left in the queue because
# another prompt was faster to the free node: the answer is then 200 at once.
QUEUED_CHECK_S = 0.25
# ComfyUI's checks that a class's ``VALIDATE_INPUTS`` takes over: ComfyUI skips them for
# the inputs it names (for every input when it takes ``**kwargs``), so only the node knows
# whether they apply.
WAIVABLE = frozenset({"value_smaller_than_min", "value_bigger_than_max", "value_not_in_list"})


def node_may_waive(refusal: dict[str, Any] | None) -> bool:
    """Whether the pre-flight refused only for checks a node's ``VALIDATE_INPUTS`` may
    take over (``WAIVABLE``): then a free node decides instead."""
    error = (refusal or {}).get("error")
    if not isinstance(error, dict) or error.get("type") != "prompt_outputs_failed_validation":
        return False
    assert refusal is not None
    found = [e.get("type") for entry in (refusal.get("node_errors") or {}).values()
             for e in entry.get("errors") or ()]
    return bool(found) and all(kind in WAIVABLE for kind in found)


def node_refusal(orch: Orchestrator, who: Principal, job_id: str, graph: dict[str, Any]
                 ) -> dict[str, Any] | None:
    """The 400 body the node gave the job's prompt, or None (dispatched, failed for
    another reason, left in the queue, or no answer within ``DISPATCH_WAIT_S``). Ask only
    when ``Orchestrator.capable_node_free`` said so just before the job was recorded
    (after, the job's own claim may have filled the node).

    A refused job is deleted once it has ended: ComfyUI keeps no trace of a prompt it
    answered 400, and neither do we."""
    deadline = time.monotonic() + DISPATCH_WAIT_S
    # Replaying from the first event held, so what the job already went through counts;
    # the job was just recorded, so the bus alone has its events (no read of the store).
    replayed = orch.replay_recorded(job_id)
    with replayed or orch.events(job_id, after=orch.replay_after()) as sub:
        refusal = _outcome(orch, sub, graph, deadline)
        if refusal is not None and _ended(sub, deadline):
            orch.delete_job(who, job_id)
    return refusal


def _outcome(orch: Orchestrator, sub: Subscription, graph: dict[str, Any],
             deadline: float) -> dict[str, Any] | None:
    while (left := deadline - time.monotonic()) > 0:
        event = sub.get(min(left, QUEUED_CHECK_S))
        if isinstance(event, ItemFailed):
            return event.rejection
        if isinstance(event, Dispatched | Finished):
            return None
        if event is None and _left_waiting(orch, sub.job_id, graph):
            return None
    return None


def _left_waiting(orch: Orchestrator, job_id: str, graph: dict[str, Any]) -> bool:
    """Whether the job waits in the queue with no node free for it: another prompt took
    the free node first (it then runs as any queued prompt; the client is not kept
    waiting for it). While a node is still free, the claim is only slow: wait on."""
    try:
        job = orch.get(job_id)
    except JobNotFound:
        return True
    return (all(item.status is ItemStatus.QUEUED for item in job.items)
            and not orch.capable_node_free(graph))


def _ended(sub: Subscription, deadline: float) -> bool:
    # Deleted only after its runner has published the end: it reads the job until then.
    while (left := deadline - time.monotonic()) > 0:
        event = sub.get(left)
        if event is None or isinstance(event, Finished):
            return event is not None
    return False
