"""Which inputs the Generate form shows for a workflow, and the job request it sends (pure).

The form is derived from what the service reports: each placeholder the graph uses with its
effective declaration (type, default, limits, choices, help, label, as the service's
renderer applies them), and the metadata's styles and kind. An input the pool's nodes take
as a list of values (a checkpoint file, a sampler) offers that list, read from the pool's
merged ``/object_info``; ``%sampler%`` and ``%scheduler%`` fall back to KSampler's lists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ui.models import PlaceholderUse, WorkflowDetail

# The ``aspect`` and ``tier`` values a job request may name (the service's size presets).
ASPECTS = ("1:1", "16:9", "9:16", "4:3", "3:4")
TIER_NAMES = ("512", "768", "1MP", "2K", "4K")  # smallest first
DEFAULT_TIER = "512"
COUNTS = (1, 2, 4, 8)
RANDOM_SEED = -1
PROMPTS = ("prompt", "negative_prompt")
SIZE = ("width", "height")
TUNING = ("steps", "scale", "sampler", "scheduler", "denoise", "clip_skip")
# Placeholders whose values are KSampler's own lists, wherever the graph uses them.
SAMPLER_LISTS = {"sampler": ("KSampler", "sampler_name"),
                 "scheduler": ("KSampler", "scheduler")}
NOT_FIELDS = frozenset({"comfyui"})  # origins a request does not fill (ComfyUI's %year%)


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


def field_spec(use: PlaceholderUse, choices: Iterable[Any] = ()) -> FieldSpec:
    """The field for ``use`` as the service declares it; ``choices`` (a node's list of
    values) apply when the declaration has none."""
    return FieldSpec(name=use.name, type=use.type, default=use.default, minimum=use.min,
                     maximum=use.max, choices=tuple(use.choices or choices), help=use.help,
                     label=use.label)


def info_classes(detail: WorkflowDetail) -> list[str]:
    """The node classes whose ``/object_info`` the form needs: each placeholder site's,
    and KSampler's when ``%sampler%`` or ``%scheduler%`` is used."""
    graph = detail.graph or {}
    names = [str(graph.get(site.partition(".")[0], {}).get("class_type", ""))
             for use in detail.placeholders for site in use.sites]
    names += [SAMPLER_LISTS[u.name][0] for u in detail.placeholders if u.name in SAMPLER_LISTS]
    return sorted({n for n in names if n})


def plan_form(detail: WorkflowDetail,
              object_info: Mapping[str, Any] | None = None) -> FormPlan:
    """The inputs for ``detail``: every placeholder its graph uses, grouped.

    ``object_info`` is the pool's (``GET /v1/object_info?class=...`` for
    ``info_classes(detail)``); inputs it lists values for become pick lists.
    """
    meta = detail.meta or {}
    specs = {u.name: field_spec(u, _choices(detail, u, object_info or {}))
             for u in detail.placeholders if u.origin not in NOT_FIELDS}
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


def _choices(detail: WorkflowDetail, use: PlaceholderUse,
             object_info: Mapping[str, Any]) -> list[Any]:
    """The values the node inputs at ``use``'s sites take (a list input such as
    ``ckpt_name``), else KSampler's list for a sampler or scheduler; else none."""
    graph = detail.graph or {}
    found: list[Any] = []
    for site in use.sites:
        node_id, _, input_name = site.partition(".")
        class_type = str(graph.get(node_id, {}).get("class_type", ""))
        found += [v for v in combo(object_info, class_type, input_name) if v not in found]
    if not found and use.name in SAMPLER_LISTS:
        found = list(combo(object_info, *SAMPLER_LISTS[use.name]))
    return found


def combo(object_info: Mapping[str, Any], class_type: str, input_name: str) -> tuple[Any, ...]:
    """The values a node class's list input takes, as ``/object_info`` lists them; ()
    for any other input, an unknown class, or a list the server fills at run time."""
    inputs = (object_info.get(class_type) or {}).get("input") or {}
    raw = (inputs.get("required") or {}).get(input_name) or (
        inputs.get("optional") or {}).get(input_name)
    return _listed(raw)


def _listed(spec: Any) -> tuple[Any, ...]:
    """The values of an input spec in either of ComfyUI's shapes of a list input,
    ``[[values], opts]`` or ``["COMBO", {"options": [values]}]``; () for any other."""
    if not isinstance(spec, list | tuple) or not spec:
        return ()
    head, opts = spec[0], (spec[1] if len(spec) > 1 else None)
    if isinstance(head, list | tuple):
        return tuple(head)
    if head == "COMBO" and isinstance(opts, Mapping):
        return tuple(opts.get("options") or ())
    return ()


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

