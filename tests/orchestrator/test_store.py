"""The job store: one contract suite, applied to every implementation (SQLite, PostgreSQL).

Every state change is durable when a method returns, follows ``ITEM_TRANSITIONS``,
claims are exclusive across threads and processes, and pages are stable under inserts.
"""

from __future__ import annotations

import itertools
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from orchestrator.errors import (
    ConfigError,
    IdempotencyKeyReused,
    IllegalTransition,
    InvalidCursor,
    JobNotFound,
    StoreError,
)
from orchestrator.inputs import InputFile, OnName, new_file
from orchestrator.jobs import (
    ITEM_TRANSITIONS,
    Item,
    ItemError,
    ItemStatus,
    Job,
    JobSpec,
    JobStatus,
    Visibility,
)
from orchestrator.outputs import OutputKind, OutputRecord
from orchestrator.store import (
    DATABASE_NAME,
    JobStore,
    SqliteJobStore,
    open_store,
    pg_schema,
    schema,
    sql_store,
    tables,
)
from orchestrator.store.postgres import PostgresJobStore
from orchestrator.store.rates import Rate
from orchestrator.store.rules import new_job, transition
from orchestrator.store.schema import SCHEMA_VERSION
from orchestrator.store.token_rows import TokenRow
from tests.postgres import fresh_database, restart

CHILD = Path(__file__).with_name("store_child.py")
REPO = Path(__file__).parents[2]


class FakeClock:
    """A settable UTC clock: every store timestamp comes from it."""

    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


StoreFactory = Callable[[], JobStore]
# Each implementation opens a store over the test's database: SQLite's file in tmp_path,
# or an empty database of its own on the session's real PostgreSQL (``postgres_url``).
IMPLEMENTATIONS: dict[str, Callable[[pytest.FixtureRequest, FakeClock], JobStore]] = {
    "sqlite": lambda request, clock: SqliteJobStore(
        request.getfixturevalue("tmp_path") / DATABASE_NAME, clock=clock),
    "postgres": lambda request, clock: PostgresJobStore(
        request.getfixturevalue("postgres_url"), clock=clock),
}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def make_store(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[StoreFactory]:
    """Opens stores over one database (a fresh instance each call); closes them all."""
    opened: list[JobStore] = []

    def make() -> JobStore:
        opened.append(IMPLEMENTATIONS[request.param](request, clock))
        return opened[-1]

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> JobStore:
    return make_store()


def spec(**fields: object) -> JobSpec:
    return JobSpec.model_validate({"workflow": "portrait", **fields})


def anything(job: Job, item: Item) -> bool:
    return True


def claim(store: JobStore, node: str = "n1",
          can_run: Callable[[Job, Item], bool] = anything) -> tuple[Job, Item]:
    claimed = store.claim_next(node, can_run=can_run, prompt_id=lambda item: f"p-{item.id}")
    assert claimed is not None
    return claimed


def fail(store: JobStore, item_id: str, *, retry: bool = True) -> Item:
    return store.mark_failed(item_id, ItemError(code="boom", message="it broke"), retry=retry)


def record(job: Job, item: Item, filename: str = "a.png", **fields: object) -> OutputRecord:
    values: dict[str, object] = {
        "sha256": "ab" * 32, "mime": "image/png", "size_bytes": 3, "kind": OutputKind.IMAGE,
        "filename": filename, "node_id": "9", "node": "n1", "job_id": job.id,
        "item_id": item.id, "index": item.index, "owner": job.spec.owner,
        "character": job.spec.character, "conversation": job.spec.conversation,
        "visibility": job.spec.visibility, **fields,
    }
    return OutputRecord.model_validate(values)


def test_the_transition_rule_follows_the_table_for_every_pair() -> None:
    """Every (old, new) pair: allowed exactly when ITEM_TRANSITIONS lists it."""
    for old, new in itertools.product(ItemStatus, ItemStatus):
        item = Item(id="j-0", job_id="j", index=0, status=old)
        if new in ITEM_TRANSITIONS[old]:
            assert transition(item, new).status is new
        else:
            with pytest.raises(IllegalTransition) as caught:
                transition(item, new)
            assert (caught.value.item_id, caught.value.old, caught.value.new) == (
                "j-0", old.value, new.value)


class TestJobStoreContract:
    # --- lifecycle ------------------------------------------------------------------------

    def test_close_twice_is_harmless_and_later_calls_refuse_in_a_sentence(
            self, store: JobStore) -> None:
        store.close()
        store.close()
        with pytest.raises(StoreError, match="is closed"):
            store.queued_count()

    def test_context_manager_closes(self, make_store: StoreFactory) -> None:
        with make_store() as store:
            store.create_job(spec())
        with pytest.raises(StoreError, match="closed"):
            store.get_job("x")

    def test_a_reopened_store_sees_every_returned_change(self, make_store: StoreFactory) -> None:
        first = make_store()
        job = first.create_job(spec(count=2))
        _, item = claim(first)
        first.mark_succeeded(item.id, ["o1"])
        first.close()
        again = make_store().get_job(job.id)
        assert [i.status for i in again.items] == [ItemStatus.SUCCEEDED, ItemStatus.QUEUED]
        assert again.items[0].output_ids == ["o1"]

    # --- creating and reading -------------------------------------------------------------

    def test_create_job_makes_count_queued_items_indexed_from_zero(
            self, store: JobStore) -> None:
        job = store.create_job(spec(count=3), job_id="j1")
        assert [(i.id, i.index, i.status) for i in job.items] == [
            ("j1-0", 0, ItemStatus.QUEUED), ("j1-1", 1, ItemStatus.QUEUED),
            ("j1-2", 2, ItemStatus.QUEUED)]
        assert store.get_job("j1") == job and job.status is JobStatus.QUEUED
        assert store.get_item("j1-2") == job.items[2]
        assert store.queued_count() == 3

    def test_timestamps_are_timezone_aware_utc(self, store: JobStore) -> None:
        job = store.get_job(store.create_job(spec()).id)
        assert job.created_at.utcoffset() == timedelta(0)
        assert job.items[0].created_at.utcoffset() == timedelta(0)

    def test_unknown_job_item_and_output_raise_job_not_found_naming_what(
            self, store: JobStore) -> None:
        for call, what in ((store.get_job, "job"), (store.get_item, "item"),
                           (store.get_output, "output"), (store.request_cancel, "job")):
            with pytest.raises(JobNotFound) as caught:
                call("nope")
            assert (caught.value.job_id, caught.value.what) == ("nope", what)

    def test_a_reused_job_id_is_refused(self, store: JobStore) -> None:
        store.create_job(spec(), job_id="same")
        with pytest.raises(StoreError, match="already exists"):
            store.create_job(spec(), job_id="same")
        assert store.queued_count() == 1

    def test_create_jobs_stores_a_batch(self, store: JobStore) -> None:
        jobs = store.create_jobs([spec(count=2), spec(owner="b")])
        assert [store.get_job(j.id) for j in jobs] == jobs
        assert store.queued_count() == 3

    # --- idempotency ----------------------------------------------------------------------

    def test_a_used_key_replays_the_owners_job(self, store: JobStore) -> None:
        job, replayed = store.create_job_idempotent(spec(values={"a": 1, "b": 2}),
                                                    idempotency_key="k")
        again, replayed_again = store.create_job_idempotent(spec(values={"b": 2, "a": 1}),
                                                            idempotency_key="k")
        assert (replayed, replayed_again) == (False, True)
        assert again == job and store.queued_count() == 1

    def test_a_used_key_with_another_request_is_refused(self, store: JobStore) -> None:
        job = store.create_job(spec(), idempotency_key="k")
        with pytest.raises(IdempotencyKeyReused) as caught:
            store.create_job(spec(count=4), idempotency_key="k")
        assert (caught.value.key, caught.value.job_id) == ("k", job.id)
        assert store.queued_count() == 1

    def test_the_same_key_of_another_owner_makes_a_new_job(self, store: JobStore) -> None:
        mine = store.create_job(spec(owner="a"), idempotency_key="k")
        theirs = store.create_job(spec(owner="b"), idempotency_key="k")
        assert mine.id != theirs.id

    def test_keys_survive_a_reopen(self, make_store: StoreFactory) -> None:
        first = make_store()
        job = first.create_job(spec(), idempotency_key="k")
        first.close()
        assert make_store().create_job_idempotent(spec(), idempotency_key="k") == (job, True)

    def test_keys_expire_after_24_hours_and_are_purged(self, store: JobStore,
                                                       clock: FakeClock) -> None:
        job = store.create_job(spec(), idempotency_key="old")
        clock.advance(hours=23)
        store.create_job(spec(), idempotency_key="young")
        assert store.create_job(spec(), idempotency_key="old") == job
        clock.advance(hours=2)
        assert store.create_job(spec(), idempotency_key="old").id != job.id
        clock.advance(hours=25)
        assert store.purge_idempotency() == 2
        assert store.purge_idempotency() == 0

    # --- claiming -------------------------------------------------------------------------

    def test_claim_dispatches_with_node_prompt_id_and_an_open_attempt(
            self, store: JobStore, clock: FakeClock) -> None:
        store.create_job(spec(), job_id="j")
        job, item = claim(store, "gpu-1")
        assert (item.status, item.node, item.prompt_id) == (ItemStatus.DISPATCHED, "gpu-1",
                                                            "p-j-0")
        assert [(a.node, a.prompt_id, a.started_at, a.ended_at) for a in item.attempts] == [
            ("gpu-1", "p-j-0", clock.now, None)]
        assert job.items == [item] and job.status is JobStatus.RUNNING
        assert store.get_item("j-0") == item

    def test_claim_stops_at_the_nodes_in_flight_limit(self, store: JobStore) -> None:
        store.create_job(spec(count=3), job_id="j")
        for _ in range(2):
            assert store.claim_next("a", can_run=anything, prompt_id=str, max_on_node=2)
        assert store.claim_next("a", can_run=anything, prompt_id=str, max_on_node=2) is None
        assert store.claim_next("b", can_run=anything, prompt_id=str, max_on_node=2)

    def test_claim_on_an_empty_queue_returns_none(self, store: JobStore) -> None:
        assert store.claim_next("n", can_run=anything, prompt_id=lambda i: "p") is None

    def test_higher_priority_goes_first(self, store: JobStore) -> None:
        store.create_job(spec(), job_id="low")
        store.create_job(spec(priority=5), job_id="high")
        store.create_job(spec(priority=-1), job_id="lowest")
        order = [claim(store)[1].job_id for _ in range(3)]
        assert order == ["high", "low", "lowest"]

    def test_older_jobs_first_then_item_index(self, store: JobStore) -> None:
        store.create_job(spec(count=2), job_id="old")
        store.create_job(spec(), job_id="new")
        assert [claim(store)[1].id for _ in range(3)] == ["old-0", "old-1", "new-0"]

    def test_the_owner_with_fewest_items_on_nodes_goes_first(self, store: JobStore) -> None:
        store.create_job(spec(owner="busy", count=3), job_id="busy")
        store.create_job(spec(owner="idle"), job_id="idle")
        assert claim(store)[1].id == "busy-0"
        assert claim(store)[1].id == "idle-0"  # busy is older but already has one on a node
        assert claim(store)[1].id == "busy-1"

    def test_fairness_never_overrides_priority(self, store: JobStore) -> None:
        store.create_job(spec(owner="busy", count=2, priority=1), job_id="busy")
        store.create_job(spec(owner="idle"), job_id="idle")
        assert [claim(store)[1].id for _ in range(2)] == ["busy-0", "busy-1"]

    def test_items_can_run_rejects_are_skipped_and_stay_queued(self, store: JobStore) -> None:
        store.create_job(spec(workflow="needs-flux", priority=1), job_id="flux")
        store.create_job(spec(workflow="sd"), job_id="sd")
        seen: list[str] = []

        def only_sd(job: Job, item: Item) -> bool:
            seen.append(item.id)
            return job.spec.workflow == "sd"

        assert claim(store, can_run=only_sd)[1].id == "sd-0"
        assert seen == ["flux-0", "sd-0"]
        assert store.get_item("flux-0").status is ItemStatus.QUEUED

    def test_nothing_runnable_returns_none_and_changes_nothing(self, store: JobStore) -> None:
        job = store.create_job(spec(count=2))
        assert store.claim_next("n", can_run=lambda j, i: False, prompt_id=str) is None
        assert store.get_job(job.id) == job

    def test_in_flight_and_counts_follow_the_nodes(self, store: JobStore) -> None:
        store.create_job(spec(count=3), job_id="j")
        claim(store, "a")
        claim(store, "b")
        store.mark_running("j-1")
        assert [item.id for _, item in store.in_flight()] == ["j-0", "j-1"]
        assert [(job.id, item.id) for job, item in store.in_flight("b")] == [("j", "j-1")]
        assert (store.count_on_node("a"), store.count_on_node("c")) == (1, 0)
        assert store.queued_count() == 1
        store.mark_succeeded("j-0", [])
        assert store.count_on_node("a") == 0 and store.get_item("j-0").node == "a"

    def test_queue_position_counts_the_queued_items_claimed_before_it(
            self, store: JobStore) -> None:
        store.create_job(spec(count=2), job_id="old")
        store.create_job(spec(priority=5), job_id="urgent")
        store.create_job(spec(owner="other"), job_id="new")
        positions = {i: store.queue_position(i) for i in ("urgent-0", "old-0", "old-1", "new-0")}
        # The urgent item first; its owner then has one on a node, so the fair share takes
        # the other owner's item before that owner's older ones.
        assert positions == {"urgent-0": 0, "new-0": 1, "old-0": 2, "old-1": 3}
        claim(store)
        assert store.queue_position("urgent-0") is None  # on a node: no longer queued
        assert [store.queue_position(i) for i in ("new-0", "old-0", "old-1")] == [0, 1, 2]

    @pytest.mark.parametrize("seed", range(12))
    def test_queue_positions_predict_the_claim_order_with_fair_share(
            self, make_store: StoreFactory, seed: int) -> None:
        """Several owners, priorities and items already on nodes: claiming everything
        (nothing finishing) takes the items exactly in the order their positions gave."""
        rng = random.Random(seed)
        store = make_store()
        owners = ["ann", "bob", "cy", "dee"][:rng.randint(2, 4)]
        for n in range(rng.randint(4, 12)):
            store.create_job(spec(owner=rng.choice(owners), count=rng.randint(1, 3),
                                  priority=rng.choice([0, 0, 0, 5])), job_id=f"j{n}")
        for _ in range(rng.randint(0, 3)):  # some owners start with items on nodes
            claim(store)
        queued = [i.id for j in store.list_jobs(limit=100).jobs for i in j.items
                  if i.status == ItemStatus.QUEUED]
        predicted = sorted(queued, key=lambda item_id: store.queue_position(item_id) or 0)
        assert sorted(store.queue_position(i) for i in queued) == list(range(len(queued)))
        assert [claim(store)[1].id for _ in queued] == predicted

    def test_queue_position_of_an_unknown_item_is_job_not_found(self, store: JobStore) -> None:
        with pytest.raises(JobNotFound) as caught:
            store.queue_position("nope-0")
        assert caught.value.what == "item"

    def test_two_threads_claiming_200_items_never_share_one(self, store: JobStore) -> None:
        store.create_jobs([spec(count=8, owner=f"o{n % 3}") for n in range(25)])
        claimed: dict[str, list[str]] = {"a": [], "b": []}

        def worker(node: str) -> None:
            while (found := store.claim_next(node, can_run=anything, prompt_id=str)):
                claimed[node].append(found[1].id)

        threads = [threading.Thread(target=worker, args=(node,)) for node in claimed]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        every = claimed["a"] + claimed["b"]
        assert len(every) == len(set(every)) == 200
        assert store.count_on_node("a") + store.count_on_node("b") == 200

    # --- item changes ---------------------------------------------------------------------

    def test_set_rendered_keeps_the_graph_and_seed(self, make_store: StoreFactory) -> None:
        store = make_store()
        store.create_job(spec(), job_id="j")
        claim(store)
        graph: dict[str, object] = {"3": {"class_type": "KSampler", "inputs": {"seed": 7}}}
        assert store.set_rendered("j-0", graph=graph, seed=7).graph == graph
        store.close()
        item = make_store().get_item("j-0")
        assert (item.graph, item.seed, item.status) == (graph, 7, ItemStatus.DISPATCHED)

    def test_mark_running_sets_started_at_once(self, store: JobStore,
                                               clock: FakeClock) -> None:
        store.create_job(spec(), job_id="j")
        claim(store)
        started = store.mark_running("j-0").started_at
        clock.advance(seconds=5)
        again = store.mark_running("j-0")
        assert started == again.started_at == clock.now - timedelta(seconds=5)
        assert again.status is ItemStatus.RUNNING

    def test_success_closes_the_attempt_and_records_outputs(self, store: JobStore,
                                                            clock: FakeClock) -> None:
        store.create_job(spec(), job_id="j")
        claim(store)
        clock.advance(seconds=3)
        item = store.mark_succeeded("j-0", ["o1", "o2"])
        assert (item.status, item.output_ids, item.completed_at) == (
            ItemStatus.SUCCEEDED, ["o1", "o2"], clock.now)
        assert item.attempts[-1].ended_at == clock.now and item.attempts[-1].error is None
        assert store.get_job("j").status is JobStatus.SUCCEEDED

    def test_an_illegal_change_names_item_and_states_and_changes_nothing(
            self, store: JobStore) -> None:
        job = store.create_job(spec(), job_id="j")
        with pytest.raises(IllegalTransition, match="j-0 cannot go from queued to succeeded"):
            store.mark_succeeded("j-0", [])
        with pytest.raises(IllegalTransition):
            store.mark_running("j-0")
        assert store.get_job("j") == job

    def test_retryable_failures_requeue_until_the_attempts_run_out(
            self, store: JobStore) -> None:
        store.create_job(spec(max_attempts=2), job_id="j")
        claim(store, "a")
        item = fail(store, "j-0")
        assert (item.status, item.node, item.prompt_id) == (ItemStatus.QUEUED, None, None)
        assert item.attempts[0].error == "it broke" and item.error is None
        claim(store, "b")
        item = fail(store, "j-0")
        assert item.status is ItemStatus.FAILED and item.error is not None
        assert [a.node for a in item.attempts] == ["a", "b"]
        assert store.get_job("j").status is JobStatus.FAILED

    def test_a_graph_error_fails_at_once(self, store: JobStore) -> None:
        store.create_job(spec(), job_id="j")
        claim(store)
        item = fail(store, "j-0", retry=False)
        assert item.status is ItemStatus.FAILED and item.error == ItemError(
            code="boom", message="it broke")

    def test_requeue_records_the_reason_in_the_attempt(self, store: JobStore) -> None:
        store.create_job(spec(), job_id="j")
        claim(store)
        store.mark_running("j-0")
        item = store.requeue("j-0", "node restarted and lost its queue")
        assert item.status is ItemStatus.QUEUED
        assert item.attempts[0].error == "node restarted and lost its queue"

    def test_job_status_is_derived_and_filterable(self, store: JobStore) -> None:
        store.create_job(spec(count=2), job_id="j")
        claim(store)
        claim(store)
        store.mark_succeeded("j-0", [])
        fail(store, "j-1", retry=False)
        assert store.get_job("j").status is JobStatus.PARTIALLY_FAILED
        page = store.list_jobs(status=JobStatus.PARTIALLY_FAILED)
        assert [job.id for job in page.jobs] == ["j"]
        assert store.list_jobs(status=JobStatus.RUNNING).jobs == []

    # --- cancel and retry -----------------------------------------------------------------

    def test_cancel_ends_queued_items_at_once(self, store: JobStore) -> None:
        store.create_job(spec(count=2), job_id="j")
        job = store.request_cancel("j")
        assert job.status is JobStatus.CANCELED and job.cancel_requested
        assert store.claim_next("n", can_run=anything, prompt_id=str) is None
        assert store.list_jobs(status=JobStatus.CANCELED).jobs == [job]

    def test_cancel_marks_items_on_nodes_canceling(self, store: JobStore) -> None:
        store.create_job(spec(count=3), job_id="j")
        claim(store)
        claim(store)
        job = store.request_cancel("j")
        assert [i.status for i in job.items] == [
            ItemStatus.CANCELING, ItemStatus.CANCELING, ItemStatus.CANCELED]
        assert job.status is JobStatus.CANCELING
        assert store.request_cancel("j") == job
        store.mark_canceled("j-0")
        store.mark_succeeded("j-1", ["o"])  # the node finished before the interrupt landed
        assert store.get_job("j").status is JobStatus.CANCELED

    def test_a_lost_canceling_item_ends_canceled(self, store: JobStore) -> None:
        store.create_job(spec(), job_id="j")
        claim(store)
        store.request_cancel("j")
        assert store.requeue("j-0", "node died").status is ItemStatus.CANCELED

    def test_cancel_of_a_finished_job_returns_it_unchanged(self, store: JobStore) -> None:
        store.create_job(spec(), job_id="j")
        claim(store)
        store.mark_succeeded("j-0", [])
        done = store.get_job("j")
        assert store.request_cancel("j") == done and not done.cancel_requested

    def test_retry_requeues_failed_and_canceled_items_with_a_fresh_budget(
            self, store: JobStore) -> None:
        store.create_job(spec(count=2, max_attempts=1), job_id="j")
        claim(store)
        fail(store, "j-0")
        store.request_cancel("j")
        job = store.retry_job("j")
        assert [i.status for i in job.items] == [ItemStatus.QUEUED, ItemStatus.QUEUED]
        assert not job.cancel_requested and job.items[0].error is None
        assert len(job.items[0].attempts) == 1  # history kept
        claim(store)
        item = fail(store, "j-0")
        assert item.status is ItemStatus.FAILED and len(item.attempts) == 2  # budget of one

    def test_retry_of_an_unfinished_job_changes_nothing(self, store: JobStore) -> None:
        job = store.create_job(spec())
        assert store.retry_job(job.id) == job

    # --- listing --------------------------------------------------------------------------

    def test_list_filters_by_every_given_field(self, store: JobStore) -> None:
        store.create_job(spec(owner="a", character="ann", conversation="c1",
                              metadata={"chat": "7"}), job_id="match")
        store.create_job(spec(owner="a", character="bob", conversation="c1"), job_id="other")
        store.create_job(spec(owner="b", workflow="video"), job_id="theirs")
        found = store.list_jobs(owner="a", character="ann", conversation="c1",
                                workflow="portrait", metadata={"chat": "7"})
        assert [job.id for job in found.jobs] == ["match"]
        assert [job.id for job in store.list_jobs(workflow="video").jobs] == ["theirs"]
        assert store.list_jobs(metadata={"chat": "8"}).jobs == []

    def test_pages_are_newest_first_without_gaps_or_repeats_under_inserts(
            self, store: JobStore) -> None:
        before = [store.create_job(spec()).id for _ in range(23)]
        seen: list[str] = []
        page = store.list_jobs(limit=5)
        while True:
            seen += [job.id for job in page.jobs]
            store.create_job(spec())  # newer than every page still to come
            if page.next_cursor is None:
                break
            page = store.list_jobs(limit=5, cursor=page.next_cursor)
        assert seen == before[::-1]

    def test_paging_while_another_thread_inserts(self, store: JobStore) -> None:
        before = {store.create_job(spec()).id for _ in range(40)}
        stop = threading.Event()

        def insert() -> None:
            while not stop.is_set():
                store.create_job(spec())

        inserter = threading.Thread(target=insert)
        inserter.start()
        try:
            seen = self._all_pages(store)
        finally:
            stop.set()
            inserter.join()
        assert len(seen) == len(set(seen)) and before <= set(seen)

    @staticmethod
    def _all_pages(store: JobStore) -> list[str]:
        seen: list[str] = []
        cursor: str | None = None
        while True:
            page = store.list_jobs(limit=3, cursor=cursor)
            seen += [job.id for job in page.jobs]
            if (cursor := page.next_cursor) is None:
                return seen

    def test_a_foreign_cursor_is_refused(self, store: JobStore) -> None:
        job = store.create_job(spec())
        for name in ("a.png", "b.png"):
            store.add_output(record(job, job.items[0], name))
        outputs_cursor = store.list_outputs(limit=1).next_cursor
        assert outputs_cursor is not None
        for bad in ("garbage!", "", "=", outputs_cursor, outputs_cursor[:-1]):
            with pytest.raises(InvalidCursor):
                store.list_jobs(cursor=bad)

    # --- outputs --------------------------------------------------------------------------

    def test_outputs_round_trip_and_a_file_is_recorded_once(self, store: JobStore) -> None:
        job = store.create_job(spec())
        first = store.add_output(record(job, job.items[0]))
        again = store.add_output(record(job, job.items[0]))  # re-collected after a crash
        assert again == first == store.get_output(first.id)
        assert store.output_for_item_file(job.items[0].id, "a.png") == first
        assert store.output_for_item_file(job.items[0].id, "b.png") is None
        assert len(store.list_outputs(job_id=job.id).outputs) == 1

    def test_deleting_an_output_reports_blob_references(self, store: JobStore) -> None:
        job = store.create_job(spec())
        one = store.add_output(record(job, job.items[0], "a.png"))
        store.add_output(record(job, job.items[0], "b.png"))
        assert store.blob_references("ab" * 32) == 2
        assert store.delete_output(one.id) == one
        assert store.blob_references("ab" * 32) == 1
        with pytest.raises(JobNotFound):
            store.delete_output(one.id)

    def test_a_deleted_output_is_no_longer_named_by_its_job(self, store: JobStore) -> None:
        job = store.create_job(spec())
        one = store.add_output(record(job, job.items[0], "a.png"))
        two = store.add_output(record(job, job.items[0], "b.png"))
        claim(store)
        store.mark_succeeded(job.items[0].id, [one.id, two.id])
        store.delete_output(one.id)
        assert store.get_job(job.id).items[0].output_ids == [two.id]
        assert store.get_job(job.id).status == JobStatus.SUCCEEDED

    def test_input_references_count_the_jobs_using_a_blob_as_an_input(
            self, store: JobStore) -> None:
        store.create_job(spec(images={"char_avatar": "cd" * 32}))
        store.create_job(spec(images={"a": "cd" * 32, "b": "ef" * 32}))
        store.create_job(spec())
        assert [store.input_references(s) for s in ("cd" * 32, "ef" * 32, "ab" * 32)] == [
            2, 1, 0]

    def test_visible_to_lists_the_owners_records_and_public_ones(self, store: JobStore) -> None:
        mine = store.create_job(spec(owner="a", character="k"))
        public = store.create_job(spec(owner="b", character="k", visibility=Visibility.PUBLIC))
        private = store.create_job(spec(owner="b", character="k"))
        records = [store.add_output(record(j, j.items[0])) for j in (mine, public, private)]
        assert store.list_outputs(visible_to="a").outputs == records[1::-1]
        assert store.list_outputs(visible_to="b").outputs == records[:0:-1]
        assert store.list_outputs(visible_to="a", owner="b").outputs == [records[1]]
        first = store.list_outputs(visible_to="a", character="k", limit=1)
        rest = store.list_outputs(visible_to="a", character="k", limit=1,
                                  cursor=first.next_cursor)
        assert first.outputs + rest.outputs == records[1::-1] and rest.next_cursor is None

    def test_a_characters_gallery_shows_only_public_outputs(self, store: JobStore) -> None:
        public = store.create_job(spec(character="ann", visibility=Visibility.PUBLIC))
        private = store.create_job(spec(character="ann", owner="b"))
        shown = store.add_output(record(public, public.items[0]))
        store.add_output(record(private, private.items[0]))
        assert store.gallery_character("ann").outputs == [shown]
        assert store.gallery_character("bob").outputs == []

    def test_a_conversations_gallery_is_its_owners_including_private(
            self, store: JobStore) -> None:
        mine = store.create_job(spec(owner="a", conversation="c"))
        shared = store.create_job(spec(owner="a", conversation="c",
                                       visibility=Visibility.PUBLIC))
        theirs = store.create_job(spec(owner="b", conversation="c"))
        records = [store.add_output(record(j, j.items[0])) for j in (mine, shared, theirs)]
        assert store.gallery_conversation("c", "a").outputs == records[1::-1]
        assert store.gallery_conversation("c", "b").outputs == [records[2]]

    def test_output_pages_continue_with_their_cursor(self, store: JobStore) -> None:
        job = store.create_job(spec())
        added = [store.add_output(record(job, job.items[0], f"{n}.png")) for n in range(5)]
        first = store.list_outputs(limit=3)
        rest = store.list_outputs(limit=3, cursor=first.next_cursor)
        assert first.outputs + rest.outputs == added[::-1] and rest.next_cursor is None
        store.create_job(spec())
        jobs_cursor = store.list_jobs(limit=1).next_cursor
        assert jobs_cursor is not None
        with pytest.raises(InvalidCursor):
            store.list_outputs(cursor=jobs_cursor)


# --- SQLite specifics (the file, its pragmas and its query plans) --------------------------


def test_the_schema_is_versioned(tmp_path: Path) -> None:
    SqliteJobStore(tmp_path / "db").close()
    with sqlite3.connect(tmp_path / "db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_version_1_database_opens_and_its_keys_replay_whatever_the_request(
        tmp_path: Path) -> None:
    """A data dir from before request digests: migrated on open, old keys still replay."""
    path = tmp_path / "db"
    job = new_job(spec(), "old", datetime.now(UTC))
    with sqlite3.connect(path) as conn:  # version 1's tables and rows, written as it did
        for statement in schema._V1:
            conn.execute(statement)
        conn.execute("INSERT INTO jobs (id, owner, visibility, priority, created_at, status,"
                     " spec) VALUES ('old', ?, 'private', 0, ?, 'queued', ?)",
                     (job.spec.owner, job.created_at.isoformat(timespec="microseconds"),
                      job.spec.model_dump_json()))
        conn.execute("INSERT INTO items (id, job_id, idx, status, owner, priority, job_seq,"
                     " body) VALUES (?, 'old', 0, 'queued', ?, 0, 1, ?)",
                     (job.items[0].id, job.spec.owner,
                      job.items[0].model_dump_json(exclude={"graph"})))
        conn.execute("INSERT INTO idempotency VALUES (?, 'k', 'old', ?)",  # no digest
                     (job.spec.owner, datetime.now(UTC).timestamp()))
        conn.execute("PRAGMA user_version = 1")
    with SqliteJobStore(path) as store:
        replayed, known = store.create_job_idempotent(spec(count=3), idempotency_key="k")
        assert known and replayed.id == "old" and replayed.items == job.items
        fresh = store.create_job(spec(), idempotency_key="new")
        with pytest.raises(IdempotencyKeyReused):
            store.create_job(spec(count=2), idempotency_key="new")
        assert store.get_job(fresh.id) == fresh
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_newer_schema_is_refused_with_advice(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "db") as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="upgrade the orchestrator"):
        SqliteJobStore(tmp_path / "db")


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    (tmp_path / "db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not an orchestrator database") as caught:
        SqliteJobStore(tmp_path / "db")
    assert str(tmp_path / "db") in str(caught.value)


def test_a_corrupt_row_is_reported_not_crashed_on(tmp_path: Path) -> None:
    with SqliteJobStore(tmp_path / "db") as store:
        store.create_job(spec(), job_id="j")
    with sqlite3.connect(tmp_path / "db") as conn:
        conn.execute("UPDATE items SET body = '{\"id\": 1}'")
    with SqliteJobStore(tmp_path / "db") as store, pytest.raises(StoreError, match="item j-0"):
        store.get_job("j")


def test_open_store_creates_the_data_directory(tmp_path: Path) -> None:
    with open_store(tmp_path / "data" / "dir") as store:
        store.create_job(spec())
    assert (tmp_path / "data" / "dir" / DATABASE_NAME).is_file()
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="cannot be created"):
        open_store(tmp_path / "file" / "data")


# --- several processes on one database (both backends) -------------------------------------


def _child(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(CHILD), *args], cwd=REPO, env=env, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database that separate processes open: a SQLite file or a PostgreSQL URL."""
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return str(tmp_path / "db")


def _open(database: str) -> JobStore:
    if database.startswith("postgresql://"):
        return PostgresJobStore(database)
    return SqliteJobStore(Path(database))


def test_a_sigkilled_process_loses_nothing_it_reported(database: str) -> None:
    """The child prints after each commit; everything printed is there after SIGKILL."""
    with _child("churn", database) as child:
        assert child.stdout is not None
        lines = [child.stdout.readline().split() for _ in range(120)]
        child.kill()
    assert child.returncode == -signal.SIGKILL
    with _open(database) as store:
        for event, ident in lines:
            _assert_committed(store, event, ident)


def _assert_committed(store: JobStore, event: str, ident: str) -> None:
    if event == "created":
        store.get_job(ident)
        return
    status = store.get_item(ident).status
    reached = {"dispatched": {ItemStatus.DISPATCHED, ItemStatus.RUNNING, ItemStatus.SUCCEEDED},
               "running": {ItemStatus.RUNNING, ItemStatus.SUCCEEDED},
               "succeeded": {ItemStatus.SUCCEEDED}}[event]
    assert status in reached, (event, ident, status)


@pytest.mark.parametrize("nodes", [["node-0", "node-1"], ["same", "same", "same"]])
def test_processes_never_claim_the_same_item(database: str, nodes: list[str]) -> None:
    """Replicas on one database, for different nodes or for the same one."""
    with _open(database) as store:
        store.create_jobs([spec(count=8, owner=f"o{n % 3}") for n in range(25)])
    children = [_child("claim", database, node) for node in nodes]
    for child in children:
        assert child.stdout is not None and child.stdout.readline() == "ready\n"
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outputs = [child.communicate(timeout=60)[0].split() for child in children]
    every = [item_id for output in outputs for item_id in output]
    assert len(every) == len(set(every)) == 200
    assert all(child.returncode == 0 for child in children)


# --- SQLite only ------------------------------------------------------------------------------


def test_claim_does_not_scan_the_whole_queue(tmp_path: Path) -> None:
    """Claims read a bounded number of rows: the plan of every claim query uses an index."""
    with SqliteJobStore(tmp_path / "db") as store:
        store.create_jobs([spec(owner=f"o{n % 4}") for n in range(2000)])
        statements: list[str] = []
        conn = sqlite3.connect(tmp_path / "db")
        store._conn.set_trace_callback(statements.append)  # observing the SQL it runs
        claim(store)
        store._conn.set_trace_callback(None)
        plans = [_plan(conn, sql) for sql in statements if sql.lstrip().startswith(("SELECT",
                                                                                     "WITH"))]
        conn.close()
    assert plans and not [plan for plan in plans if "SCAN items" in plan
                          or "SCAN jobs" in plan]


def _plan(conn: sqlite3.Connection, sql: str) -> str:
    return " | ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql))



# --- PostgreSQL specifics ---------------------------------------------------------------------


def test_postgres_schema_is_versioned_and_a_newer_one_refused(postgres_url: str) -> None:
    with PostgresJobStore(postgres_url):
        pass
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        assert conn.execute("SELECT MAX(version) FROM schema_version").fetchone() == (
            pg_schema.SCHEMA_VERSION,)
        conn.execute("INSERT INTO schema_version VALUES (%s)", [pg_schema.SCHEMA_VERSION + 1])
    with pytest.raises(StoreError, match="upgrade the orchestrator") as caught:
        PostgresJobStore(postgres_url)
    assert "postgresql://127.0.0.1:" in str(caught.value)


def test_replicas_starting_together_migrate_once(postgres_url: str) -> None:
    stores: list[JobStore] = []
    threads = [threading.Thread(target=lambda: stores.append(PostgresJobStore(postgres_url)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(stores) == 4
        job = stores[0].create_job(spec())
        assert all(store.get_job(job.id) == job for store in stores)
    finally:
        for store in stores:
            store.close()
    with psycopg.connect(postgres_url) as conn:
        versions = conn.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
    assert versions == [(v,) for v in range(1, pg_schema.SCHEMA_VERSION + 1)]


def test_one_idempotency_key_sent_to_two_replicas_at_once_makes_one_job(
        postgres_url: str) -> None:
    replicas = [PostgresJobStore(postgres_url) for _ in range(2)]
    made: list[tuple[Job, bool]] = []
    barrier = threading.Barrier(len(replicas) * 4)

    def send(store: JobStore) -> None:
        barrier.wait()
        made.append(store.create_job_idempotent(spec(), idempotency_key="k"))

    threads = [threading.Thread(target=send, args=(store,))
               for store in replicas for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for store in replicas:
        store.close()
    assert len({job.id for job, _ in made}) == 1
    assert sorted(replayed for _, replayed in made) == [False] + [True] * 7


def test_a_bound_checked_under_exclusive_holds_across_replicas(postgres_url: str) -> None:
    """The queue bound's count and the insert after it, under ``exclusive``, as admission
    runs them: two replicas filling owners' shares at once never overfill one."""
    replicas = [PostgresJobStore(postgres_url) for _ in range(2)]
    owners, bound, tries = [f"owner{n}" for n in range(8)], 3, 3
    barrier = threading.Barrier(len(replicas) * 4)

    def fill(store: JobStore) -> None:
        barrier.wait()
        for owner in owners:  # each owner's share is filled at once by both replicas
            for _ in range(tries):
                with store.exclusive("admission"):
                    if store.queued_count(owner) < bound:
                        store.create_job(spec(owner=owner))

    threads = [threading.Thread(target=fill, args=(store,))
               for store in replicas for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    counts = {owner: replicas[0].queued_count(owner) for owner in owners}
    for store in replicas:
        store.close()
    assert counts == dict.fromkeys(owners, bound)


def test_open_store_with_a_url_opens_postgres(postgres_url: str, tmp_path: Path) -> None:
    with open_store(tmp_path / "data", postgres_url) as store:
        assert isinstance(store, PostgresJobStore)
        store.create_job(spec())
    assert not (tmp_path / "data" / DATABASE_NAME).exists()


def test_an_unreachable_server_is_a_store_error_naming_it() -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(StoreError, match=f"127.0.0.1:{port}/x") as caught:
        PostgresJobStore(f"postgresql://u:secret@127.0.0.1:{port}/x")
    assert "secret" not in str(caught.value)


def _lapse(url: str, replica: str) -> None:
    """Make ``replica``'s lease look expired, as if its process died long ago."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE replicas SET seen_at = seen_at - 3600 WHERE id = %s", [replica])


def test_a_replica_sees_only_its_own_items_until_another_dies(postgres_url: str) -> None:
    with PostgresJobStore(postgres_url) as a, PostgresJobStore(postgres_url) as b:
        a.create_job(spec(count=3), job_id="j")
        claim(a, "n1")
        claim(b, "n1")
        assert [i.id for _, i in a.in_flight()] == ["j-0"]
        assert [i.id for _, i in b.in_flight("n1")] == ["j-1"]
        assert a.adopt_orphans() == [] and a.count_on_node("n1") == 2
        a._stopped.set()  # a's heartbeat stops, as in a process that froze or died
        _lapse(postgres_url, a.replica)
        adopted = b.adopt_orphans()
        assert [(job.id, item.id, item.status) for job, item in adopted] == [
            ("j", "j-0", ItemStatus.DISPATCHED)]
        assert b.adopt_orphans() == []  # adopted once
        assert [i.id for _, i in b.in_flight()] == ["j-0", "j-1"]
        b.mark_succeeded("j-0", [])
        assert b.get_item("j-0").status is ItemStatus.SUCCEEDED


def test_a_replica_that_closes_leaves_its_items_to_the_others_at_once(
        postgres_url: str) -> None:
    with PostgresJobStore(postgres_url) as b:
        with PostgresJobStore(postgres_url) as a:
            a.create_job(spec(), job_id="j")
            claim(a)
        assert [item.id for _, item in b.adopt_orphans()] == ["j-0"]


def test_the_in_flight_limit_of_a_node_holds_across_replicas(postgres_url: str) -> None:
    replicas = [PostgresJobStore(postgres_url) for _ in range(3)]
    replicas[0].create_jobs([spec(count=8) for _ in range(5)])
    claimed: list[str] = []
    barrier = threading.Barrier(len(replicas) * 3)

    def work(store: JobStore) -> None:
        barrier.wait()
        for _ in range(5):
            found = store.claim_next("gpu", can_run=anything, prompt_id=str, max_on_node=2)
            if found is not None:
                claimed.append(found[1].id)

    threads = [threading.Thread(target=work, args=(store,)) for store in replicas
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert len(claimed) == 2 and replicas[1].count_on_node("gpu") == 2
    finally:
        for store in replicas:
            store.close()


def test_a_postgresql_restart_costs_no_call_and_nothing_committed(
        postgres_server: str) -> None:
    """Every pooled connection dies with the server; the store's next calls reconnect."""
    url = fresh_database(postgres_server)
    with PostgresJobStore(url) as store:
        job = store.create_job(spec(count=2), job_id="j")
        claim(store)
        restart(postgres_server)
        assert store.mark_succeeded("j-0", ["o"]).status is ItemStatus.SUCCEEDED
        assert store.get_job(job.id).status is JobStatus.RUNNING
        assert claim(store)[1].id == "j-1"


# --- input files, single-use keys, tokens, counters: the rest of the one database ----------


def input_file(owner: str = "alice", path: str | None = "photo.png", sha: str = "ab",
               clock: FakeClock | None = None, expires_in: int | None = None,
               tags: tuple[str, ...] = ()) -> InputFile:
    """A new record over the blob ``sha * 32`` (its blake3: ``sha`` reversed, * 32)."""
    now = clock() if clock is not None else datetime(2030, 1, 1, tzinfo=UTC)
    return new_file(owner, sha256=sha * 32, blake3=sha[::-1] * 32, size_bytes=3,
                    content_type="image/png", path=path, now=now, expires_in=expires_in,
                    tags=tags)


class TestInputFilesContract:
    """Input files (gateway uploads, v2 assets): by name, id and hash, per owner."""

    def test_a_file_is_found_by_id_name_and_hash(self, store: JobStore) -> None:
        stored = store.put_input_file(input_file(path="sub/photo.png"))
        file = stored.file
        assert stored.created and stored.new_bytes
        assert store.input_file("alice", file.id) == file
        assert store.input_file_named("alice", "sub/photo.png") == file
        assert (file.subfolder, file.name) == ("sub", "photo.png")
        assert store.input_file_by_hash("alice", sha256="ab" * 32) == file
        assert store.input_file_by_hash("alice", blake3="ba" * 32) == file
        assert store.input_files_named("alice", ["sub/photo.png", "other.png"]) == {
            "sub/photo.png": file}
        assert store.input_file_named("alice", "sub/photo.png", folder="temp") is None

    def test_another_owners_files_are_never_found(self, store: JobStore) -> None:
        file = store.put_input_file(input_file(owner="alice")).file
        assert store.input_file("bob", file.id) is None
        assert store.input_file_named("bob", "photo.png") is None
        assert store.input_file_by_hash("bob", sha256="ab" * 32) is None
        assert store.delete_input_file("bob", file.id) is None
        assert store.list_input_files("bob").files == []
        assert store.put_input_file(input_file(owner="bob")).new_bytes  # new to bob

    def test_the_same_bytes_under_the_same_name_are_one_file(self, store: JobStore) -> None:
        first = store.put_input_file(input_file()).file
        for rule in OnName:
            again = store.put_input_file(input_file(), on_name=rule)
            assert (again.file, again.created, again.new_bytes) == (first, False, False)

    def test_rename_takes_comfyuis_next_free_name(self, store: JobStore) -> None:
        store.put_input_file(input_file(path="sub/x.png", sha="ab"), on_name=OnName.RENAME)
        second = store.put_input_file(input_file(path="sub/x.png", sha="cd"),
                                      on_name=OnName.RENAME)
        third = store.put_input_file(input_file(path="sub/x.png", sha="ef"),
                                     on_name=OnName.RENAME)
        same = store.put_input_file(input_file(path="sub/x.png", sha="cd"),
                                    on_name=OnName.RENAME)
        assert [second.file.path, third.file.path] == ["sub/x (1).png", "sub/x (2).png"]
        assert same.file == second.file and not same.created

    def test_replace_deletes_the_older_files_of_that_name(self, store: JobStore) -> None:
        old = store.put_input_file(input_file(sha="ab")).file
        new = store.put_input_file(input_file(sha="cd"), on_name=OnName.REPLACE)
        assert new.replaced == ("ab" * 32,)
        assert store.input_file("alice", old.id) is None
        assert store.input_file_named("alice", "photo.png") == new.file

    def test_keep_keeps_both_and_the_name_finds_the_newer(self, store: JobStore) -> None:
        old = store.put_input_file(input_file(sha="ab")).file
        new = store.put_input_file(input_file(sha="cd")).file
        assert store.input_file("alice", old.id) == old
        assert store.input_file_named("alice", "photo.png") == new
        assert [f.id for f in store.list_input_files("alice").files] == [new.id, old.id]

    def test_an_expired_file_reads_as_missing_and_the_sweep_deletes_it(
            self, store: JobStore, clock: FakeClock) -> None:
        file = store.put_input_file(input_file(clock=clock, expires_in=60)).file
        kept = store.put_input_file(input_file(path="kept.png", sha="cd", clock=clock)).file
        assert store.delete_expired_input_files() == []
        clock.advance(seconds=61)
        assert store.input_file("alice", file.id) is None
        assert store.input_file_named("alice", "photo.png") is None
        assert store.blob_in_use("ab" * 32)  # the record is there until the sweep
        assert store.delete_expired_input_files() == [file]
        assert not store.blob_in_use("ab" * 32)
        assert store.input_file("alice", kept.id) == kept

    def test_input_file_pages_continue_with_their_cursor(self, store: JobStore) -> None:
        made = [store.put_input_file(input_file(path=f"{n}.png", sha=f"{n:02x}")).file
                for n in range(5)]
        first = store.list_input_files("alice", limit=3)
        rest = store.list_input_files("alice", limit=3, cursor=first.next_cursor)
        assert [f.id for f in first.files + rest.files] == [f.id for f in reversed(made)]
        assert rest.next_cursor is None
        store.create_jobs([spec(), spec()])
        jobs_cursor = store.list_jobs(limit=1).next_cursor
        with pytest.raises(InvalidCursor):
            store.list_input_files("alice", cursor=jobs_cursor)

    def test_delete_returns_the_file_and_forgets_it(self, store: JobStore) -> None:
        file = store.put_input_file(input_file()).file
        assert store.delete_input_file("alice", file.id) == file
        assert store.delete_input_file("alice", file.id) is None
        assert store.input_file_named("alice", "photo.png") is None

    def test_files_survive_a_reopen(self, make_store: StoreFactory) -> None:
        file = make_store().put_input_file(input_file(tags=("a", "b"))).file
        assert make_store().input_file("alice", file.id) == file

    def test_blob_in_use_asks_outputs_job_inputs_and_input_files_at_once(
            self, store: JobStore) -> None:
        job = store.create_job(spec(images={"char_avatar": "cd" * 32}))
        output = store.add_output(record(job, job.items[0], sha256="ef" * 32))
        file = store.put_input_file(input_file(sha="12")).file
        assert [store.blob_in_use(s * 32) for s in ("cd", "ef", "12", "34")] == [
            True, True, True, False]
        store.delete_output(output.id)
        store.delete_input_file("alice", file.id)
        assert [store.blob_in_use(s * 32) for s in ("cd", "ef", "12")] == [True, False, False]


class TestSingleUseKeysContract:
    """Comfy API v2's single-use idempotency keys: a mode of the store's idempotency."""

    def test_a_key_is_single_use_per_owner(self, store: JobStore) -> None:
        assert store.claim_key("alice", "k", "j1")
        assert not store.claim_key("alice", "k", "j2")
        assert store.claim_key("bob", "k", "j3")
        assert store.key_job("alice", "k") == "j1"
        assert store.key_job("carol", "k") is None

    def test_a_released_key_can_be_claimed_again(self, store: JobStore) -> None:
        store.claim_key("alice", "k", "j1")
        store.release_key("alice", "k", "other")  # only the claim that named j1 goes
        assert store.key_job("alice", "k") == "j1"
        store.release_key("alice", "k", "j1")
        assert store.claim_key("alice", "k", "j2")

    def test_a_key_is_forgotten_after_24_hours(self, store: JobStore,
                                                clock: FakeClock) -> None:
        store.claim_key("alice", "k", "j1")
        clock.advance(hours=24, seconds=1)
        assert store.key_job("alice", "k") is None
        assert store.claim_key("alice", "k", "j2")
        assert store.key_job("alice", "k") == "j2"

    def test_a_key_the_replaying_mode_used_is_taken(self, store: JobStore) -> None:
        """One key namespace per owner: a key the replaying mode used is taken."""
        job = store.create_job(spec(owner="alice"), idempotency_key="k")
        assert not store.claim_key("alice", "k", "j2")
        assert store.key_job("alice", "k") == job.id

    def test_keys_survive_a_reopen_and_go_with_their_job(
            self, make_store: StoreFactory) -> None:
        job = make_store().create_job(spec(owner="alice"))
        make_store().claim_key("alice", "k", job.id)
        reopened = make_store()
        assert not reopened.claim_key("alice", "k", "j2")
        reopened.request_cancel(job.id)  # finished, so it may be deleted
        assert reopened.delete_finished_job(job.id)
        assert reopened.claim_key("alice", "k", "j2")


class TestTokensAndCountersContract:
    """API tokens and named counters live in the same database."""

    def test_tokens_round_trip_and_revoke_once(self, store: JobStore,
                                               clock: FakeClock) -> None:
        row = TokenRow(id="0123abcd", secret_sha256="s" * 64, owner="alice", admin=True,
                       created_at=clock(), revoked_at=None)
        assert store.add_token(row)
        assert not store.add_token(row)  # an id is taken once
        assert store.token("0123abcd") == row
        first = store.revoke_token("0123abcd", clock())
        clock.advance(hours=1)
        again = store.revoke_token("0123abcd", clock())
        assert first is not None and first == again and first.revoked_at == row.created_at
        assert store.revoke_token("ffffffff", clock()) is None
        assert store.tokens() == [first]

    def test_a_counter_counts_from_zero_across_reopens(self, make_store: StoreFactory) -> None:
        assert [make_store().next_count("prompt") for _ in range(3)] == [0, 1, 2]
        assert make_store().next_count("other") == 0

    def test_a_rate_bucket_is_one_for_every_store_on_the_database(
            self, make_store: StoreFactory, clock: FakeClock) -> None:
        """Two replicas draw on one bucket: a burst of 4, refilled at 60 a minute."""
        a, b = make_store(), make_store()
        rate = Rate(per_minute=60, burst=4)
        assert [store.take_rate("t", 1, rate) for store in (a, b, a, b)] == [0.0] * 4
        assert b.take_rate("t", 1, rate) == pytest.approx(1.0)  # empty: a second's refill
        assert a.take_rate("other", 1, rate) == 0.0  # keys apart
        clock.advance(seconds=2)
        assert a.take_rate("t", 2, rate) == 0.0
        assert b.take_rate("t", 1, rate) == pytest.approx(1.0)
        assert b.take_rate("t", 99, rate) == pytest.approx(4.0)  # charged as the burst
        assert a.replicated == isinstance(a, PostgresJobStore)

    def test_a_counter_that_follows_the_clock_still_gives_each_caller_its_own(
            self, make_store: StoreFactory) -> None:
        """Event ids' epoch: the clock's second, unless another caller (a replica started
        in the same second) took it; then the next one."""
        store = make_store()
        assert store.next_count("epoch", at_least=100) == 100
        assert store.next_count("epoch", at_least=100) == 101  # the same second: apart
        assert store.next_count("epoch", at_least=50) == 102  # a clock set back: onward
        assert store.next_count("epoch", at_least=200) == 200


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str | None:
    """The ``url`` of ``open_store``: None for the data directory's SQLite file."""
    return str(request.getfixturevalue("postgres_url")) if request.param == "postgres" else None


def _older_layout(data_dir: Path) -> None:
    """The three files a data directory had beside the job database, as they were written."""
    data_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "tokens.sqlite3": (
            "CREATE TABLE tokens (id TEXT PRIMARY KEY, secret_sha256 TEXT NOT NULL, owner TEXT"
            " NOT NULL, admin INTEGER NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT);"
            "INSERT INTO tokens VALUES ('0123abcd', 'digest', 'alice', 1,"
            " '2026-01-01T00:00:00+00:00', NULL);"),
        "comfyui-uploads.sqlite3": (
            "CREATE TABLE uploads (owner TEXT NOT NULL, kind TEXT NOT NULL, subfolder TEXT NOT"
            " NULL, name TEXT NOT NULL, sha256 TEXT NOT NULL, created_at TEXT NOT NULL,"
            " PRIMARY KEY (owner, kind, subfolder, name));"
            "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
            f"INSERT INTO uploads VALUES ('alice', 'input', 'sub', 'x.png', '{'ab' * 32}',"
            " '2026-01-01T00:00:00+00:00');"
            "INSERT INTO counters VALUES ('prompt', 7);"),
        "v2.sqlite3": (
            "CREATE TABLE idempotency_keys (owner TEXT NOT NULL, key TEXT NOT NULL, job_id TEXT"
            " NOT NULL, used_at REAL NOT NULL, PRIMARY KEY (owner, key));"
            "CREATE TABLE assets (id TEXT PRIMARY KEY, owner TEXT NOT NULL, blake3 TEXT NOT"
            " NULL, sha256 TEXT NOT NULL, size_bytes INTEGER NOT NULL, content_type TEXT NOT"
            " NULL, file_path TEXT, tags TEXT NOT NULL, created_at TEXT NOT NULL, expires_at"
            " TEXT);"
            f"INSERT INTO assets VALUES ('asset-1', 'bob', '{'cd' * 32}', '{'ef' * 32}', 3,"
            " 'image/png', 'a.png', '[\"t\"]', '2026-01-01T00:00:00+00:00', NULL);"
            f"INSERT INTO idempotency_keys VALUES ('bob', 'k', 'job-1', {9e9});"),
    }
    for name, script in files.items():
        with sqlite3.connect(data_dir / name) as conn:
            conn.executescript(script)
        conn.close()


def test_the_older_layouts_files_are_imported_once_and_set_aside(
        tmp_path: Path, db_url: str | None) -> None:
    data = tmp_path / "data"
    _older_layout(data)
    with open_store(data, db_url) as store:
        assert [t.owner for t in store.tokens()] == ["alice"]
        upload = store.input_file_named("alice", "sub/x.png")
        assert upload is not None and upload.sha256 == "ab" * 32
        asset = store.input_file("bob", "asset-1")
        assert asset is not None and (asset.blake3, asset.tags) == ("cd" * 32, ("t",))
        assert not store.claim_key("bob", "k", "job-2")
        assert store.next_count("prompt") == 8
        assert store.blob_in_use("ef" * 32) and store.blob_in_use("ab" * 32)
    names = {path.name for path in data.iterdir()}
    assert {"tokens.sqlite3.imported", "v2.sqlite3.imported",
            "comfyui-uploads.sqlite3.imported"} <= names
    assert not {"tokens.sqlite3", "v2.sqlite3", "comfyui-uploads.sqlite3"} & names
    # A start that died between the import's commit and the rename imports again: no copy.
    _older_layout(tmp_path / "again")
    for path in (tmp_path / "again").iterdir():
        path.replace(data / path.name)
    with open_store(data, db_url) as store:
        assert len(store.tokens()) == 1
        assert len(store.list_input_files("alice").files) == 1
        assert len(store.list_input_files("bob").files) == 1
        assert store.next_count("prompt") == 9


def test_an_unreadable_old_file_is_named_and_nothing_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "v2.sqlite3").write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="v2.sqlite3"):
        open_store(tmp_path)
    assert (tmp_path / "v2.sqlite3").is_file()


# --- what a job's life costs the store ------------------------------------------------------


class _Counted:
    """Counts the transactions a store opens and the full job loads inside them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, store: JobStore) -> None:
        self.transactions = 0
        self.job_loads = 0
        opened = type(store)._tx
        load_jobs = tables.load_jobs

        def tx(this: JobStore, what: str, *, write: bool = True) -> object:
            self.transactions += 1
            return opened(this, what, write=write)  # type: ignore[arg-type]

        def loads(conn: object, job_ids: object) -> object:
            self.job_loads += 1
            return load_jobs(conn, job_ids)  # type: ignore[arg-type]

        monkeypatch.setattr(type(store), "_tx", tx)
        monkeypatch.setattr(tables, "load_jobs", loads)

    def reset(self) -> None:
        self.transactions = self.job_loads = 0


def test_an_item_change_answers_whether_its_job_ended(store: JobStore) -> None:
    """The runner learns from the transaction that finished the last item that the job
    ended, with its first error, instead of reading the job back after each item."""
    job = store.create_job(spec(count=3))
    _, first = claim(store)
    _, second = claim(store)
    _, third = claim(store)
    settled = store.succeed(first.id, ["o1"])
    assert (settled.item.status, settled.job_status) == (ItemStatus.SUCCEEDED,
                                                        JobStatus.RUNNING)
    fail(store, second.id, retry=False)
    last = store.succeed(third.id, [])
    ended = JobStatus.PARTIALLY_FAILED
    assert (last.job_status, last.error) == (ended, "it broke")
    assert store.get_job(job.id).status is ended
    assert store.list_jobs(status=ended).jobs[0].id == job.id


def test_an_item_change_reads_the_item_alone(store: JobStore,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Marking one item of a large job parses none of its siblings (no full job load)."""
    store.create_job(spec(count=8))
    _, item = claim(store)
    counted = _Counted(monkeypatch, store)
    store.set_rendered(item.id, graph={"1": {}}, seed=7)
    store.mark_running(item.id)
    store.succeed(item.id, [])
    assert store.get_item(item.id).graph == {"1": {}}
    assert (counted.transactions, counted.job_loads) == (4, 0)


def test_a_job_view_reads_outputs_and_positions_in_one_transaction(
        store: JobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """A subscriber's first look: the job, its outputs not yet listed on an item and its
    queued items' positions, in one transaction and one job load."""
    ahead = store.create_job(spec(count=2, owner="a"))
    job = store.create_job(spec(count=2, owner="a"))
    _, running = claim(store)
    stored = store.add_output(record(ahead, running))
    counted = _Counted(monkeypatch, store)
    view = store.job_view(ahead.id)
    assert (counted.transactions, counted.job_loads) == (1, 1)
    assert view.unlisted_outputs == [stored.id]
    assert view.positions == {ahead.items[1].id: 0}
    later = store.job_view(job.id, job=store.get_job(job.id))
    assert later.positions == {job.items[0].id: 1, job.items[1].id: 2}
    assert later.unlisted_outputs == []
    with pytest.raises(JobNotFound):
        store.job_view("nope")


def test_a_claim_round_with_nothing_queued_costs_no_transaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One process writes a SQLite file, so its own writes tell when something was
    queued: the pool's idle claim rounds open no transaction."""
    store = SqliteJobStore(tmp_path / DATABASE_NAME)
    with store:
        job = store.create_job(spec(count=1, max_attempts=3))
        counted = _Counted(monkeypatch, store)
        _, item = claim(store)
        assert counted.transactions == 1  # the claim, without a look beforehand
        counted.reset()
        for _ in range(5):
            assert store.claim_next("n1", can_run=anything, prompt_id=lambda i: "p") is None
        assert counted.transactions == 0
        fail(store, item.id)  # back in the queue: the next round claims it
        assert claim(store)[1].id == item.id
        store.request_cancel(job.id)
        store.mark_canceled(item.id)
        store.retry_job(job.id)
        assert claim(store)[1].id == item.id


def test_work_queued_by_another_store_on_the_file_is_claimed_soon(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer this process does not see (a second store on the same file) is noticed
    once the hint that nothing is queued has aged (``QUEUED_HINT_TTL``)."""
    with SqliteJobStore(tmp_path / DATABASE_NAME) as first, \
            SqliteJobStore(tmp_path / DATABASE_NAME) as second:
        assert first.claim_next("n1", can_run=anything, prompt_id=lambda i: "p") is None
        second.create_job(spec())
        assert first.claim_next("n1", can_run=anything, prompt_id=lambda i: "p") is None
        monkeypatch.setattr(sql_store, "QUEUED_HINT_TTL", 0.0)
        assert claim(first)[1].status is ItemStatus.DISPATCHED


def test_outputs_are_recorded_with_the_success_in_one_transaction(
        store: JobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner's last outputs and its item's success are one transaction; a file
    recorded before keeps its record (its id replaces the new one); a refused success
    records nothing, so the runner records the outputs on its failure path."""
    job = store.create_job(spec(count=2))
    _, first = claim(store)
    _, second = claim(store)
    earlier = store.add_output(record(job, first, "a.png"))
    again, new = record(job, first, "a.png"), record(job, first, "b.png")
    counted = _Counted(monkeypatch, store)
    settled = store.succeed(first.id, [again.id, new.id], outputs=[again, new])
    assert counted.transactions == 1
    assert [o.id for o in settled.outputs] == [earlier.id, new.id]
    assert settled.item.output_ids == [earlier.id, new.id]
    assert store.get_output(new.id).filename == "b.png"
    store.request_cancel(job.id)
    store.mark_canceled(second.id)
    late = record(job, second, "c.png")
    with pytest.raises(IllegalTransition):
        store.succeed(second.id, [late.id], outputs=[late])
    with pytest.raises(JobNotFound):
        store.get_output(late.id)


def test_queued_counts_are_read_once_until_the_database_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An admission reads the service's and the owner's queued counts: one transaction
    for both on SQLite, read again after any write, here or by another connection."""
    with SqliteJobStore(tmp_path / DATABASE_NAME) as store, \
            SqliteJobStore(tmp_path / DATABASE_NAME) as other:
        store.create_job(spec(count=2, owner="a"))
        counted = _Counted(monkeypatch, store)
        assert (store.queued_count(), store.queued_count("a"), store.queued_count("b")) == (
            2, 2, 0)
        assert counted.transactions == 1
        claim(store)
        assert (store.queued_count(), store.queued_count("a")) == (1, 1)
        other.create_job(spec(count=3, owner="b"))
        assert (store.queued_count(), store.queued_count("b")) == (4, 3)
        assert counted.transactions == 5  # + the claim, a count, the other create, a count


def test_whether_a_job_exists_is_one_transaction_that_loads_no_job(
        store: JobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway asks whether a client-chosen prompt id is taken on every submit: a
    look-up of the id, not a load of the job with its items and graphs."""
    job = store.create_job(spec(count=2))
    counted = _Counted(monkeypatch, store)
    assert store.job_exists(job.id)
    assert not store.job_exists("nope")
    assert (counted.transactions, counted.job_loads) == (2, 0)
    assert store.request_cancel(job.id).status.terminal  # nothing ran: canceled at once
    assert store.delete_finished_job(job.id)
    assert not store.job_exists(job.id)
