"""Walking API-format graphs: sites, links, copies that never touch the input."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest

from placeholders.errors import MalformedGraph
from placeholders.graph import Site, copy_json, is_link, map_leaves, marked_strings, rebuild


def sample_graph() -> dict[str, Any]:
    return {
        "3": {
            "class_type": "KSampler",
            "inputs": {"seed": "%seed%", "model": ["4", 0], "cfg": 7.5, "denoise": None},
            "_meta": {"title": "100% %seed% title"},
        },
        "6": {
            "class_type": "Lora Stack",
            "inputs": {"loras": [{"name": "%lora%", "weight": 1}, "%x%"], "clip": ["4", 1]},
        },
    }


def upper(text: str, node_id: str, class_type: str, path: tuple[str | int, ...]) -> str:
    return f"{node_id}|{class_type}|{path}|{text.upper()}"


def test_a_link_is_exactly_a_string_and_an_int() -> None:
    assert is_link(["4", 0])
    assert not is_link(["4", 0, 1])
    assert not is_link([4, 0])
    assert not is_link(["4", True])
    assert not is_link(["%prompt%", "x"])
    assert not is_link(("4", 0))


def test_rebuild_hands_each_marked_input_string_with_its_site() -> None:
    new = rebuild(sample_graph(), upper)
    assert new["3"]["inputs"]["seed"] == "3|KSampler|('seed',)|%SEED%"
    assert new["6"]["inputs"]["loras"][0]["name"] == "6|Lora Stack|('loras', 0, 'name')|%LORA%"
    assert new["6"]["inputs"]["loras"][1] == "6|Lora Stack|('loras', 1)|%X%"


def test_rebuild_leaves_links_metadata_and_plain_values_alone() -> None:
    new = rebuild(sample_graph(), upper)
    assert new["3"]["inputs"]["model"] == ["4", 0]
    assert new["3"]["_meta"] == {"title": "100% %seed% title"}
    assert new["3"]["inputs"]["cfg"] == 7.5
    assert new["3"]["inputs"]["denoise"] is None


def test_rebuild_never_visits_a_link_even_if_its_id_holds_a_percent_sign() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"a": ["%odd%", 0]}}}
    assert rebuild(graph, upper) == graph


def test_rebuild_returns_containers_that_share_nothing_with_the_input() -> None:
    graph = sample_graph()
    before = copy.deepcopy(graph)
    new = rebuild(graph, upper)
    new["3"]["inputs"]["model"].append(9)
    new["3"]["_meta"]["title"] = "changed"
    new["6"]["inputs"]["loras"][0]["weight"] = 2
    assert graph == before


def test_rebuild_keeps_key_order_within_nodes() -> None:
    graph = {"1": {"inputs": {"b": 1, "a": "%x%"}, "class_type": "X", "_meta": {}}}
    new = rebuild(graph, upper)
    assert list(new["1"]) == ["inputs", "class_type", "_meta"]
    assert list(new["1"]["inputs"]) == ["b", "a"]


def test_rebuild_accepts_read_only_mappings_and_returns_plain_dicts() -> None:
    inner: Mapping[str, Any] = MappingProxyType({"text": "%p%"})
    graph = {"1": MappingProxyType({"class_type": "X", "inputs": inner})}
    new = rebuild(graph, upper)
    assert new == {"1": {"class_type": "X", "inputs": {"text": "1|X|('text',)|%P%"}}}


@pytest.mark.parametrize(
    ("node", "reason"),
    [("oops", "is not an object"), ({"class_type": "X", "inputs": []}, '"inputs" is not')],
)
def test_a_node_that_is_not_api_format_is_named_in_the_error(node: object, reason: str) -> None:
    with pytest.raises(MalformedGraph) as caught:
        rebuild({"7": node}, upper)
    assert caught.value.node_id == "7"
    assert reason in str(caught.value)
    assert "API-format" in str(caught.value)


def test_a_node_without_inputs_is_copied_as_is() -> None:
    assert rebuild({"1": {"class_type": "X"}}, upper) == {"1": {"class_type": "X"}}


def test_marked_strings_lists_input_strings_with_percent_signs_in_graph_order() -> None:
    found = [(str(site), text) for site, text in marked_strings(sample_graph())]
    assert found == [
        ('node 3 (KSampler), input "seed"', "%seed%"),
        ("node 6 (Lora Stack), input \"loras[0]['name']\"", "%lora%"),
        ('node 6 (Lora Stack), input "loras[1]"', "%x%"),
    ]


def test_a_site_names_node_class_and_input() -> None:
    site = Site("3", "KSampler", ("seed",))
    assert site.input_name == "seed"
    assert str(site) == 'node 3 (KSampler), input "seed"'


def test_copy_json_copies_every_container() -> None:
    value = {"a": [1, {"b": "c"}], "d": (1, 2)}
    copied = copy_json(value)
    assert copied == value
    assert copied["a"] is not value["a"]
    assert copied["a"][1] is not value["a"][1]


def test_copy_json_copies_values_that_hold_foreign_objects() -> None:
    marker = object()
    value = {"a": [marker]}
    copied = copy_json(value)
    assert copied["a"][0] is marker
    assert copied["a"] is not value["a"]


def test_map_leaves_applies_a_function_to_every_leaf() -> None:
    graph = {"1": {"class_type": "X", "inputs": {"a": [1, 2], "b": {"c": 3}}}}
    doubled = map_leaves(graph, lambda v: v * 2 if isinstance(v, int) else v)
    assert doubled == {"1": {"class_type": "X", "inputs": {"a": [2, 4], "b": {"c": 6}}}}
