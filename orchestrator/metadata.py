"""Workflow metadata, ``NAME.meta.json``: what a workflow means beyond its graph (pure).

The graph says what ComfyUI runs; the metadata says what a person picking a workflow needs:
a title, what kind of work it does, which placeholders it takes (with types, defaults,
limits and help), its custom find/replace pairs, prompt prefixes and style presets, what it
costs, and how to snap sizes. Every field is optional, so a bare API export still serves.

Files are checked with jsonschema first, because its errors carry JSON paths
(``$.placeholders.steps.min``) that point an operator at the exact spot; the pydantic model
then gives the rest of the code typed values. Declarations are turned into the placeholder
engine's specs here, so a self-contradicting declaration is reported at load, not at render.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

import jsonschema
from pydantic import BaseModel, ConfigDict, Field, ValidationError, WithJsonSchema

from orchestrator.errors import WorkflowFormatError, WorkflowInvalid
from orchestrator.jsondepth import MAX_DEPTH, depth_exceeded
from placeholders import (
    CATALOG,
    CustomPlaceholder,
    ImageMode,
    PlaceholderError,
    PlaceholderSpec,
    ValueType,
)

NAME_PATTERN = r"^[A-Za-z0-9_]+$"
FIND_PATTERN = r"^%?[A-Za-z0-9_]+%?$"
# Sizes snap to multiples of 64 unless a workflow says otherwise: SD-family latents are
# 1/8 of the image and most checkpoints were trained on multiples of 64.
DEFAULT_SNAP = 64

Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
Scalar = Annotated[
    str | int | float | bool, WithJsonSchema({"type": ["string", "number", "boolean"]})
]


class Kind(StrEnum):
    """What a workflow does, so front ends can offer it in the right place."""

    TXT2IMG = "txt2img"
    IMG2IMG = "img2img"
    EDIT = "edit"
    VIDEO = "video"
    UPSCALE = "upscale"
    UTILITY = "utility"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PlaceholderDecl(_Model):
    """One declared placeholder. Fields left out are inherited from the built-in catalog
    (``steps``, ``seed``...), so a file can change one default without restating the type."""

    type: Literal["str", "int", "float", "bool", "image"] | None = Field(
        default=None, description="value type; inherited for built-in names, else str")
    default: Scalar | None = Field(
        default=None, description="used when a request gives no value; null = must be given")
    minimum: Number | None = Field(default=None, alias="min", description="lowest number")
    maximum: Number | None = Field(default=None, alias="max", description="highest number")
    choices: tuple[Scalar, ...] = Field(default=(), description="the only values allowed")
    help: str = Field(default="", description="one line shown next to the input")
    label: str = Field(default="", description="short name for forms; defaults to the name")
    image_mode: Literal["base64", "upload", "auto"] | None = Field(
        default=None,
        description="image placeholders: base64 text, an /upload/image file name, or auto "
        "(upload for LoadImage inputs, base64 elsewhere)")


class CustomPair(_Model):
    """A SillyTavern custom placeholder: ``%find%`` becomes ``replace`` (macros allowed)."""

    find: str = Field(pattern=FIND_PATTERN, description="placeholder name, with or without %")
    replace: str = Field(description="text; may use {{char}}, {{user}}, {{getvar::name}}")


class PromptPrefixes(_Model):
    """Common prompt text; ``positive`` may hold ``{prompt}`` where the user's text goes."""

    positive: str = ""
    negative: str = ""


class Style(_Model):
    """A named style: text added to the positive and negative prompts."""

    positive: str = ""
    negative: str = ""


class WorkflowMeta(_Model):
    """The contents of ``NAME.meta.json``."""

    title: str = Field(default="", description="display name; defaults to the file name")
    description: str = ""
    kind: Kind = Kind.TXT2IMG
    tags: tuple[str, ...] = ()
    cost_units: Annotated[int | float, WithJsonSchema(
        {"type": "number", "minimum": 0, "description": "price of one image or video"})
    ] = Field(default=1, ge=0)
    preview_image: str | None = Field(
        default=None, description="file next to the workflow, shown in pickers")
    snap: int = Field(default=DEFAULT_SNAP, ge=1, description="width/height step in pixels")
    placeholders: dict[str, PlaceholderDecl] = Field(
        default_factory=dict, json_schema_extra={"propertyNames": {"pattern": NAME_PATTERN}})
    custom_placeholders: tuple[CustomPair, ...] = ()
    prompt: PromptPrefixes = PromptPrefixes()
    styles: dict[str, Style] = Field(default_factory=dict)
    node_packs: dict[str, str] = Field(
        default_factory=dict,
        description="class_type → where to get the custom node pack that provides it")


META_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    **WorkflowMeta.model_json_schema(),
}
_VALIDATOR = jsonschema.Draft202012Validator(META_SCHEMA)


def parse_metadata(text: str, *, source: str = "metadata") -> WorkflowMeta:
    """Parse ``NAME.meta.json`` text into a :class:`WorkflowMeta`.

    Raises ``WorkflowInvalid`` listing every problem, each a ``WorkflowFormatError`` naming
    ``source`` and the JSON path (or line and column for a syntax error).
    """
    doc = _load_json(text, source)
    problems = [_schema_problem(err, source) for err in _VALIDATOR.iter_errors(doc)]
    if problems:
        raise WorkflowInvalid(sorted(problems, key=lambda p: p.path or ""), source=source)
    meta = _validated(doc, source)
    problems = list(_declaration_problems(meta, source))
    if problems:
        raise WorkflowInvalid(problems, source=source)
    return meta


def _load_json(text: str, source: str) -> Any:
    where = depth_exceeded(text)
    if where is not None:
        error = WorkflowFormatError(f"nests arrays and objects deeper than {MAX_DEPTH} levels",
                                    source=source, line=where[0], column=where[1])
        raise WorkflowInvalid([error], source=source)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        error = WorkflowFormatError(f"not valid JSON: {exc.msg}", source=source,
                                    line=exc.lineno, column=exc.colno)
        raise WorkflowInvalid([error], source=source) from exc


def _validated(doc: Any, source: str) -> WorkflowMeta:
    try:
        return WorkflowMeta.model_validate(doc)
    except ValidationError as exc:  # the schema should have caught it; keep the path anyway
        problems = [
            WorkflowFormatError(err["msg"], source=source, path=_path(err["loc"]))
            for err in exc.errors()
        ]
        raise WorkflowInvalid(problems, source=source) from exc


def _schema_problem(error: jsonschema.ValidationError, source: str) -> WorkflowFormatError:
    if error.validator == "anyOf" and error.context:
        # An optional field is anyOf [its type, null]; the null branch never helps anyone.
        useful = [e for e in error.context if _schema_of(e).get("type") != "null"]
        error = jsonschema.exceptions.best_match(useful or error.context) or error
    return WorkflowFormatError(error.message + _hint(error), source=source,
                               path=_path(error.absolute_path))


def _hint(error: jsonschema.ValidationError) -> str:
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return ""
    known = list(_schema_of(error).get("properties", {}))
    extra = [key for key in error.instance if key not in known]
    close = [m for key in extra for m in difflib.get_close_matches(key, known, n=1)]
    if close:
        return f" (did you mean {', '.join(repr(c) for c in close)}?)"
    return f"; allowed keys: {', '.join(known)}"


def _schema_of(error: jsonschema.ValidationError) -> Mapping[str, Any]:
    return error.schema if isinstance(error.schema, Mapping) else {}


def _path(parts: Any) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _declaration_problems(meta: WorkflowMeta, source: str) -> Iterator[WorkflowFormatError]:
    for name, decl in meta.placeholders.items():
        try:
            to_spec(name, decl)
        except PlaceholderError as exc:
            yield WorkflowFormatError(str(exc), source=source, path=f"$.placeholders.{name}")
    for index, pair in enumerate(meta.custom_placeholders):
        try:
            CustomPlaceholder(pair.find, pair.replace)
        except PlaceholderError as exc:
            yield WorkflowFormatError(str(exc), source=source,
                                      path=f"$.custom_placeholders[{index}]")


def to_spec(name: str, decl: PlaceholderDecl) -> PlaceholderSpec:
    """The engine's spec for ``decl``: fields it leaves out come from the built-in catalog.

    Raises ``placeholders.InvalidSpec`` when the declaration contradicts itself.
    """
    base = CATALOG.get(name) or PlaceholderSpec(name)
    given = decl.model_fields_set
    return PlaceholderSpec(
        name,
        ValueType(decl.type) if decl.type else base.type,
        decl.default if "default" in given else base.default,
        decl.minimum if "minimum" in given else base.minimum,
        decl.maximum if "maximum" in given else base.maximum,
        tuple(decl.choices) if "choices" in given else base.choices,
        decl.help or base.help,
        ImageMode(decl.image_mode) if decl.image_mode else base.image_mode,
    )


def placeholder_specs(meta: WorkflowMeta) -> tuple[PlaceholderSpec, ...]:
    """Specs for every placeholder ``meta`` declares (checked by :func:`parse_metadata`)."""
    return tuple(to_spec(name, decl) for name, decl in meta.placeholders.items())


def custom_placeholders(meta: WorkflowMeta) -> tuple[CustomPlaceholder, ...]:
    """The metadata's find/replace pairs as the engine's custom placeholders."""
    return tuple(CustomPlaceholder(p.find, p.replace) for p in meta.custom_placeholders)
