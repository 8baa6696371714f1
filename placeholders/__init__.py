"""Placeholder substitution for API-format ComfyUI graphs. Pure: standard library only.

Typical use, one request::

    bindings = bind({"prompt": "a cat", "steps": "30"}, specs=workflow_specs)
    for rendered in substitute_batch(graph, bindings, rng=random.Random(), count=4):
        ...  # upload rendered.uploads, fill_uploads(), submit, store rendered.seed

A graph served to many requests is compiled once (``plan = compile_graph(graph)``, cached
per workflow version) and each request calls ``render(plan, bindings, rng=...)``.

Every error derives from :class:`PlaceholderError` and words its own message.
"""

from placeholders.bindings import Bindings, bind, seed_for
from placeholders.catalog import CATALOG, RANDOM_SEED, SEED_MAX
from placeholders.compose import ComposedPrompt, Prefix, StylePreset, compose, find_style
from placeholders.custom import Context, CustomPlaceholder, expand_macros, parse_customs
from placeholders.errors import (
    InvalidCustomPlaceholder,
    InvalidSize,
    InvalidSpec,
    InvalidValue,
    MalformedGraph,
    MissingUpload,
    MissingValue,
    NotAChoice,
    OutOfRange,
    PlaceholderError,
    PlaceholderProblems,
    UnknownOption,
    UnknownPlaceholder,
    WrongType,
)
from placeholders.graph import Site, is_link
from placeholders.images import ImageMode, UploadRequest, fill_uploads, upload_requests
from placeholders.plan import Plan, compile_graph
from placeholders.resolution import ASPECTS, TIERS, Size, resolve_size, size_for, snap
from placeholders.spec import PlaceholderSpec, Value, ValueType, coerce
from placeholders.substitute import (
    Replacement,
    Substitution,
    render,
    resolve,
    substitute,
    substitute_batch,
)
from placeholders.usage import Occurrence, presence, scan, used_names

__all__ = [
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
]
