"""Admission: what a face asks for, checked in one order, once, before a job is recorded.

The order is the contract every face shares, so the same bad request gets the same
answer through every door and a refused request leaves nothing behind:

1. the graph's shape (``WorkflowFormatError`` naming the node or input at fault);
2. input-file references: names in the graph the owner's input files answer to;
3. pre-flight against the pool's ``/object_info`` (``GraphRejected``);
4. the queue bound, for the service and for the owner (``QueueFull``);
5. the job is recorded (``Door.record``).

The steps are pure over the values the ``Door`` (the façade) hands them; the door does
the reading and the recording.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.errors import QueueFull
from orchestrator.jobs import MAX_COUNT, Visibility
from orchestrator.validation import check_against_object_info, raise_for_problems
from orchestrator.workflow import check_graph_shape

# Seconds a client is told to wait when the queue is full; a few images' worth of work.
QUEUE_FULL_RETRY_S = 30
# Seconds an owner whose share of the queue is full is told to wait: about one image's time
# on a GPU, after which one of its waiting images has usually started and freed a place.
OWNER_QUEUE_RETRY_S = 10

Handle = TypeVar("Handle")
Handle_co = TypeVar("Handle_co", covariant=True)


class QueueBound(BaseModel):
    """The most images waiting for a node: for the whole service and for one owner."""

    model_config = ConfigDict(frozen=True)

    max_queued: int = Field(ge=0)
    max_per_owner: int = Field(ge=0)


class Admission(BaseModel):
    """What a face submits for a caller, already translated from its wire format.

    Either ``workflow`` (a registry name; ``values`` fill its placeholders) or ``graph``
    (raw API format). ``images`` are input bytes sent with the request; ``inputs`` names
    input files already stored (name → sha256), which the graph's inputs refer to by name.
    ``bound`` is the queue bound to apply (None: none, as for a Python caller);
    ``preflight`` False leaves the ``/object_info`` check to the face (the gateway plans
    partial execution itself); ``source`` is how errors name the graph.
    """

    model_config = ConfigDict(frozen=True)

    workflow: str | None = None
    graph: dict[str, Any] | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    count: int = Field(default=1, ge=1, le=MAX_COUNT)
    images: dict[str, bytes] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict)
    owner: str = "local"
    visibility: Visibility = Visibility.PRIVATE
    character: str | None = None
    conversation: str | None = None
    priority: int = 0
    metadata: dict[str, str] = Field(default_factory=dict)
    idempotency_key: str | None = None
    job_id: str | None = None
    extra_data: dict[str, Any] = Field(default_factory=dict)
    bound: QueueBound | None = None
    preflight: bool = True
    source: str = "graph"


@dataclass(frozen=True)
class Admitted:
    """A request past the checks: the graph as checked (None for a workflow) and every
    input file it names (name → sha256)."""

    request: Admission
    graph: dict[str, Any] | None
    inputs: dict[str, str]


class Door(Protocol[Handle_co]):
    """What admission reads from, and records through (the façade)."""

    def object_info(self) -> dict[str, Any]: ...

    def queued_count(self, owner: str | None = None) -> int: ...

    def exclusive(self) -> AbstractContextManager[object]: ...

    def record(self, admitted: Admitted) -> Handle_co: ...


def admit(request: Admission, door: Door[Handle]) -> Handle:
    """Check ``request`` in the one order and record it; the first refusal raises."""
    graph = shape(request)
    inputs = dict(request.inputs)  # resolved by the face through Orchestrator.inputs_named
    if graph is not None:
        if request.preflight:
            named = {**inputs, **dict.fromkeys(request.images, "")}
            preflight(graph, named, door.object_info(), source=request.source)
    with door.exclusive():  # no other admission between the count and the insert
        check_bound(request, door)
        return door.record(Admitted(request, graph, inputs))


def shape(request: Admission) -> dict[str, Any] | None:
    """The raw graph, shape-checked (None for a registry workflow)."""
    if request.graph is None:
        return None
    return check_graph_shape(dict(request.graph), source=request.source)


def preflight(graph: Mapping[str, Any], inputs: Mapping[str, str],
              object_info: Mapping[str, Any], *, source: str) -> None:
    """``GraphRejected`` naming each node and input ComfyUI would refuse. Inputs naming
    an input file pass as files we upload; nothing is judged while no node has answered."""
    if not object_info:
        return
    raise_for_problems(check_against_object_info(dict(graph), dict(object_info),
                                                 inputs=frozenset(inputs)), source=source)


def check_bound(request: Admission, door: Door[Any]) -> None:
    """``QueueFull`` when ``request.count`` more images overfill the service's queue or
    the owner's share of it."""
    if request.bound is not None:
        check_room(door, request.owner, request.count, request.bound)


def check_room(door: Door[Any], owner: str, count: int, bound: QueueBound) -> None:
    """``QueueFull`` when ``count`` more images of ``owner`` overfill the queue."""
    queued = door.queued_count()
    if queued + count > bound.max_queued:
        raise QueueFull(scope="service", owner=owner, queued=queued,
                        limit=bound.max_queued, retry_after=QUEUE_FULL_RETRY_S)
    mine = door.queued_count(owner)
    if mine + count > bound.max_per_owner:
        raise QueueFull(scope="owner", owner=owner, queued=mine,
                        limit=bound.max_per_owner, retry_after=OWNER_QUEUE_RETRY_S)
