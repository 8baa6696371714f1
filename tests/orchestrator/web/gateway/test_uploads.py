"""Upload names: ComfyUI's rename on clash, safe names, and the per-owner table."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.web.gateway.uploads import (
    Upload,
    UploadStore,
    choose_name,
    is_image,
    safe_name,
    safe_subfolder,
)
from tests.orchestrator.web.conftest import png_bytes


def test_choose_name_renames_only_different_content() -> None:
    taken = {"a.png": "red", "a (1).png": "blue"}

    assert choose_name("a.png", "red", taken.get, overwrite=False) == "a.png"
    assert choose_name("a.png", "blue", taken.get, overwrite=False) == "a (1).png"
    assert choose_name("a.png", "green", taken.get, overwrite=False) == "a (2).png"
    assert choose_name("a.png", "green", taken.get, overwrite=True) == "a.png"
    assert choose_name("b", "x", taken.get, overwrite=False) == "b"


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
    store = UploadStore.open(tmp_path)
    where = Upload("input", "sub", "x.png")

    assert store.save("alice", where, "1" * 64, overwrite=False).name == "x.png"
    assert store.save("alice", where, "2" * 64, overwrite=False).name == "x (1).png"
    assert store.save("bob", where, "2" * 64, overwrite=False).name == "x.png"
    assert store.inputs_named("alice", ["sub/x.png", "sub/x (1).png", "other.png"]) == {
        "sub/x.png": "1" * 64, "sub/x (1).png": "2" * 64}
    again = UploadStore.open(tmp_path)
    assert again.find("bob", where) == "2" * 64
    assert [again.next_number() for _ in range(3)] == [0, 1, 2]
