"""Input files through the façade: stored once per content, found by name and hash,
released with the last record naming their bytes, swept when expired."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator.errors import JobNotFound, NotFound
from orchestrator.inputs import InputFiles, OnName, choose_name
from orchestrator.outputs import BlobStore
from orchestrator.service import Orchestrator
from orchestrator.store import SqliteJobStore
from orchestrator.tokens import Principal

ALICE = Principal(owner="alice", admin=False, token_id="a")
BOB = Principal(owner="bob", admin=False, token_id="b")


@pytest.fixture
def orch(tmp_path: Path) -> Iterator[Orchestrator]:
    with Orchestrator(data_dir=tmp_path, start=False) as opened:
        yield opened


def test_choose_name_renames_only_different_content() -> None:
    taken = {"a.png": "red", "a (1).png": "blue", "s/b.png": "red"}

    assert choose_name("a.png", "red", taken.get) == "a.png"
    assert choose_name("a.png", "blue", taken.get) == "a (1).png"
    assert choose_name("a.png", "green", taken.get) == "a (2).png"
    assert choose_name("s/b.png", "x", taken.get) == "s/b (1).png"
    assert choose_name("b", "x", taken.get) == "b"


def test_a_file_is_stored_once_and_found_by_name_id_and_hash(orch: Orchestrator) -> None:
    stored = orch.put_input(ALICE, b"bytes", path="sub/x.png", content_type="image/png")
    file = stored.file
    assert orch.input_path(file).read_bytes() == b"bytes"
    assert orch.input_file(ALICE, file.id) == orch.input_named(ALICE, "sub/x.png") == file
    assert orch.input_by_hash(ALICE, sha256=file.sha256) == file
    assert file.blake3 is not None and orch.input_by_hash(ALICE, blake3=file.blake3) == file
    assert orch.inputs_named(ALICE, ["sub/x.png", "y.png"]) == {"sub/x.png": file}
    with pytest.raises(NotFound) as caught:
        orch.input_file(BOB, file.id)  # another owner's id reads as a missing one
    assert not isinstance(caught.value, JobNotFound)
    with pytest.raises(NotFound, match="sub/x.png"):
        orch.input_named(BOB, "sub/x.png")
    assert orch.input_by_hash(BOB, sha256=file.sha256) is None


def test_comfyui_names_rename_a_clash_and_overwrite_replaces(orch: Orchestrator) -> None:
    first = orch.put_input(ALICE, b"one", path="x.png", content_type="image/png",
                           on_name=OnName.RENAME).file
    second = orch.put_input(ALICE, b"two", path="x.png", content_type="image/png",
                            on_name=OnName.RENAME).file
    assert (first.path, second.path) == ("x.png", "x (1).png")
    replaced = orch.put_input(ALICE, b"three", path="x.png", content_type="image/png",
                              on_name=OnName.REPLACE).file
    assert orch.input_named(ALICE, "x.png") == replaced
    assert not orch.input_path(first).exists()  # nothing names "one" any more


def test_the_last_record_naming_bytes_releases_them(orch: Orchestrator) -> None:
    mine = orch.put_input(ALICE, b"shared", path="a.png", content_type="image/png").file
    theirs = orch.put_input(BOB, b"shared", path="b.png", content_type="image/png").file
    orch.delete_input(ALICE, mine.id)
    assert orch.input_path(theirs).read_bytes() == b"shared"
    job = orch.submit(graph={"1": {"class_type": "LoadImage", "inputs": {"image": "b.png"}}},
                      owner="bob", images={"b.png": b"shared"})
    orch.delete_input(BOB, theirs.id)
    assert orch.input_path(theirs).is_file()  # the job still names them as an input
    assert orch.get(job.id) is not None
    with pytest.raises(NotFound):
        orch.delete_input(BOB, theirs.id)


def test_minting_needs_bytes_the_caller_stored(orch: Orchestrator) -> None:
    file = orch.put_input(ALICE, b"bytes", path="a.png", content_type="image/png",
                          tags=("t",)).file
    assert file.blake3 is not None
    minted = orch.mint_input(ALICE, file.blake3, path=None)
    assert minted.file == file and not minted.created  # same bytes, same name: the same
    renamed = orch.mint_input(ALICE, file.blake3, path="b.png", expires_in=60)
    assert renamed.created and renamed.file.path == "b.png" and renamed.file.expires_at
    with pytest.raises(NotFound):
        orch.mint_input(BOB, file.blake3, path=None)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_expired_files_read_as_missing_and_the_sweep_releases_their_bytes(
        tmp_path: Path) -> None:
    clock, ticks = Clock(), iter([0.0, 1.0, 2.0, 100.0])
    released: list[str] = []
    with SqliteJobStore(tmp_path / "db", clock=clock) as store:
        files = InputFiles(store, BlobStore(tmp_path / "blobs"), released.append,
                           clock=clock, ticks=lambda: next(ticks))
        short = files.put("ann", b"short", path="a.png", content_type="image/png",
                          expires_in=60).file  # the first put sweeps (tick 0): nothing
        kept = files.put("ann", b"kept", path="b.png", content_type="image/png").file
        clock.now += timedelta(minutes=5)
        assert store.input_file("ann", short.id) is None  # at once, before any sweep
        assert files.sweep_if_due() == 0  # too soon after the last sweep
        assert files.sweep_if_due() == 1
        assert released == [short.sha256]
        assert store.input_file("ann", kept.id) == kept
