"""`comfy-orch token create|revoke|list` on the service's database (the data folder's, or
PostgreSQL's)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.cli import main
from orchestrator.tokens import TokenStore, split_token


def create(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> str:
    assert main(["token", "create", "--owner", "alice", "--data", str(tmp_path), *extra]) == 0
    return capsys.readouterr().out.splitlines()[-1]


def test_create_prints_a_working_token_once(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    token = create(tmp_path, capsys, "--admin")
    with TokenStore.open(tmp_path) as store:
        who = store.authenticate(token)
    assert who is not None and (who.owner, who.admin) == ("alice", True)


def test_list_shows_ids_owners_and_roles_but_no_secret(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    token = create(tmp_path, capsys)
    assert main(["token", "list", "--data", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    token_id, secret = split_token(token) or ("", "")
    assert token_id in out and "alice" in out and "user" in out and "active" in out
    assert secret not in out


def test_revoke_refuses_the_token_and_list_says_so(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    token = create(tmp_path, capsys)
    token_id = (split_token(token) or ("", ""))[0]
    assert main(["token", "revoke", token_id, "--data", str(tmp_path)]) == 0
    assert f"revoked {token_id}" in capsys.readouterr().out
    with TokenStore.open(tmp_path) as store:
        assert store.authenticate(token) is None
    main(["token", "list", "--data", str(tmp_path)])
    assert "revoked" in capsys.readouterr().out


def test_revoking_an_unknown_id_exits_2_with_a_message(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "revoke", "deadbeef", "--data", str(tmp_path)]) == 2
    assert "no token with id 'deadbeef'" in capsys.readouterr().err


def test_an_empty_list_says_how_to_make_one(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "list", "--data", str(tmp_path)]) == 0
    assert "comfy-orch token create" in capsys.readouterr().out


def test_create_prints_the_token_alone_on_stdout_for_shell_capture(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """TOKEN=$(comfy-orch token create ...) must capture a token, not the banner too."""
    assert main(["token", "create", "--owner", "my-app", "--data", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 1
    with TokenStore.open(tmp_path) as store:
        assert store.authenticate(captured.out.strip()) is not None
    assert "shown once" in captured.err
    assert main(["token", "create", "--owner", "b", "--quiet", "--data", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""


def test_create_and_revoke_work_on_a_postgresql_database(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], postgres_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens live in the service's one database: with ``--db`` (or ``COMFY_ORCH_DB``) that
    is PostgreSQL, where every replica finds them, and nothing is written to the folder."""
    token = create(tmp_path, capsys, "--db", postgres_url)
    with TokenStore.open(tmp_path / "elsewhere", postgres_url) as store:
        assert store.authenticate(token) is not None
    monkeypatch.setenv("COMFY_ORCH_DB", postgres_url)
    token_id = (split_token(token) or ("", ""))[0]
    assert main(["token", "revoke", token_id, "--data", str(tmp_path)]) == 0
    with TokenStore.open(tmp_path, postgres_url) as store:
        assert store.authenticate(token) is None
    assert not list(tmp_path.glob("*.sqlite3"))
