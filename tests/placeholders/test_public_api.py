"""The package's public surface is deliberate: adding or removing a name is a decision."""

from __future__ import annotations

import placeholders

PUBLIC_API = {
    # substitution
    "Bindings",
    "Plan",
    "Replacement",
    "Substitution",
    "bind",
    "compile_graph",
    "render",
    "resolve",
    "seed_for",
    "substitute",
    "substitute_batch",
    # declarations
    "CATALOG",
    "PlaceholderSpec",
    "RANDOM_SEED",
    "SEED_MAX",
    "Value",
    "ValueType",
    "coerce",
    # custom placeholders
    "Context",
    "CustomPlaceholder",
    "expand_macros",
    "parse_customs",
    # images
    "ImageMode",
    "UploadRequest",
    "fill_uploads",
    "upload_requests",
    # reading a graph
    "Occurrence",
    "Site",
    "is_link",
    "presence",
    "scan",
    "used_names",
    # prompts and sizes
    "ASPECTS",
    "ComposedPrompt",
    "Prefix",
    "Size",
    "StylePreset",
    "TIERS",
    "compose",
    "find_style",
    "resolve_size",
    "size_for",
    "snap",
    # errors
    "InvalidCustomPlaceholder",
    "InvalidSize",
    "InvalidSpec",
    "InvalidValue",
    "MalformedGraph",
    "MissingUpload",
    "MissingValue",
    "NotAChoice",
    "OutOfRange",
    "PlaceholderError",
    "PlaceholderProblems",
    "UnknownOption",
    "UnknownPlaceholder",
    "WrongType",
}


def test_all_lists_exactly_the_public_api() -> None:
    assert set(placeholders.__all__) == PUBLIC_API
    assert len(placeholders.__all__) == len(PUBLIC_API)


def test_every_public_name_is_importable_from_the_package() -> None:
    for name in placeholders.__all__:
        assert getattr(placeholders, name) is not None


def test_every_public_class_and_function_states_its_contract() -> None:
    for name in placeholders.__all__:
        value = getattr(placeholders, name)
        if callable(value) and hasattr(value, "__module__"):
            assert value.__doc__, f"{name} has no docstring"
