"""Reading which placeholders a graph uses, and where."""

from __future__ import annotations

from typing import Any

from placeholders.catalog import CATALOG
from placeholders.graph import Site
from placeholders.usage import Occurrence, presence, scan, used_names


def graph() -> dict[str, Any]:
    return {
        "3": {"class_type": "KSampler", "inputs": {"seed": "%seed%", "model": ["%model%", 0]}},
        "6": {
            "class_type": "CLIPTextEncode",
            "inputs": {"text": "%mood% photo of %prompt%", "extra": [{"k": "%lora%"}]},
        },
    }


def test_scan_finds_every_token_with_its_site_and_whether_it_is_whole() -> None:
    assert scan(graph()) == (
        Occurrence(Site("3", "KSampler", ("seed",)), "seed", whole=True),
        Occurrence(Site("6", "CLIPTextEncode", ("text",)), "mood", whole=False),
        Occurrence(Site("6", "CLIPTextEncode", ("text",)), "prompt", whole=False),
        Occurrence(Site("6", "CLIPTextEncode", ("extra", 0, "k")), "lora", whole=True),
    )


def test_scan_skips_links_and_non_input_fields() -> None:
    g = graph()
    g["3"]["_meta"] = {"title": "%title%"}
    assert "model" not in used_names(g)
    assert "title" not in used_names(g)


def test_used_names_lists_each_name_once() -> None:
    assert used_names(graph()) == {"seed", "mood", "prompt", "lora"}


def test_presence_marks_each_built_in_and_custom_name_as_used_or_not() -> None:
    marks = presence(graph(), ["mood", "%weather%"])
    assert list(marks) == [*CATALOG, "mood", "weather"]
    assert marks["seed"] and marks["prompt"] and marks["mood"]
    assert not marks["model"]
    assert not marks["weather"]


def test_presence_includes_declared_names_once() -> None:
    marks = presence(graph(), ["lora"], declared=["lora", "seed"])
    assert list(marks).count("lora") == 1
    assert marks["lora"]


def test_presence_leaves_out_names_nobody_declared() -> None:
    assert "lora" not in presence(graph())
