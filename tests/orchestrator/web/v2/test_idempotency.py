"""Single-use idempotency keys: refused on reuse, released on definite failure.

The keys are the core's (a mode of the job store's idempotency, in the one database);
their 24 h memory is a store contract (``tests/orchestrator/test_store.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import JobNotFound, StoreError
from orchestrator.service import Orchestrator
from orchestrator.web.v2.errors import IdempotencyKeyReuse, InvalidBody
from orchestrator.web.v2.idempotency import KeyStore, checked_key, job_exists


@pytest.fixture
def keys(tmp_path: Path) -> Iterator[KeyStore]:
    with Orchestrator(data_dir=tmp_path, start=False) as orch:
        yield KeyStore(orch)


def test_a_key_is_single_use_per_owner(keys: KeyStore) -> None:
    keys.claim("alice", "k", "job-1")

    with pytest.raises(IdempotencyKeyReuse):
        keys.claim("alice", "k", "job-2")
    keys.claim("bob", "k", "job-3")
    assert keys.job_of("alice", "k") == "job-1"


def test_keys_survive_reopening_the_database(tmp_path: Path) -> None:
    with Orchestrator(data_dir=tmp_path, start=False) as orch:
        KeyStore(orch).claim("alice", "k", "j")

    with Orchestrator(data_dir=tmp_path, start=False) as orch, pytest.raises(
            IdempotencyKeyReuse):
        KeyStore(orch).claim("alice", "k", "other")


def test_a_definite_failure_releases_the_key(keys: KeyStore) -> None:
    with pytest.raises(ValueError), keys.held("alice", "k", "job-1", lambda _: False):
        raise ValueError("refused before any job was made")

    keys.claim("alice", "k", "job-2")


def test_an_unknown_outcome_keeps_the_key(keys: KeyStore) -> None:
    def unknowable(job_id: str) -> bool:
        raise StoreError("the store is down")

    with pytest.raises(StoreError), keys.held("alice", "k", "job-1", unknowable):
        raise StoreError("failed while recording the job")

    with pytest.raises(IdempotencyKeyReuse):
        keys.claim("alice", "k", "job-2")


def test_a_job_that_exists_after_a_failure_keeps_the_key(keys: KeyStore) -> None:
    with pytest.raises(RuntimeError), keys.held("alice", "k", "job-1", lambda _: True):
        raise RuntimeError("failed after the job was recorded")

    assert keys.job_of("alice", "k") == "job-1"


def test_job_exists_reads_a_missing_job_as_absent() -> None:
    def get(job_id: str) -> object:
        raise JobNotFound(job_id)

    assert job_exists(get)("x") is False
    assert job_exists(lambda job_id: object())("x") is True


@pytest.mark.parametrize("bad", ["", "x" * 256, "naïve", "a\nb"])
def test_keys_must_be_printable_ascii_up_to_255(bad: str) -> None:
    with pytest.raises(InvalidBody):
        checked_key(bad)
