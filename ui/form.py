"""Which inputs the Generate form shows for a workflow, and the job request it sends (pure).

The form is derived from what the service reports: the placeholders the graph uses, and
the metadata's declarations, styles and kind. A declaration leaves out what the built-in
catalog already says about a name (``steps`` is an int from 1 to 10000), so the catalog
fills the gaps exactly as the service's renderer does. Model-file inputs get the files the
pool's nodes have installed as choices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from placeholders import CATALOG, TIERS
from ui.models import WorkflowDetail

ASPECTS = ("1:1", "16:9", "9:16", "4:3", "3:4")
DEFAULT_TIER = "512"
TIER_NAMES = tuple(TIERS)
COUNTS = (1, 2, 4, 8)
RANDOM_SEED = -1
PROMPTS = ("prompt", "negative_prompt")
SIZE = ("width", "height")
TUNING = ("steps", "scale", "sampler", "scheduler", "denoise", "clip_skip")


@dataclass(frozen=True)
class FieldSpec:
    """One input of the form: a placeholder with its type, limits and help."""

    name: str
    type: str = "str"  # str, int, float, bool, image
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[Any, ...] = ()
    help: str = ""
    label: str = ""

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class FormPlan:
    """The form for one workflow, grouped the way the view lays it out."""

    prompts: list[FieldSpec] = field(default_factory=list)
    styles: list[str] = field(default_factory=list)
    has_size: bool = False
    size: list[FieldSpec] = field(default_factory=list)  # width, height (when both used)
    seed: FieldSpec | None = None
    tuning: list[FieldSpec] = field(default_factory=list)
    images: list[FieldSpec] = field(default_factory=list)
    other: list[FieldSpec] = field(default_factory=list)


def field_spec(name: str, decl: Mapping[str, Any] | None = None,
               choices: Iterable[Any] = ()) -> FieldSpec:
    """``name``'s spec: the declaration's fields over the catalog's; ``choices`` (installed
    model files) apply when the declaration has none."""
    decl = decl or {}
    base = CATALOG.get(name)
    return FieldSpec(
        name=name,
        type=str(decl.get("type") or (base.type.value if base else "str")),
        default=decl["default"] if "default" in decl else (base.default if base else None),
        minimum=decl.get("min", base.minimum if base else None),
        maximum=decl.get("max", base.maximum if base else None),
        choices=tuple(decl.get("choices") or choices),
        help=str(decl.get("help") or (base.help if base else "")),
        label=str(decl.get("label", "")),
    )


def plan_form(detail: WorkflowDetail,
              installed: Mapping[str, list[str]] | None = None) -> FormPlan:
    """The inputs for ``detail``: every placeholder its graph uses, grouped.

    ``installed`` is the pool's ``"Class.input" → files`` (``GET /v1/nodes``).
    """
    meta = detail.meta or {}
    declared: Mapping[str, Any] = meta.get("placeholders") or {}
    used = [p.name for p in detail.placeholders]
    specs = {n: field_spec(n, declared.get(n), _choices(detail, n, installed or {}))
             for n in used}
    has_size = all(n in specs for n in SIZE)
    grouped = set(PROMPTS) | set(TUNING) | {"seed"} | (set(SIZE) if has_size else set())
    return FormPlan(
        prompts=[specs[n] for n in PROMPTS if n in specs],
        styles=sorted(meta.get("styles") or {}),
        has_size=has_size,
        size=[specs[n] for n in SIZE] if has_size else [],
        seed=specs.get("seed"),
        tuning=[specs[n] for n in TUNING if n in specs],
        images=[s for s in specs.values() if s.type == "image"],
        other=[s for n, s in specs.items() if n not in grouped and s.type != "image"],
    )


def _choices(detail: WorkflowDetail, name: str,
             installed: Mapping[str, list[str]]) -> list[str]:
    """Installed files for a placeholder used at a model input (``ckpt_name``...)."""
    graph = detail.graph or {}
    files: list[str] = []
    for use in detail.placeholders:
        if use.name != name:
            continue
        for site in use.sites:
            node_id, _, input_name = site.partition(".")
            class_type = str(graph.get(node_id, {}).get("class_type", ""))
            files += [f for f in installed.get(f"{class_type}.{input_name}", [])
                      if f not in files]
    return files


@dataclass(frozen=True)
class Size:
    """The size asked for: an aspect ratio and a tier, or an exact width and height."""

    aspect: str | None = None
    tier: str | None = None
    width: int | None = None
    height: int | None = None

    def values(self) -> dict[str, Any]:
        if self.aspect is not None:
            return {"aspect": self.aspect, "tier": self.tier or DEFAULT_TIER}
        if self.width is not None and self.height is not None:
            return {"width": self.width, "height": self.height}
        return {}


@dataclass(frozen=True)
class Scope:
    """Where the images belong: a character, a conversation, and who may see them."""

    character: str = ""
    conversation: str = ""
    visibility: str = "private"


def job_request(workflow: str, entries: Mapping[str, Any], *, size: Size = Size(),
                count: int = 1, scope: Scope = Scope(), style: str = "") -> dict[str, Any]:
    """The ``POST /v1/jobs`` body: blank entries are left out so the workflow's defaults
    apply; a seed of -1 asks the service for a fresh random seed per image."""
    values = {k: v for k, v in entries.items() if v is not None and v != ""}
    values.update(size.values())
    if style:
        values["style"] = style
    return {"workflow": workflow, "values": values, "count": count,
            "character": scope.character.strip() or None,
            "conversation": scope.conversation.strip() or None,
            "visibility": scope.visibility}

