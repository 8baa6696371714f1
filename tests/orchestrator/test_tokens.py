"""API tokens: shown once, stored hashed, revocable, and checked in constant time."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from orchestrator.errors import ConfigError, JobNotFound, NotFound, StoreError
from orchestrator.store import DATABASE_NAME
from orchestrator.tokens import Principal, TokenStore, redact, split_token


def parts(token: str) -> tuple[str, str]:
    found = split_token(token)
    assert found is not None, token
    return found


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[TokenStore]:
    with TokenStore.open(tmp_path) as tokens:
        yield tokens


def test_a_new_token_authenticates_as_its_owner(store: TokenStore) -> None:
    token = store.create("alice")
    who = store.authenticate(token)
    assert who == Principal(owner="alice", admin=False, token_id=parts(token)[0])


def test_admin_tokens_say_so(store: TokenStore) -> None:
    who = store.authenticate(store.create("root", admin=True))
    assert who is not None and who.admin


def test_the_plaintext_is_never_stored(store: TokenStore, tmp_path: Path) -> None:
    token = store.create("alice")
    secret = parts(token)[1]
    rows = sqlite3.connect(tmp_path / DATABASE_NAME).execute("SELECT * FROM tokens").fetchall()
    assert rows and all(secret not in str(row) for row in rows)


def test_a_wrong_secret_with_a_real_id_is_refused(store: TokenStore) -> None:
    token = store.create("alice")
    token_id, secret = parts(token)
    assert store.authenticate(f"co_{token_id}_{secret[:-1]}x") is None


@pytest.mark.parametrize("garbage", ["", "co", "co__x", "co_1234_x", "xx_12345678_abc",
                                     "Bearer something", "co_12345678_"])
def test_malformed_tokens_are_refused(store: TokenStore, garbage: str) -> None:
    store.create("alice")
    assert store.authenticate(garbage) is None


def test_tokens_are_unique(store: TokenStore) -> None:
    tokens = {store.create("alice") for _ in range(50)}
    assert len(tokens) == 50 and len({parts(t)[0] for t in tokens}) == 50


@pytest.mark.parametrize("how", ["id", "prefix", "token"])
def test_revoke_by_id_prefix_or_token_refuses_it_from_then_on(store: TokenStore,
                                                               how: str) -> None:
    token = store.create("alice")
    info = store.get(parts(token)[0])
    ref = {"id": info.id, "prefix": info.prefix, "token": token}[how]
    revoked = store.revoke(ref)
    assert revoked.revoked_at is not None
    assert store.authenticate(token) is None


def test_revoke_leaves_other_tokens_alone(store: TokenStore) -> None:
    keep, drop = store.create("alice"), store.create("alice")
    store.revoke(parts(drop)[0])
    assert store.authenticate(keep) is not None


def test_revoking_twice_keeps_the_first_time(store: TokenStore) -> None:
    token_id = parts(store.create("alice"))[0]
    first = store.revoke(token_id).revoked_at
    assert store.revoke(token_id).revoked_at == first


def test_revoking_an_unknown_id_names_it(store: TokenStore) -> None:
    with pytest.raises(NotFound, match="no token with id 'deadbeef'") as caught:
        store.revoke("deadbeef")
    assert not isinstance(caught.value, JobNotFound)  # a token is not a job


def test_list_shows_every_token_oldest_first_without_secrets(tmp_path: Path) -> None:
    moments = iter(datetime(2026, 1, day, tzinfo=UTC) for day in range(1, 10))
    with TokenStore.open(tmp_path, clock=lambda: next(moments)) as store:
        first, second = store.create("alice"), store.create("bob", admin=True)
        store.revoke(parts(first)[0])
        listed = store.list()
    assert [(t.owner, t.admin, t.revoked_at is not None) for t in listed] == [
        ("alice", False, True), ("bob", True, False)]
    assert listed[0].created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert all(parts(second)[1] not in repr(t) for t in listed)


def test_tokens_survive_reopening(tmp_path: Path) -> None:
    with TokenStore.open(tmp_path) as store:
        token = store.create("alice")
    with TokenStore.open(tmp_path) as store:
        assert store.authenticate(token) is not None


def test_a_revocation_is_seen_by_another_open_store(tmp_path: Path) -> None:
    """The CLI revokes in its own process while the service keeps its store open."""
    with TokenStore.open(tmp_path) as service, TokenStore.open(tmp_path) as cli:
        token = service.create("alice")
        cli.revoke(parts(token)[0])
        assert service.authenticate(token) is None


@pytest.mark.parametrize("owner", ["", "   ", "x" * 101])
def test_owner_names_must_be_sensible(store: TokenStore, owner: str) -> None:
    with pytest.raises(ConfigError, match="owner name"):
        store.create(owner)


def test_a_closed_store_refuses_work_and_closing_twice_is_harmless(tmp_path: Path) -> None:
    store = TokenStore.open(tmp_path)
    store.close()
    store.close()
    with pytest.raises(StoreError, match="was closed"):
        store.create("alice")


def test_an_unopenable_file_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / DATABASE_NAME).mkdir()
    with pytest.raises(StoreError, match="opening"):
        TokenStore.open(tmp_path)


def test_concurrent_use_from_threads(store: TokenStore) -> None:
    tokens = [store.create(f"owner{i}") for i in range(20)]
    failures: list[str] = []

    def check(token: str) -> None:
        for _ in range(20):
            if store.authenticate(token) is None:
                failures.append(token)

    threads = [threading.Thread(target=check, args=(t,)) for t in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


def test_redact_hides_secrets_wherever_requests_carry_them() -> None:
    token = "co_0123abcd_AbC-dE_f9"
    assert redact(f"GET /comfyui/{token}/ws?clientId=1") == "GET /comfyui/***/ws?clientId=1"
    assert redact(f"/v1/jobs?a=1&token={token}&b=2") == "/v1/jobs?a=1&token=***&b=2"
    assert redact(f"Authorization: Bearer {token}") == "Authorization: Bearer ***"
    assert redact(f"token {token} was refused") == "token co_0123abcd_*** was refused"
    assert redact("nothing secret /v1/jobs?limit=5") == "nothing secret /v1/jobs?limit=5"
