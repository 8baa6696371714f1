"""The built-in placeholders match SillyTavern's names, types and meanings."""

from __future__ import annotations

from placeholders.catalog import CATALOG, COMFY_TOKENS, RANDOM_SEED, RANDOM_SEED_LIMIT, SEED_MAX
from placeholders.spec import ValueType


def test_the_catalog_holds_sillytaverns_names_in_its_order() -> None:
    assert list(CATALOG) == [
        "prompt",
        "negative_prompt",
        "model",
        "vae",
        "sampler",
        "scheduler",
        "steps",
        "scale",
        "width",
        "height",
        "denoise",
        "clip_skip",
        "seed",
        "user_avatar",
        "char_avatar",
    ]


def test_each_built_in_has_its_sillytavern_type() -> None:
    types = {name: spec.type for name, spec in CATALOG.items()}
    assert {n for n, t in types.items() if t is ValueType.STR} == {
        "prompt",
        "negative_prompt",
        "model",
        "vae",
        "sampler",
        "scheduler",
    }
    assert {n for n, t in types.items() if t is ValueType.INT} == {
        "steps",
        "width",
        "height",
        "clip_skip",
        "seed",
    }
    assert {n for n, t in types.items() if t is ValueType.FLOAT} == {"scale", "denoise"}
    assert {n for n, t in types.items() if t is ValueType.IMAGE} == {"user_avatar", "char_avatar"}


def test_every_built_in_explains_itself() -> None:
    assert all(spec.help for spec in CATALOG.values())


def test_server_specific_names_have_no_default_so_they_must_be_given() -> None:
    no_default = {name for name, spec in CATALOG.items() if spec.default is None}
    assert no_default == {"model", "vae", "user_avatar", "char_avatar"}


def test_seed_defaults_to_random_and_accepts_the_full_64_bit_range() -> None:
    seed = CATALOG["seed"]
    assert seed.default == RANDOM_SEED == -1
    assert (seed.minimum, seed.maximum) == (-1, SEED_MAX)
    assert SEED_MAX == 2**64 - 1
    assert RANDOM_SEED_LIMIT == 2**53


def test_the_catalog_cannot_be_changed_by_a_caller() -> None:
    assert not hasattr(CATALOG, "__setitem__")


def test_comfyuis_own_filename_tokens_are_not_built_ins() -> None:
    assert COMFY_TOKENS.isdisjoint(CATALOG)
    assert "year" in COMFY_TOKENS
