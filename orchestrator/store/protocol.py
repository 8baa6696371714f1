"""The job store interface that the runner, the pool and the front ends program against.

SQLite implements it (``SqliteJobStore``) for one process, and PostgreSQL
(``PostgresJobStore``) for several orchestrator replicas sharing one queue. Contract common
to all methods:

- when a method returns, its change is durable (committed), so callers may act on it;
- item state changes follow ``jobs.ITEM_TRANSITIONS``; a forbidden one raises
  ``IllegalTransition`` (a ``StoreError``) and changes nothing;
- a missing job, item or output raises ``JobNotFound`` (``what`` names which);
- any database failure raises ``StoreError``; a closed store refuses work with one;
- the store is safe to share between threads and processes; on PostgreSQL, between
  replicas, each holding a lease on the items it claimed (``adopt_orphans``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from pydantic import BaseModel

from orchestrator.inputs import InputFile, InputPage, OnName, StoredInput
from orchestrator.jobs import (
    Item,
    ItemError,
    Job,
    JobRequirements,
    JobSpec,
    JobStatus,
    Visibility,
)
from orchestrator.outputs import OutputRecord
from orchestrator.store.rates import Rate
from orchestrator.store.token_rows import TokenRow

CanRun = Callable[[Job, Item], bool]
PromptId = Callable[[Item], str]


class JobPage(BaseModel):
    """One page of jobs, newest first; pass ``next_cursor`` back for the next (None: end)."""

    jobs: list[Job]
    next_cursor: str | None = None


class Settled(BaseModel):
    """An item as one change left it, and its job as that same transaction left it: the
    caller learns whether the job ended without reading it back."""

    item: Item
    job_status: JobStatus
    error: str | None = None  # the job's first item error, once it ended with one
    outputs: list[OutputRecord] = []  # the records written with the change, as stored


class JobView(BaseModel):
    """A job and what a subscriber's first look at it needs, read in one transaction:
    the output records not yet listed on their items (an output is recorded before its
    item succeeds), newest first, and each queued item's queue position."""

    job: Job
    unlisted_outputs: list[str]
    positions: dict[str, int]


class OutputPage(BaseModel):
    """One page of output records, newest first; ``next_cursor`` as for ``JobPage``."""

    outputs: list[OutputRecord]
    next_cursor: str | None = None


class JobStore(Protocol):
    """Durable jobs, items, idempotency keys, output records, input files, tokens and
    counters: everything the service keeps, in one database."""

    def __enter__(self) -> Self: ...

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def close(self) -> None:
        """Release the database; harmless twice. Later calls raise ``StoreError``."""

    # --- jobs -----------------------------------------------------------------------------

    def create_job(self, spec: JobSpec, *, idempotency_key: str | None = None,
                   job_id: str | None = None) -> Job:
        """A new job with ``spec.count`` queued items, or the owner's job for that key."""

    def create_job_idempotent(self, spec: JobSpec, *, idempotency_key: str | None = None,
                              job_id: str | None = None,
                              requirements: JobRequirements | None = None
                              ) -> tuple[Job, bool]:
        """Like ``create_job``; the flag is True when the key replayed an existing job.

        ``requirements`` (what a node must offer to run it) are stored with a new job.

        ``IdempotencyKeyReused`` when the key was first sent with another request."""

    def create_jobs(self, specs: Sequence[JobSpec]) -> list[Job]:
        """Several new jobs in one transaction (all or none)."""

    def get_job(self, job_id: str) -> Job:
        """The job; ``JobNotFound`` if absent."""

    def job_exists(self, job_id: str) -> bool:
        """Whether a job with this id is recorded, without loading it (a face's check
        that a client-chosen id is free)."""

    def job_view(self, job_id: str, *, job: Job | None = None) -> JobView:
        """The job with its unlisted outputs and queue positions (``JobView``), in one
        transaction; given ``job`` (just read), only the rest is read. ``JobNotFound`` if
        absent."""

    def get_item(self, item_id: str) -> Item:
        """The item; ``JobNotFound(what="item")`` if absent."""

    def list_jobs(self, *, owner: str | None = None, status: JobStatus | None = None,
                  workflow: str | None = None, character: str | None = None,
                  conversation: str | None = None, metadata: dict[str, str] | None = None,
                  limit: int = 50, cursor: str | None = None) -> JobPage:
        """Jobs matching every given filter, newest first; stable under concurrent inserts.

        ``InvalidCursor`` for a cursor this store did not issue for jobs.
        """

    def purge_idempotency(self, older_than: datetime | None = None) -> int:
        """Forget keys used before ``older_than`` (default: 24 h ago); how many."""

    # --- the queue ------------------------------------------------------------------------

    def claim_next(self, node: str, *, can_run: CanRun, prompt_id: PromptId,
                   max_on_node: int | None = None) -> tuple[Job, Item] | None:
        """Atomically dispatch the next runnable queued item to ``node``, or None.

        None also when ``node`` already has ``max_on_node`` items, counted over every
        process sharing the database (claims for one node never overfill it).

        Order: priority (higher first), then the owner with fewest items on nodes, then
        age (job creation, then item index). Items ``can_run`` rejects are skipped (a
        bounded number per call). The item becomes DISPATCHED with a new open attempt.
        ``can_run`` and ``prompt_id`` run inside the claim's transaction: keep them quick
        and never call the store from them.
        """

    def set_requirements(self, job_id: str, requirements: JobRequirements) -> None:
        """Store the requirements of a job stored without them (before they were kept)."""

    def set_rendered(self, item_id: str, *, graph: dict[str, object],
                     seed: int | None) -> Item:
        """Store the graph as rendered for the node, and its seed."""

    def mark_running(self, item_id: str) -> Item:
        """DISPATCHED → RUNNING; sets ``started_at`` once (also on RUNNING/CANCELING)."""

    def mark_succeeded(self, item_id: str, output_ids: list[str]) -> Item:
        """→ SUCCEEDED (also from CANCELING: the node finished first); closes the attempt."""

    def succeed(self, item_id: str, output_ids: list[str], *,
                outputs: Sequence[OutputRecord] = ()) -> Settled:
        """``mark_succeeded``, answering in the same transaction whether the job ended.

        ``outputs`` are recorded first in that same transaction (as ``add_output``: for a
        file already recorded, the stored record, whose id then replaces the new one in
        ``output_ids``); ``Settled.outputs`` has them as stored."""

    def mark_failed(self, item_id: str, error: ItemError, *, retry: bool) -> Item:
        """Close the attempt with ``error``; QUEUED again if ``retry`` and budget left.

        Otherwise FAILED with ``error``. A retryable failure while CANCELING → CANCELED.
        """

    def requeue(self, item_id: str, reason: str) -> Item:
        """The node lost the item: a retryable failure with ``reason``."""

    def mark_canceled(self, item_id: str) -> Item:
        """→ CANCELED (after the runner removed or interrupted the prompt)."""

    def request_cancel(self, job_id: str) -> Job:
        """Queued items → CANCELED, items on nodes → CANCELING; idempotent.

        A terminal job is returned unchanged. The runner then calls ``mark_canceled``
        (or ``mark_succeeded`` if the node finished first) for each CANCELING item.
        """

    def retry_job(self, job_id: str) -> Job:
        """A terminal job's FAILED/CANCELED items queued again with a fresh attempts budget.

        Clears ``cancel_requested``. A job that is not terminal is returned unchanged.
        """

    def in_flight(self, node: str | None = None) -> list[tuple[Job, Item]]:
        """Items on ``node`` (any node if None): dispatched, running or canceling.

        On a database that several replicas share: the items this replica runs, after
        adopting those of replicas whose lease lapsed (``adopt_orphans``).
        """

    def adopt_orphans(self) -> list[tuple[Job, Item]]:
        """Items on nodes whose replica died (its lease lapsed), now this replica's to
        reconcile; always empty where one process owns the database (SQLite)."""

    def count_on_node(self, node: str) -> int:
        """How many items are on ``node``."""

    def queued_count(self, owner: str | None = None) -> int:
        """How many items wait in the queue (``owner``'s only, when given)."""

    def exclusive(self, name: str) -> AbstractContextManager[None]:
        """One holder at a time of the lock called ``name``, in every process on this
        database: what is read and then written inside (a queue bound's count, then the
        insert) stays true for every replica until the block ends."""

    def queue_position(self, item_id: str) -> int | None:
        """How many queued items are ahead of the item, or None when it is not queued.

        Ahead means claimed before it in ``claim_next``'s order - priority, then the owner
        with the fewest items on nodes, then age - if nothing finished and nothing new
        came meanwhile (``store/position.py``). ``JobNotFound(what="item")`` if absent.
        """

    # --- outputs --------------------------------------------------------------------------

    def add_output(self, record: OutputRecord) -> OutputRecord:
        """Store the record; for a file already recorded, the stored record instead."""

    def get_output(self, output_id: str) -> OutputRecord:
        """The record; ``JobNotFound(what="output")`` if absent."""

    def output_for_item_file(self, item_id: str, filename: str,
                             node_id: str | None = None) -> OutputRecord | None:
        """The record of a file the item produced, if already collected."""

    def list_outputs(self, *, owner: str | None = None, job_id: str | None = None,
                     character: str | None = None, conversation: str | None = None,
                     workflow: str | None = None, visibility: Visibility | None = None,
                     visible_to: str | None = None, limit: int = 50,
                     cursor: str | None = None, files_only: bool = False) -> OutputPage:
        """Records matching every given filter, newest first.

        ``visible_to`` keeps what that owner may see: their own records and public ones;
        ``files_only`` leaves out the nodes' UI values (kind ``value``).
        """

    def gallery_character(self, character: str, *, limit: int = 50,
                          cursor: str | None = None) -> OutputPage:
        """The character's public output files (no UI values), newest first."""

    def gallery_conversation(self, conversation: str, owner: str, *, limit: int = 50,
                             cursor: str | None = None) -> OutputPage:
        """The owner's output files in the conversation (private ones too; no UI values),
        newest first."""

    def delete_output(self, output_id: str) -> OutputRecord:
        """Delete the record and return it; ``JobNotFound`` if absent. Its item no longer
        lists it in ``output_ids``.

        The blob stays: delete it when ``blob_references`` says nothing else uses it.
        """

    def blob_references(self, sha256: str) -> int:
        """How many output records point at the blob."""

    def input_references(self, sha256: str) -> int:
        """How many jobs use the blob as an input image (``JobSpec.images``)."""

    def blob_in_use(self, sha256: str) -> bool:
        """Whether any record names the blob: an output, a job's input image or an input
        file (expired or not). One query; the blob may go when this says False."""

    # --- input files (``orchestrator.inputs``) ----------------------------------------------

    def put_input_file(self, file: InputFile, *, on_name: OnName = OnName.KEEP) -> StoredInput:
        """Record ``file``; under a name the owner already uses, as ``on_name`` says. The
        owner's live record of the same bytes under the same name is returned instead of
        a new one (``created`` False). ``StoredInput.replaced`` lists the blobs of the
        records a ``REPLACE`` deleted, for the caller to release."""

    def input_file(self, owner: str, file_id: str) -> InputFile | None:
        """The owner's live (unexpired) record with that id."""

    def input_file_named(self, owner: str, path: str, *,
                         folder: str = "input") -> InputFile | None:
        """The owner's newest live record under that name."""

    def input_files_named(self, owner: str, paths: Iterable[str], *,
                          folder: str = "input") -> dict[str, InputFile]:
        """``{path: record}`` for each of ``paths`` the owner has a live record under."""

    def input_file_by_hash(self, owner: str, *, sha256: str | None = None,
                           blake3: str | None = None) -> InputFile | None:
        """The owner's newest live record of the bytes with that hash (others' do not
        count)."""

    def list_input_files(self, owner: str, *, limit: int = 50,
                         cursor: str | None = None) -> InputPage:
        """The owner's live records, newest first."""

    def delete_input_file(self, owner: str, file_id: str) -> InputFile | None:
        """Delete the owner's record and return it (None: none). The blob stays: release
        it when ``blob_in_use`` says nothing else names it."""

    def delete_expired_input_files(self, limit: int = 500) -> list[InputFile]:
        """Delete up to ``limit`` expired records; the records that went (blobs stay)."""

    # --- single-use idempotency keys (a mode of the idempotency keys above) ----------------

    def claim_key(self, owner: str, key: str, job_id: str) -> bool:
        """Claim the owner's key for ``job_id`` before the job exists; False when a key
        used in the last 24 h has it (a single-use key refuses any second use)."""

    def release_key(self, owner: str, key: str, job_id: str) -> None:
        """Forget the claim ``claim_key(owner, key, job_id)`` made (no other)."""

    def key_job(self, owner: str, key: str) -> str | None:
        """The job id a key used in the last 24 h names, or None."""

    # --- tokens and counters --------------------------------------------------------------

    def add_token(self, token: TokenRow) -> bool:
        """Store a token unless its id is taken; whether it was stored."""

    def token(self, token_id: str) -> TokenRow | None:
        """The token with that id."""

    def tokens(self) -> list[TokenRow]:
        """Every token, revoked ones too, oldest first."""

    def revoke_token(self, token_id: str, at: datetime) -> TokenRow | None:
        """Mark the token revoked at ``at`` (the first time counts); the token, or None."""

    def next_count(self, name: str, *, at_least: int = 0) -> int:
        """The named counter's next value: 0, 1, 2, ... over the database's life, and
        never below ``at_least``; no two callers, in any process, get the same one."""

    replicated: bool
    """Whether several processes may share this database (then rates are metered here)."""

    def take_rate(self, key: str, amount: float, rate: Rate) -> float:
        """Draw ``amount`` from ``key``'s bucket (``store/rates.py``), for every process on
        this database at once; the seconds to wait, 0 when the request may go ahead."""

    def import_old_files(self, data_dir: Path) -> list[Path]:
        """Import the separate files of the older data-directory layout, then rename
        them aside (``store/legacy.py``); the files imported."""

    def delete_finished_job(self, job_id: str) -> bool:
        """Delete one finished job with its items, output records and idempotency keys
        (a front end's request that failed before its caller heard of the job); False when
        it is absent or not finished. The blobs stay, as in ``delete_expired_jobs``."""

    def delete_expired_jobs(self, created_before: datetime, *,
                            limit: int = 500) -> list[tuple[Job, list[OutputRecord]]]:
        """Delete up to ``limit`` finished jobs created before ``created_before`` (oldest
        first), with their items, output records and idempotency keys; each job with the
        output records that went. Unfinished jobs stay until they finish.

        The blobs stay: release those of the outputs and the jobs' input images once
        nothing else names them.
        """
