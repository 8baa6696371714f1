"""The planner: what a job needs from a node, and each item's graph as it is sent.

Owned by the pool, it is where work meets the workflows and the input files, so that
dispatch only ever calls downward:

- at submit, ``requirements`` checks the values (bad ones fail before anything is
  recorded) and works out the node classes and model files the job needs, without
  rendering; they are stored with the job;
- while a node's worker claims an item, ``known`` answers from what is stored and never
  computes (it runs inside the store's claim transaction); a job stored before
  requirements were kept is noted and worked out once, outside the claim (``settle``);
- at dispatch, ``plan`` renders the item once: input files are read from the blob store
  there and only there, and each is staged under the sha256 it was stored with.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from orchestrator import dispatch
from orchestrator.blobs import Blobs
from orchestrator.dispatch import Requirements
from orchestrator.errors import OrchestratorError, WorkflowNotFound
from orchestrator.jobs import Item, Job, JobSpec
from orchestrator.registry import WorkflowRegistry
from orchestrator.rendering import checked_nodes, render_workflow
from orchestrator.staging import stage_named_inputs
from orchestrator.store import JobStore
from orchestrator.workflow import Workflow

# Limits
REMEMBERED_JOBS = 10_000  # jobs whose requirements are kept in memory (the store has them)

NOTHING_NEEDED = Requirements(frozenset(), frozenset())


@dataclass(frozen=True)
class RenderedItem:
    """An item's graph as it will be sent (upload markers still inside) and its seed.

    ``digests`` maps each upload marker's placeholder to the sha256 its bytes were
    stored under, so the upload is named without hashing them again.
    """

    graph: dict[str, Any]
    seed: int | None
    digests: Mapping[str, str] = field(default_factory=dict)


class Planner:
    """Requirements at submit, claims that never render, one render per item at dispatch.

    Thread-safe. ``rng`` draws the seeds of items whose ``%seed%`` is random; ``rng_lock``
    guards it (the service draws from it too).
    """

    def __init__(self, store: JobStore, blobs: Blobs, registry: WorkflowRegistry | None,
                 *, rng: random.Random, rng_lock: threading.Lock) -> None:
        self.store, self.blobs, self.registry = store, blobs, registry
        self.rng, self.rng_lock = rng, rng_lock
        self._lock = threading.Lock()
        self._working = threading.Lock()
        self._known: dict[str, Requirements] = {}
        self._pending: set[str] = set()  # jobs a claim found without requirements

    # --- at submit ----------------------------------------------------------------------

    def requirements(self, *, workflow: str | None, graph: Mapping[str, Any] | None,
                     values: Mapping[str, Any], images: Collection[str]) -> Requirements:
        """What a job needs from a node; raises ``SubstitutionError`` for values its
        workflow cannot take (``images`` names the input files it brings)."""
        if graph is not None:
            return dispatch.requirements(graph, images)
        return dispatch.requirements(checked_nodes(self.workflow(workflow), values,
                                                   images=images))

    def workflow(self, name: str | None) -> Workflow:
        """The registry's current version of ``name``; ``WorkflowNotFound`` otherwise."""
        if self.registry is None or name is None:
            raise WorkflowNotFound(name or "(none)")
        return self.registry.get(name)

    # --- choosing a node ----------------------------------------------------------------

    def known(self, job: Job) -> Requirements | None:
        """The job's requirements when known without computing; None otherwise, and the
        job is noted for ``settle``. Safe inside the store's claim transaction."""
        if job.requirements is not None:
            return Requirements.of_record(job.requirements)
        with self._lock:
            found = self._known.get(job.id)
            if found is None:
                self._pending.add(job.id)
        return found

    def requirements_of(self, job: Job) -> Requirements:
        """The job's requirements, worked out (and stored) once for a job stored without
        them. Never call it inside a claim: use ``known``."""
        found = self.known(job)
        if found is not None:
            return found
        with self._working:  # one at a time: a job is worked out once, whoever asks
            with self._lock:
                found = self._known.get(job.id)
            if found is None:
                found = self._work_out(job.id, job.spec)
            with self._lock:
                self._pending.discard(job.id)
                _remember(self._known, job.id, found)
        return found

    def settle(self) -> bool:
        """Work out the requirements of the jobs claims found without them; True when
        there were any (the queue may hold work for a node now)."""
        with self._lock:
            pending, self._pending = self._pending, set()
        for job_id in pending:
            try:
                self.requirements_of(self.store.get_job(job_id))
            except OrchestratorError:
                continue  # deleted meanwhile, or the store refused: a later claim notes it
        return bool(pending)

    def _work_out(self, job_id: str, spec: JobSpec) -> Requirements:
        try:
            found = self.requirements(workflow=spec.workflow, graph=spec.graph,
                                      values=spec.values, images=spec.images)
        except OrchestratorError:
            # e.g. the workflow was deleted since submit: a node claims the item, which
            # then fails at render with that message instead of blocking the queue.
            return NOTHING_NEEDED
        try:
            self.store.set_requirements(job_id, found.record())
        except OrchestratorError:
            pass  # kept in memory; the next process works them out again
        return found

    # --- at dispatch --------------------------------------------------------------------

    def plan(self, job: Job, item: Item) -> RenderedItem:
        """Render ``item`` with the registry's current version of the workflow (or stage
        the input files of a raw graph); the one place input bytes are read."""
        spec = job.spec
        files = {name: self.blobs.path(sha).read_bytes() for name, sha in spec.images.items()}
        if spec.graph is not None:
            return RenderedItem(stage_named_inputs(spec.graph, files), None, spec.images)
        with self.rng_lock:
            rng = random.Random(self.rng.getrandbits(64))
        rendered = render_workflow(self.workflow(spec.workflow), spec.values,
                                   index=item.index, count=spec.count, rng=rng,
                                   images=files, digests=spec.images)
        return RenderedItem(rendered.graph, rendered.seed, spec.images)


def _remember(known: dict[str, Requirements], job_id: str, found: Requirements) -> None:
    known[job_id] = found
    while len(known) > REMEMBERED_JOBS:
        known.pop(next(iter(known)))

