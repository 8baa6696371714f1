"""``SqlJobStore``: the job store's methods over SQL, shared by SQLite and PostgreSQL.

A subclass opens the database and gives ``_tx`` (one committed transaction per method).
Where SQLite runs one write transaction at a time and PostgreSQL runs them side by side,
the hooks ``_lock_job``, ``_lock_key``, ``_before_claim`` and ``_take`` make the second
as safe as the first; on SQLite they do nothing.
"""

from __future__ import annotations

import abc
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

from orchestrator.errors import IdempotencyKeyReused, JobNotFound
from orchestrator.jobs import (
    Item,
    ItemError,
    ItemStatus,
    Job,
    JobRequirements,
    JobSpec,
    JobStatus,
    Visibility,
    utcnow,
)
from orchestrator.outputs import OutputRecord
from orchestrator.store import expiry, legacy, output_rows, position, rules, tables
from orchestrator.store.access_store import AccessMethods
from orchestrator.store.claim import ClaimScan
from orchestrator.store.dialect import Conn, Dialect
from orchestrator.store.input_store import InputFileMethods
from orchestrator.store.protocol import CanRun, JobPage, JobView, OutputPage, PromptId, Settled

Clock = Callable[[], datetime]
# (item, attempts used in its budget, its job's spec read on demand) -> the changed item
Change = Callable[[Item, int, Callable[[], JobSpec]], Item]

# Limits
MAX_PAGE = 500  # jobs or outputs per page, whatever the caller asks
IDEMPOTENCY_TTL = timedelta(hours=24)
# Timeouts (seconds)
# How long "nothing is queued" is believed without a look at the database, in case a
# writer this process does not see (another store on the same file) queued something.
QUEUED_HINT_TTL = 1.0


def _limit(limit: int) -> int:
    return max(1, min(limit, MAX_PAGE))


def _item_of(job: Job, item_id: str) -> Item:
    return next(item for item in job.items if item.id == item_id)


@contextlib.contextmanager
def _held(lock: threading.Lock) -> Iterator[None]:
    with lock:
        yield


def _with_items(job: Job, items: Sequence[Item], **update: object) -> Job:
    return job.model_copy(update={"items": list(items), **update})


class SqlJobStore(InputFileMethods, AccessMethods, abc.ABC):
    """The ``JobStore`` over a SQL database; see ``orchestrator.store.protocol``.

    ``clock`` gives every timestamp (tz-aware UTC). Input files, tokens, single-use keys
    and counters come from the mixins (``input_store``, ``access_store``).
    """

    replicated = False  # one process writes a SQLite file

    def __init__(self, *, clock: Clock = utcnow, dialect: Dialect) -> None:
        self._clock = clock
        self._dialect = dialect
        self._exclusive: dict[str, threading.Lock] = {}
        self._exclusive_guard = threading.Lock()
        # Whether an item may be queued, as this process's own writes tell (``_queued``).
        self._maybe_queued = True
        self._idle_since = 0.0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @abc.abstractmethod
    def close(self) -> None:
        """Release the database; harmless twice."""

    @abc.abstractmethod
    def _tx(self, what: str, *, write: bool = True) -> AbstractContextManager[Conn]:
        """One transaction: committed on normal exit, rolled back on any exception; any
        database failure surfaces as ``StoreError`` naming ``what``."""

    def _now(self) -> datetime:
        return self._clock()

    def import_old_files(self, data_dir: Path) -> list[Path]:
        """Import the separate database files of the older data-directory layout found in
        ``data_dir``, then rename them aside (``store/legacy.py``); the files imported."""
        found = legacy.old_files(Path(data_dir))
        for path in found:
            with self._tx(f"importing {path.name}") as conn:
                legacy.import_file(conn, path, Path(data_dir) / "blobs")
                self._queued()
            legacy.set_aside(path)
        return found

    def exclusive(self, name: str) -> AbstractContextManager[None]:
        """See ``JobStore.exclusive``: a lock of this process (one process writes a SQLite
        file); ``PostgresJobStore`` adds one every replica shares."""
        with self._exclusive_guard:
            return _held(self._exclusive.setdefault(name, threading.Lock()))

    def _lock_job(self, conn: Conn, job_id: str) -> None:
        """Hold the job against other writers until the transaction ends."""
        return

    def _lock_key(self, conn: Conn, owner: str, key: str) -> None:
        """Hold the owner's idempotency key against other writers until the end."""
        return

    def _before_claim(self, conn: Conn, node: str) -> None:
        """Hold the node against other claims for it until the transaction ends."""
        return

    def _lock_item_job(self, conn: Conn, item_id: str) -> None:
        """Hold the item's job against other writers until the transaction ends."""
        return

    def _take(self, conn: Conn, job: Job, item_id: str) -> Job | None:
        """The claim scan's find, confirmed (``claim.Take``): with one writer at a time,
        what the scan read still holds."""
        return job

    # --- jobs -----------------------------------------------------------------------------

    def create_job(self, spec: JobSpec, *, idempotency_key: str | None = None,
                   job_id: str | None = None) -> Job:
        """See ``JobStore.create_job``."""
        return self.create_job_idempotent(spec, idempotency_key=idempotency_key,
                                          job_id=job_id)[0]

    def create_job_idempotent(self, spec: JobSpec, *, idempotency_key: str | None = None,
                              job_id: str | None = None,
                              requirements: JobRequirements | None = None
                              ) -> tuple[Job, bool]:
        """See ``JobStore.create_job_idempotent``."""
        now = self._clock()
        job = rules.new_job(spec, job_id or uuid.uuid4().hex, now).model_copy(
            update={"requirements": requirements})
        with self._tx(f"creating job {job.id}") as conn:
            if idempotency_key is None:
                tables.insert_job(conn, job)
                self._queued()
                return job, False
            self._lock_key(conn, spec.owner, idempotency_key)
            known = tables.idempotent_job(conn, spec.owner, idempotency_key,
                                          since=now - IDEMPOTENCY_TTL)
            digest = tables.spec_digest(spec)
            existing = tables.load_job(conn, known[0]) if known else None
            if existing is not None and known is not None:
                if known[1] not in (None, digest):
                    raise IdempotencyKeyReused(idempotency_key, existing.id)
                return existing, True
            tables.insert_job(conn, job)
            tables.remember_key(conn, spec.owner, idempotency_key, job.id, now, digest)
            self._queued()
            return job, False

    def create_jobs(self, specs: Sequence[JobSpec]) -> list[Job]:
        """See ``JobStore.create_jobs``."""
        now = self._clock()
        jobs = [rules.new_job(spec, uuid.uuid4().hex, now) for spec in specs]
        with self._tx(f"creating {len(jobs)} jobs") as conn:
            for job in jobs:
                tables.insert_job(conn, job)
            self._queued()
        return jobs

    def get_job(self, job_id: str) -> Job:
        """See ``JobStore.get_job``."""
        with self._tx(f"reading job {job_id}", write=False) as conn:
            return self._job(conn, job_id)

    def job_exists(self, job_id: str) -> bool:
        """See ``JobStore.job_exists``: one indexed look-up, no items or graphs read."""
        with self._tx(f"looking up job {job_id}", write=False) as conn:
            return conn.execute("SELECT 1 FROM jobs WHERE id = ?",
                                (job_id,)).fetchone() is not None

    def job_view(self, job_id: str, *, job: Job | None = None) -> JobView:
        """See ``JobStore.job_view``."""
        with self._tx(f"reading job {job_id}", write=False) as conn:
            job = job if job is not None else self._job(conn, job_id)
            listed = {oid for item in job.items for oid in item.output_ids}
            recorded = conn.execute("SELECT id FROM outputs WHERE job_id = ? ORDER BY seq DESC",
                                    (job_id,)).fetchall()
            positions = {}
            if any(item.status is ItemStatus.QUEUED for item in job.items):
                rows = conn.execute(f"SELECT id, {position.PLACE_COLUMNS} FROM items"
                                    " WHERE job_id = ? AND status = 'queued'", (job_id,))
                positions = {row[0]: position.claims_ahead_of(conn, row[1:])
                             for row in rows.fetchall()}
        return JobView(job=job, unlisted_outputs=[row[0] for row in recorded
                                                  if row[0] not in listed],
                       positions=positions)

    def get_item(self, item_id: str) -> Item:
        """See ``JobStore.get_item``."""
        with self._tx(f"reading item {item_id}", write=False) as conn:
            return self._item(conn, item_id)[1]

    def list_jobs(self, *, owner: str | None = None, status: JobStatus | None = None,
                  workflow: str | None = None, character: str | None = None,
                  conversation: str | None = None, metadata: dict[str, str] | None = None,
                  limit: int = 50, cursor: str | None = None) -> JobPage:
        """See ``JobStore.list_jobs``."""
        filters = {"owner": owner, "status": status.value if status else None,
                   "workflow": workflow, "character": character,
                   "conversation": conversation}
        before = tables.decode_cursor("j", cursor)
        with self._tx("listing jobs", write=False) as conn:
            jobs, last = tables.page_jobs(conn, filters, metadata or {}, limit=_limit(limit),
                                          before=before, dialect=self._dialect)
        return JobPage(jobs=jobs, next_cursor=tables.encode_cursor("j", last))

    def purge_idempotency(self, older_than: datetime | None = None) -> int:
        """See ``JobStore.purge_idempotency``."""
        before = older_than or self._clock() - IDEMPOTENCY_TTL
        with self._tx("purging idempotency keys") as conn:
            return tables.forget_keys(conn, before)

    # --- the queue ------------------------------------------------------------------------

    def claim_next(self, node: str, *, can_run: CanRun, prompt_id: PromptId,
                   max_on_node: int | None = None) -> tuple[Job, Item] | None:
        """See ``JobStore.claim_next``."""
        if not self._anything_queued():
            return None  # without taking the write lock that other writers would wait on
        with self._tx(f"claiming an item for node {node}") as conn:
            self._before_claim(conn, node)
            if not self._look_for_queued(conn):
                return None
            if max_on_node is not None and tables.count(
                    conn, "SELECT COUNT(*) FROM items WHERE active_node = ?",
                    [node]) >= max_on_node:
                return None
            found = ClaimScan(conn, can_run, self._take).run()
            if found is None:
                return None
            job, item = found
            claimed = rules.dispatch(item, node=node, prompt_id=prompt_id(item),
                                     now=self._clock())
            taken = self._apply(conn, job, claimed)
            self._look_for_queued(conn)  # the next round knows whether to look at all
            return taken

    def _anything_queued(self) -> bool:
        """Whether a claim may find something. One process writes a SQLite file, so its own
        writes say when something was queued (``_queued``) and the last claim when nothing
        was: a claim round then costs no transaction. A look at the database still comes
        every QUEUED_HINT_TTL, for a writer this process does not see."""
        if self._maybe_queued:
            return True
        if time.monotonic() - self._idle_since <= QUEUED_HINT_TTL:
            return False
        with self._tx("looking for queued items", write=False) as conn:
            return self._look_for_queued(conn)

    def _look_for_queued(self, conn: Conn) -> bool:
        """Whether anything is queued, remembered as the hint (inside a transaction)."""
        self._idle_since = time.monotonic()
        self._maybe_queued = tables.top_priority(conn, None) is not None  # one index lookup
        return self._maybe_queued

    def _queued(self) -> None:
        """Something was queued by a transaction of this process (call inside it)."""
        self._maybe_queued = True

    def set_requirements(self, job_id: str, requirements: JobRequirements) -> None:
        """See ``JobStore.set_requirements``."""
        with self._tx(f"storing the requirements of job {job_id}") as conn:
            tables.save_requirements(conn, job_id, requirements)

    def set_rendered(self, item_id: str, *, graph: dict[str, object],
                     seed: int | None) -> Item:
        """See ``JobStore.set_rendered``."""
        with self._tx(f"storing the rendered graph of item {item_id}") as conn:
            item = self._item(conn, item_id, lock=True, graph=False)[1]  # replaced here
            rendered = item.model_copy(update={"graph": graph, "seed": seed})
            tables.save_graph(conn, rendered)
            return rendered

    def mark_running(self, item_id: str) -> Item:
        """See ``JobStore.mark_running``."""
        return self._change(item_id, "running", lambda item, _, __: rules.start(
            item, self._clock())).item

    def mark_succeeded(self, item_id: str, output_ids: list[str]) -> Item:
        """See ``JobStore.mark_succeeded``."""
        return self.succeed(item_id, output_ids).item

    def succeed(self, item_id: str, output_ids: list[str], *,
                outputs: Sequence[OutputRecord] = ()) -> Settled:
        """See ``JobStore.succeed``."""
        with self._tx(f"marking item {item_id} succeeded") as conn:
            self._lock_item_job(conn, item_id)
            stored = [output_rows.insert(conn, record) for record in outputs]
            renamed = {new.id: kept.id for new, kept in zip(outputs, stored, strict=True)}
            ids = list(dict.fromkeys(renamed.get(oid, oid) for oid in output_ids))
            settled = self._change_in(conn, item_id, lambda item, _, __: rules.succeed(
                item, ids, self._clock()), locked=True)
            return settled.model_copy(update={"outputs": stored})

    def mark_failed(self, item_id: str, error: ItemError, *, retry: bool) -> Item:
        """See ``JobStore.mark_failed``."""

        def change(item: Item, used: int, spec: Callable[[], JobSpec]) -> Item:
            return rules.fail(item, error, retry=retry, now=self._clock(),
                              attempts_left=used < spec().max_attempts)

        return self._change(item_id, "failed", change).item

    def requeue(self, item_id: str, reason: str) -> Item:
        """See ``JobStore.requeue``."""
        return self.mark_failed(item_id, ItemError(code="node_lost", message=reason),
                                retry=True)

    def mark_canceled(self, item_id: str) -> Item:
        """See ``JobStore.mark_canceled``."""
        return self._change(item_id, "canceled", lambda item, _, __: rules.cancel(
            item, self._clock())).item

    def request_cancel(self, job_id: str) -> Job:
        """See ``JobStore.request_cancel``."""
        with self._tx(f"canceling job {job_id}") as conn:
            job = self._job(conn, job_id, lock=True)
            if job.status.terminal:
                return job
            now = self._clock()
            items = [rules.request_cancel(item, now) for item in job.items]
            return self._save_job(conn, _with_items(job, items, cancel_requested=True), job)

    def retry_job(self, job_id: str) -> Job:
        """See ``JobStore.retry_job``."""
        with self._tx(f"retrying job {job_id}") as conn:
            job = self._job(conn, job_id, lock=True)
            if not job.status.terminal:
                return job
            items = [rules.reopen(item) for item in job.items]
            for old, new in zip(job.items, items, strict=True):
                if new is not old:
                    tables.reset_retry_base(conn, new)
            self._queued()
            return self._save_job(conn, _with_items(job, items, cancel_requested=False), job)

    def in_flight(self, node: str | None = None) -> list[tuple[Job, Item]]:
        """See ``JobStore.in_flight``."""
        with self._tx("listing items in flight", write=False) as conn:
            return self._pairs(conn, tables.on_node(conn, node))

    def adopt_orphans(self) -> list[tuple[Job, Item]]:
        """See ``JobStore.adopt_orphans``: one process owns every item of its file."""
        return []

    @staticmethod
    def _pairs(conn: Conn, ids: Sequence[tuple[str, str]]) -> list[tuple[Job, Item]]:
        """(job, item) for each (job id, item id)."""
        jobs = {job.id: job for job in tables.load_jobs(conn, [p[0] for p in ids])}
        return [(jobs[job_id], _item_of(jobs[job_id], item_id)) for job_id, item_id in ids]

    def count_on_node(self, node: str) -> int:
        """See ``JobStore.count_on_node``."""
        with self._tx(f"counting items on node {node}", write=False) as conn:
            return tables.count(conn, "SELECT COUNT(*) FROM items WHERE active_node = ?",
                                [node])

    def queued_count(self, owner: str | None = None) -> int:
        """See ``JobStore.queued_count``."""
        with self._tx("counting queued items", write=False) as conn:
            if owner is None:
                return tables.count(conn, "SELECT COUNT(*) FROM items WHERE status = 'queued'")
            return tables.count(conn, "SELECT COUNT(*) FROM items WHERE status = 'queued'"
                                " AND owner = ?", (owner,))

    def queue_position(self, item_id: str) -> int | None:
        """See ``JobStore.queue_position``."""
        with self._tx(f"finding the queue position of item {item_id}", write=False) as conn:
            row = conn.execute(f"SELECT status, {position.PLACE_COLUMNS} FROM items"
                               " WHERE id = ?", (item_id,)).fetchone()
            if row is None:
                raise JobNotFound(item_id, what="item")
            return position.claims_ahead_of(conn, row[1:]) if row[0] == "queued" else None

    def _job(self, conn: Conn, job_id: str, *, lock: bool = False) -> Job:
        if lock:
            self._lock_job(conn, job_id)
        job = tables.load_job(conn, job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def _item(self, conn: Conn, item_id: str, *, lock: bool = False,
              graph: bool = True) -> tuple[str, Item, int]:
        """The item's job id, the item (read alone: not its job's other items; its graph
        only with ``graph``), and the attempts it used in its current budget."""
        if lock:
            self._lock_item_job(conn, item_id)
        found = tables.load_item(conn, item_id, graph=graph)
        if found is None:
            raise JobNotFound(item_id, what="item")
        job_id, retry_base, item = found
        return job_id, item, len(item.attempts) - retry_base

    def _change(self, item_id: str, state: str, change: Change) -> Settled:
        """One item's change and its job's status, in one transaction that reads the item
        alone and its siblings' status columns (never their bodies)."""
        with self._tx(f"marking item {item_id} {state}") as conn:
            return self._change_in(conn, item_id, change)

    def _change_in(self, conn: Conn, item_id: str, change: Change, *,
                   locked: bool = False) -> Settled:
        """``_change`` inside the caller's transaction (``locked``: the job is held)."""
        job_id, item, used = self._item(conn, item_id, lock=not locked)

        def spec() -> JobSpec:
            found = tables.job_spec(conn, job_id)
            if found is None:
                raise JobNotFound(job_id)
            return found

        changed = change(item, used, spec)
        tables.save_item(conn, changed)
        if changed.status is ItemStatus.QUEUED:
            self._queued()
        status, error = tables.settle_job_state(conn, job_id)
        return Settled(item=changed, job_status=status, error=error)

    def _apply(self, conn: Conn, job: Job, item: Item) -> tuple[Job, Item]:
        items = [item if old.id == item.id else old for old in job.items]
        updated = _with_items(job, items)
        tables.save_item(conn, item)
        tables.save_job_state(conn, updated)
        return updated, item

    def _save_job(self, conn: Conn, job: Job, before: Job) -> Job:
        for old, new in zip(before.items, job.items, strict=True):
            if new is not old:
                tables.save_item(conn, new)
        tables.save_job_state(conn, job)
        return job

    # --- outputs --------------------------------------------------------------------------

    def add_output(self, record: OutputRecord) -> OutputRecord:
        """See ``JobStore.add_output``."""
        with self._tx(f"recording output {record.filename} of item {record.item_id}") as conn:
            return output_rows.insert(conn, record)

    def get_output(self, output_id: str) -> OutputRecord:
        """See ``JobStore.get_output``."""
        with self._tx(f"reading output {output_id}", write=False) as conn:
            record = output_rows.load(conn, output_id)
        if record is None:
            raise JobNotFound(output_id, what="output")
        return record

    def output_for_item_file(self, item_id: str, filename: str,
                             node_id: str | None = None) -> OutputRecord | None:
        """See ``JobStore.output_for_item_file``."""
        with self._tx(f"looking up output {filename} of item {item_id}", write=False) as conn:
            return output_rows.for_file(conn, item_id, filename, node_id)

    def list_outputs(self, *, owner: str | None = None, job_id: str | None = None,
                     character: str | None = None, conversation: str | None = None,
                     workflow: str | None = None, visibility: Visibility | None = None,
                     visible_to: str | None = None, limit: int = 50,
                     cursor: str | None = None, files_only: bool = False) -> OutputPage:
        """See ``JobStore.list_outputs``."""
        filters = {"owner": owner, "job_id": job_id, "character": character,
                   "conversation": conversation, "workflow": workflow,
                   "visibility": visibility.value if visibility else None}
        before = tables.decode_cursor("o", cursor)
        with self._tx("listing outputs", write=False) as conn:
            records, last = output_rows.page(conn, filters, limit=_limit(limit),
                                             before=before, visible_to=visible_to,
                                             files_only=files_only)
        return OutputPage(outputs=records, next_cursor=tables.encode_cursor("o", last))

    def gallery_character(self, character: str, *, limit: int = 50,
                          cursor: str | None = None) -> OutputPage:
        """See ``JobStore.gallery_character``."""
        return self.list_outputs(character=character, visibility=Visibility.PUBLIC,
                                 limit=limit, cursor=cursor, files_only=True)

    def gallery_conversation(self, conversation: str, owner: str, *, limit: int = 50,
                             cursor: str | None = None) -> OutputPage:
        """See ``JobStore.gallery_conversation``."""
        return self.list_outputs(conversation=conversation, owner=owner, limit=limit,
                                 cursor=cursor, files_only=True)

    def delete_output(self, output_id: str) -> OutputRecord:
        """See ``JobStore.delete_output``."""
        with self._tx(f"deleting output {output_id}") as conn:
            record = output_rows.load(conn, output_id)
            if record is None:
                raise JobNotFound(output_id, what="output")
            output_rows.delete(conn, output_id)
            self._forget_output(conn, record)
            return record

    def _forget_output(self, conn: Conn, record: OutputRecord) -> None:
        """Drop a deleted output from its item's ``output_ids``, so the job stops naming
        it (its item may be gone with a purged job: then there is nothing to change)."""
        if tables.item_home(conn, record.item_id) is None:
            return
        item = self._item(conn, record.item_id, lock=True)[1]
        if record.id in item.output_ids:
            kept = [oid for oid in item.output_ids if oid != record.id]
            tables.save_item(conn, item.model_copy(update={"output_ids": kept}))

    def blob_references(self, sha256: str) -> int:
        """See ``JobStore.blob_references``."""
        with self._tx(f"counting references to blob {sha256}", write=False) as conn:
            return output_rows.blob_references(conn, sha256)

    def input_references(self, sha256: str) -> int:
        """See ``JobStore.input_references``."""
        # A scan of every job's spec: deleting an output is rare, and no column copies
        # the input images (they live only in the spec's JSON).
        with self._tx(f"counting jobs that use blob {sha256}", write=False) as conn:
            return tables.count(conn, self._dialect.input_references, [sha256])

    # --- retention --------------------------------------------------------------------------

    def delete_finished_job(self, job_id: str) -> bool:
        """See ``JobStore.delete_finished_job``."""
        with self._tx(f"deleting job {job_id}") as conn:
            found = tables.load_jobs(conn, [job_id])
            if not found or not found[0].status.terminal:
                return False
            expiry.delete_job_rows(conn, job_id)
            return True

    def delete_expired_jobs(self, created_before: datetime, *,
                            limit: int = MAX_PAGE) -> list[tuple[Job, list[OutputRecord]]]:
        """See ``JobStore.delete_expired_jobs``."""
        with self._tx("deleting expired jobs") as conn:
            jobs = tables.load_jobs(conn, expiry.expired_job_ids(conn, created_before,
                                                                 _limit(limit)))
            return [(job, expiry.delete_job_rows(conn, job.id)) for job in jobs]
