"""Upload names: safe names, and ComfyUI's addresses over the caller's input files
(ComfyUI's rename on clash is the core's: ``tests/orchestrator/test_inputs.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.service import Orchestrator
from orchestrator.tokens import Principal
from orchestrator.web.gateway.uploads import (
    Upload,
    UploadStore,
    is_image,
    safe_name,
    safe_subfolder,
)
from tests.orchestrator.web.conftest import png_bytes


@pytest.mark.parametrize("name, ok", [("a.png", True), ("a b (1).png", True), ("", False),
                                      ("..", False), ("a/b.png", False), ("a\\b", False)])
def test_safe_name(name: str, ok: bool) -> None:
    assert (safe_name(name) == name) is ok


@pytest.mark.parametrize("subfolder, expected", [("", ""), (".", ""), ("a/b", "a/b"),
                                                  ("a/../b", "b"), ("a/..", ""), ("..", None),
                                                  ("a/../../b", None), ("/etc", None)])
def test_safe_subfolder(subfolder: str, expected: str | None) -> None:
    assert safe_subfolder(subfolder) == expected


def test_is_image_uses_pillow() -> None:
    assert is_image(png_bytes())
    assert not is_image(b"hello")
    assert not is_image(png_bytes()[:40])


def test_the_store_keeps_names_per_owner_and_counts_prompts(tmp_path: Path) -> None:
    alice = Principal(owner="alice", admin=False, token_id="a")
    bob = Principal(owner="bob", admin=False, token_id="b")
    where = Upload("input", "sub", "x.png")
    with Orchestrator(data_dir=tmp_path, start=False) as orch:
        store = UploadStore(orch)
        assert store.save(alice, where, b"1", overwrite=False).name == "x.png"
        assert store.save(alice, where, b"2", overwrite=False).name == "x (1).png"
        assert store.save(bob, where, b"2", overwrite=False).name == "x.png"
        assert store.save(alice, where, b"3", overwrite=True).name == "x.png"
        found = store.inputs_named(alice, ["sub/x.png", "sub/x (1).png", "other.png"])
        assert {name: orch._blobs.path(sha).read_bytes() for name, sha in found.items()} == {
            "sub/x.png": b"3", "sub/x (1).png": b"2"}
        assert [store.next_number() for _ in range(2)] == [0, 1]
    with Orchestrator(data_dir=tmp_path, start=False) as orch:
        again = UploadStore(orch)
        assert orch.input_path(again.find(bob, where)).read_bytes() == b"2"
        assert again.next_number() == 2
