"""A registered workflow plus one request's values → the graph to send (pure).

This is the one place the orchestrator calls the placeholder engine for a request, so it
is the one place a ``PlaceholderError`` becomes a ``SubstitutionError`` naming the
workflow. Before substituting, it applies what the workflow's metadata and the request ask
for beyond plain values:

- a size: explicit ``width``/``height``, or an ``aspect`` and a resolution ``tier``,
  snapped to the workflow's ``snap`` step;
- the prompt: the metadata's common prefixes, a named ``style`` preset and per-character
  prefixes wrapped around the user's ``prompt`` and ``negative_prompt``.

``aspect``, ``tier`` and ``style`` are request controls, not placeholders, unless the
workflow declares a placeholder of that name.

Rendering keeps no state of its own. A request renders the workflow's compiled graph
(``Workflow.plan``, made by ``compiled``; the registry compiles each version it loads),
so it pays for its values, not for walking the whole graph; a workflow without a plan is
compiled for that render.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.errors import SubstitutionError
from orchestrator.metadata import custom_placeholders
from orchestrator.workflow import Workflow
from placeholders import (
    CATALOG,
    TIERS,
    Bindings,
    Context,
    CustomPlaceholder,
    InvalidSize,
    PlaceholderError,
    PlaceholderSpec,
    Plan,
    Prefix,
    StylePreset,
    UploadRequest,
    bind,
    coerce,
    compile_graph,
    compose,
    fill_uploads,
    find_style,
    render,
    resolve,
    resolve_size,
)
from placeholders.spec import as_text
from placeholders.syntax import interpolate

CONTROLS = frozenset({"aspect", "tier", "style"})
"""Request keys that steer rendering instead of filling a placeholder."""
MODEL = "model"
MODEL_MARK = f"%{MODEL}%"


@dataclass(frozen=True)
class Rendered:
    """One image's graph, ready to send once its uploads are done.

    ``graph`` may hold :class:`~placeholders.UploadRequest` markers, listed in ``uploads``:
    upload each marker's ``data`` to the chosen node, then call :func:`fill_uploaded` with
    the names the node returned. ``seed`` is the seed written for ``%seed%`` (None when the
    workflow has none): store it to reproduce the image. ``warnings`` are sentences for the
    user (values given but unused, for example).
    """

    workflow: str
    version: str
    index: int
    graph: dict[str, Any]
    seed: int | None
    uploads: tuple[UploadRequest, ...] = ()
    warnings: tuple[str, ...] = ()


@contextlib.contextmanager
def substitution_errors(workflow: str) -> Iterator[None]:
    """Turn any ``PlaceholderError`` into a ``SubstitutionError`` naming ``workflow``."""
    try:
        yield
    except PlaceholderError as exc:
        raise SubstitutionError(workflow, str(exc)) from exc


def compiled(workflow: Workflow) -> Workflow:
    """``workflow`` with its graph compiled (``Workflow.plan``), so renders skip the compile.

    Compile once per version and render the result as often as needed: a plan is
    immutable and serves any thread. Raises ``SubstitutionError`` for a graph that is not
    API format.
    """
    with substitution_errors(workflow.name):
        return replace(workflow, plan=compile_graph(workflow.graph))


def render_workflow(
    workflow: Workflow,
    values: Mapping[str, object],
    *,
    index: int = 0,
    count: int = 1,
    rng: random.Random,
    images: Mapping[str, bytes] | None = None,
    digests: Mapping[str, str] | None = None,
    context: Context | None = None,
    customs: Sequence[CustomPlaceholder] = (),
    characters: Sequence[Prefix] = (),
    tiers: Mapping[str, int] = TIERS,
) -> Rendered:
    """Render image ``index`` of a request for ``count`` images.

    ``values`` maps placeholder names (and the controls ``aspect``, ``tier``, ``style``) to
    text or JSON values; ``images`` maps image placeholders to PNG bytes. ``rng`` draws the
    seed when ``%seed%`` is -1 or not given; a fixed seed ``s`` gives ``s + index``.
    ``customs`` (request custom placeholders) override the metadata's pairs, and their
    macros read ``context``. ``characters`` are per-character prompt prefixes.
    ``digests`` maps image placeholders to the sha256 of their bytes (known from the blob
    store), so an upload marker is named without hashing the bytes again.

    Raises ``SubstitutionError`` naming the workflow and, inside its message, the node,
    input and placeholder at fault (a missing value, an unknown name, a value out of range).
    """
    with substitution_errors(workflow.name):
        bindings = _bindings(workflow, values, images or {}, context, customs, characters,
                             tiers)
        result = render(_plan(workflow), bindings, rng=rng, index=index, digests=digests)
    warnings = result.warnings
    if count > 1 and result.seed is None:
        warnings += (f"the workflow has no %seed%, so all {count} images render the same "
                     "graph",)
    return Rendered(workflow.name, workflow.version, index, result.graph, result.seed,
                    result.uploads, warnings)


def checked_nodes(
    workflow: Workflow,
    values: Mapping[str, object],
    *,
    images: Iterable[str] = (),
    tiers: Mapping[str, int] = TIERS,
) -> dict[str, Any]:
    """Check ``values`` as :func:`render_workflow` would, without rendering: each node's
    class and top-level inputs as a render fills them (images stay unread).

    For submit, which must refuse bad values before anything is recorded and work out
    what a node needs (``dispatch.requirements`` of the result), while the render itself
    waits for dispatch. ``images`` names the image placeholders given; their bytes are
    read only when an item is rendered. Raises ``SubstitutionError`` as a render does.
    """
    with substitution_errors(workflow.name):
        bindings = _bindings(workflow, values, dict.fromkeys(images, b""), None, (), (),
                             tiers)
        plan = _plan(workflow)
        resolved = resolve(plan, bindings, rng=random.Random(0))  # seeds are not models
    inputs: dict[str, dict[str | int, Any]] = {
        node_id: dict(node.get("inputs") or {}) for node_id, node in workflow.graph.items()}
    for group in plan.groups:
        value = _resolved_text(group.name, group.text, resolved)
        for node_id, name in group.inputs:
            inputs[node_id][name] = value
    return {node_id: {"class_type": node.get("class_type"), "inputs": inputs[node_id]}
            for node_id, node in workflow.graph.items()}


def _resolved_text(name: str | None, text: str, resolved: Mapping[str, Any]) -> Any:
    """What a render writes at a site holding ``text`` (images left as they are)."""
    if name is not None:
        return resolved.get(name, text)

    def look_up(part: str) -> str | None:
        value = resolved.get(part)
        return None if value is None or isinstance(value, bytes) else as_text(value)
    return interpolate(text, look_up)


def _bindings(workflow: Workflow, values: Mapping[str, object], images: Mapping[str, bytes],
              context: Context | None, customs: Sequence[CustomPlaceholder],
              characters: Sequence[Prefix], tiers: Mapping[str, int]) -> Bindings:
    specs = {spec.name: spec for spec in workflow.specs}
    given = _placeholder_values(values, specs)
    given.update(_size(workflow, values, specs, tiers))
    given.update(_prompts(workflow, values, specs, characters))
    given.update(images)
    return bind(given, specs=workflow.specs,
                customs=(*custom_placeholders(workflow.meta), *customs), context=context)


def _plan(workflow: Workflow) -> Plan:
    return workflow.plan if workflow.plan is not None else compile_graph(workflow.graph)


def fill_uploaded(rendered: Rendered, filenames: Mapping[str, str]) -> dict[str, Any]:
    """``rendered.graph`` with each upload marker replaced by the name the node returned.

    ``filenames`` maps placeholder names to ``ComfyClient.upload_image`` results. Raises
    ``SubstitutionError`` when a marker has no filename.
    """
    with substitution_errors(rendered.workflow):
        return fill_uploads(rendered.graph, filenames)


def _placeholder_values(values: Mapping[str, object],
                        specs: Mapping[str, PlaceholderSpec]) -> dict[str, object]:
    return {name: value for name, value in values.items()
            if name not in CONTROLS or name in specs}


def _control(values: Mapping[str, object], specs: Mapping[str, PlaceholderSpec],
             name: str) -> str | None:
    value = values.get(name)
    return None if value is None or name in specs else str(value)


def _size(workflow: Workflow, values: Mapping[str, object],
          specs: Mapping[str, PlaceholderSpec], tiers: Mapping[str, int]) -> dict[str, int]:
    aspect, tier = _control(values, specs, "aspect"), _control(values, specs, "tier")
    width, height = values.get("width"), values.get("height")
    if aspect is None and tier is None and width is None and height is None:
        return {}
    if aspect is not None or tier is not None:
        size = resolve_size(aspect=aspect, tier=tier, tiers=tiers, step=workflow.meta.snap)
    else:
        size = resolve_size(width=_side(specs, "width", width),
                            height=_side(specs, "height", height), step=workflow.meta.snap)
    return {"width": size.width, "height": size.height}


def _side(specs: Mapping[str, PlaceholderSpec], name: str, raw: object) -> int:
    spec = specs.get(name) or CATALOG[name]
    value = spec.default if raw is None else coerce(spec, raw)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidSize(f"give a whole number of pixels for {name}, not {value!r}")
    return value


def _prompts(workflow: Workflow, values: Mapping[str, object],
             specs: Mapping[str, PlaceholderSpec], characters: Sequence[Prefix]) -> dict[str, str]:
    meta = workflow.meta
    style_name = _control(values, specs, "style")
    if not (meta.prompt.positive or meta.prompt.negative or style_name or characters):
        return {}
    style = None
    if style_name is not None:
        presets = [StylePreset(n, s.positive, s.negative) for n, s in meta.styles.items()]
        style = find_style(presets, style_name)
    composed = compose(_text(values.get("prompt")), _text(values.get("negative_prompt")),
                       common=Prefix(meta.prompt.positive, meta.prompt.negative),
                       characters=characters, style=style)
    return {"prompt": composed.positive, "negative_prompt": composed.negative}


def _text(value: object) -> str:
    return "" if value is None else str(value)


def model_sites(workflow: Workflow) -> list[tuple[str, str, str]]:
    """(node id, class type, input name) of every input that is exactly ``"%model%"``."""
    return [(node_id, str(node.get("class_type", "")), name)
            for node_id, node in workflow.graph.items()
            for name, value in (node.get("inputs") or {}).items() if value == MODEL_MARK]


def needs_pool_model(workflow: Workflow, values: Mapping[str, object]) -> bool:
    """Whether ``%model%`` is used, not given, and without a default in the metadata."""
    spec = next((s for s in workflow.specs if s.name == MODEL), None)
    given = values.get(MODEL)
    return (given is None or given == "") and (spec is None or spec.default is None) and bool(
        model_sites(workflow))


def with_pool_model(workflow: Workflow, values: Mapping[str, object],
                    offered: Sequence[str]) -> dict[str, object]:
    """``values`` with ``%model%`` set to the pool's only model file when the request and
    the metadata leave it open, so a one-checkpoint pool (the managed test pool, a box
    serving one model) needs no ``model`` in requests.

    ``offered`` is what the pool's nodes list for the inputs at ``model_sites``. Values
    that need no model, or a pool that listed nothing yet, come back unchanged (rendering
    then names the missing value). Raises ``SubstitutionError`` listing ``offered`` when it
    holds several, since picking one would be a guess.
    """
    if not needs_pool_model(workflow, values) or not offered:
        return dict(values)
    if len(offered) == 1:
        return {**values, MODEL: offered[0]}
    node_id, class_type, name = model_sites(workflow)[0]
    raise SubstitutionError(workflow.name, (
        f"node {node_id} ({class_type}), input {name!r}: no value for placeholder "
        f"{MODEL_MARK}; the pool has {', '.join(sorted(offered))}: pass one as "
        f"\"{MODEL}\""))
