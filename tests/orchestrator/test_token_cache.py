"""A token found valid is answered from memory; revocations still take effect: at once in
this process, within ``CACHE_TTL_S`` when made by another process or replica."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.store import JobStore, open_store
from orchestrator.tokens import CACHE_TTL_S, TokenCache, TokenStore, split_token


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class CountingStore:
    """The store with its token reads counted (everything else passed through)."""

    def __init__(self, store: JobStore) -> None:
        self.store, self.reads = store, 0

    def token(self, token_id: str) -> object:
        self.reads += 1
        return self.store.token(token_id)

    def __getattr__(self, name: str) -> object:
        return getattr(self.store, name)


@pytest.fixture()
def db(tmp_path: Path) -> Iterator[JobStore]:
    store = open_store(tmp_path)
    yield store
    store.close()


def _tokens(db: JobStore, clock: Clock) -> tuple[TokenStore, CountingStore]:
    counting = CountingStore(db)
    return TokenStore(counting, cache=TokenCache(clock=clock)), counting  # type: ignore[arg-type]


def _id(token: str) -> str:
    found = split_token(token)
    assert found is not None
    return found[0]


def test_a_valid_token_is_read_from_the_store_once_per_ttl(db: JobStore) -> None:
    clock = Clock()
    tokens, counting = _tokens(db, clock)
    token = tokens.create("alice")
    for _ in range(5):
        who = tokens.authenticate(token)
        assert who is not None and who.owner == "alice"
    assert counting.reads == 1
    clock.now += CACHE_TTL_S
    assert tokens.authenticate(token) is not None
    assert counting.reads == 2


def test_a_cached_id_with_a_wrong_secret_is_refused(db: JobStore) -> None:
    tokens, _ = _tokens(db, Clock())
    token = tokens.create("alice")
    assert tokens.authenticate(token) is not None
    assert tokens.authenticate(f"co_{_id(token)}_wrong-secret") is None


def test_a_revocation_in_this_process_is_refused_at_the_next_request(db: JobStore) -> None:
    clock = Clock()
    serving, _ = _tokens(db, clock)
    token = serving.create("alice")
    assert serving.authenticate(token) is not None
    other, _ = _tokens(db, clock)  # the CLI's store object, say, in the same process
    other.revoke(_id(token))
    assert serving.authenticate(token) is None


def test_a_revocation_by_another_process_takes_effect_within_the_ttl(db: JobStore) -> None:
    clock = Clock()
    serving, _ = _tokens(db, clock)
    token = serving.create("alice")
    assert serving.authenticate(token) is not None
    db.revoke_token(_id(token), datetime.now(UTC))  # another replica: no in-process signal
    clock.now += CACHE_TTL_S / 2
    assert serving.authenticate(token) is not None  # the documented staleness
    clock.now += CACHE_TTL_S / 2
    assert serving.authenticate(token) is None


def test_unknown_and_revoked_tokens_are_never_cached(db: JobStore) -> None:
    tokens, counting = _tokens(db, Clock())
    token = tokens.create("alice")
    tokens.revoke(_id(token))
    for _ in range(3):
        assert tokens.authenticate(token) is None
        assert tokens.authenticate("co_00000000_nope") is None
    assert counting.reads == 6
