"""Check a graph before it costs GPU time (pure: the caller fetches ``/object_info``).

Two kinds of checks, each returning every :class:`Problem` found rather than stopping at
the first, so an operator fixes a workflow in one pass:

- :func:`check_against_object_info`: the graph against one server's ``/object_info`` —
  node classes that are not installed (a missing custom node pack), required inputs left
  out, numbers outside the node's limits, COMBO values (a checkpoint name, a sampler) the
  server does not have, links of the wrong type, and no output node at all;
- :func:`check_placeholders`: the graph against the placeholders it may use — a ``%name%``
  nothing declares gets a did-you-mean from the placeholder engine;
- :func:`check_outputs_offline`: without a server, whether a graph of ComfyUI's core
  classes has an output node (a custom class cannot be judged: :func:`unjudged_classes`).

A value that is still a whole ``%placeholder%`` (or an upload marker) is skipped by the
first check: it is only known at render time. Check the rendered graph to check values.
"""

from __future__ import annotations

import difflib
import random
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from orchestrator.comfy.core_classes import CORE_CLASSES, CORE_OUTPUT_CLASSES
from orchestrator.errors import GraphRejected, InputProblem
from orchestrator.metadata import custom_placeholders
from orchestrator.workflow import Graph, Workflow, is_link
from placeholders import (
    PlaceholderProblems,
    UnknownPlaceholder,
    UploadRequest,
    bind,
    scan,
    substitute,
)

# How many installed values a "not installed" message lists before it stops.
MAX_LISTED = 8
# Hints for node classes whose pack operators most often forget to install.
KNOWN_PACKS: Mapping[str, str] = {
    "ETN_LoadImageBase64": "comfyui-tooling-nodes (https://github.com/Acly/comfyui-tooling-nodes)",
    "ETN_LoadMaskBase64": "comfyui-tooling-nodes (https://github.com/Acly/comfyui-tooling-nodes)",
    "ETN_SendImageWebSocket": "comfyui-tooling-nodes (https://github.com/Acly/comfyui-tooling-nodes)",
}


class ProblemCode(StrEnum):
    """What kind of problem; stable for front ends (ComfyUI's own names where it has one)."""

    UNKNOWN_CLASS = "unknown_class"
    MISSING_INPUT = "required_input_missing"
    WRONG_TYPE = "invalid_input_type"
    TOO_SMALL = "value_smaller_than_min"
    TOO_BIG = "value_bigger_than_max"
    NOT_IN_LIST = "value_not_in_list"
    BAD_LINK = "bad_linked_input"
    LINK_TYPE = "return_type_mismatch"
    NO_OUTPUT = "prompt_no_outputs"
    UNKNOWN_PLACEHOLDER = "unknown_placeholder"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a graph: where (node, input) and what to do, in ``message``."""

    code: ProblemCode
    message: str
    node_id: str | None = None
    class_type: str | None = None
    input_name: str | None = None
    received: object = None

    def __str__(self) -> str:
        if self.node_id is None:
            return self.message
        where = f"node {self.node_id} ({self.class_type})"
        if self.input_name:
            where += f', input "{self.input_name}"'
        return f"{where}: {self.message}"

    def as_input_problem(self) -> InputProblem:
        """The same problem in the shape ``GraphRejected`` carries."""
        return InputProblem(self.node_id or "", self.class_type or "", self.message,
                            self.input_name, str(self.code), self.received)


def raise_for_problems(problems: Sequence[Problem], *, source: str, node_url: str = "") -> None:
    """Raise ``GraphRejected`` listing ``problems`` (one per line) when there are any."""
    if not problems:
        return
    graph_level = [p.message for p in problems if p.node_id is None]
    first = graph_level[0] if graph_level else f"{len(problems)} problem(s) found"
    where = f" on {node_url}" if node_url else ""
    raise GraphRejected(
        f"{source} cannot run{where}: {first}",
        [p.as_input_problem() for p in problems if p.node_id is not None],
        code=str(problems[0].code), node_url=node_url,
    )


# --- against /object_info ----------------------------------------------------------------


def check_against_object_info(
    graph: Graph, object_info: Mapping[str, Any], *, node_packs: Mapping[str, str] = {},
    as_comfyui: bool = False, inputs: Collection[str] = (),
) -> list[Problem]:
    """Every problem ComfyUI would report for ``graph``, found without submitting it.

    ``object_info`` is the server's ``GET /object_info`` answer. ``node_packs`` maps class
    types to where their custom node pack can be found (from the workflow's metadata), so
    an "unknown node" message can say what to install.

    By default a few values ComfyUI would take but misread are problems too (``"false"``
    for a BOOLEAN is true to ComfyUI; ``"7"`` for an INT): our own workflows and REST
    callers are better told. ``as_comfyui`` applies ComfyUI's own rules instead and
    nothing stricter, for clients that speak to us as to ComfyUI (the gateway): scalars
    converted as ComfyUI converts them, any literal taken by an input of another type.

    ``inputs`` names the input files the job brings: a value naming one passes as the
    file staged on the node at dispatch (staging happens there, once, not for a check).
    """
    problems: list[Problem] = []
    pending = _pending_inputs(graph) | _naming_inputs(graph, inputs)
    rules = _AS_COMFYUI if as_comfyui else _OURS
    for node_id, node in graph.items():
        class_type = str(node["class_type"])
        info = object_info.get(class_type)
        if info is None:
            problems.append(_unknown_class(node_id, class_type, object_info, node_packs))
        else:
            problems += _node_problems(graph, node_id, node, (info, object_info), pending,
                                       rules)
    if not any(_is_output(object_info.get(n["class_type"])) for n in graph.values()):
        problems += _no_output(graph, object_info)
    return problems


def _pending_inputs(graph: Graph) -> frozenset[tuple[str, str]]:
    """(node id, input) pairs whose whole value is a placeholder, known only at render."""
    return frozenset((o.site.node_id, o.site.input_name) for o in scan(graph)
                     if o.whole and len(o.site.path) == 1)


def _naming_inputs(graph: Graph, inputs: Collection[str]) -> frozenset[tuple[str, str]]:
    """(node id, input) pairs whose value names one of the job's input files."""
    if not inputs:
        return frozenset()
    return frozenset((node_id, name) for node_id, node in graph.items()
                     for name, value in (node.get("inputs") or {}).items()
                     if isinstance(value, str) and value in inputs)


def _unknown_class(node_id: str, class_type: str, object_info: Mapping[str, Any],
                   node_packs: Mapping[str, str]) -> Problem:
    pack = node_packs.get(class_type) or KNOWN_PACKS.get(class_type)
    todo = (f"install the custom node pack {pack} on that server" if pack else
            "install the custom node pack that provides it (ComfyUI Manager can search it)")
    # Only a near-identical name is a typo; ETN_LoadImageBase64 is not "LoadImage" misspelt.
    close = [] if pack else difflib.get_close_matches(class_type, list(object_info), 1, 0.85)
    hint = f" (did you mean {close[0]}?)" if close else ""
    return Problem(ProblemCode.UNKNOWN_CLASS,
                   f"node type {class_type} is not installed on this server{hint}; {todo}",
                   node_id, class_type)


def _is_output(info: Any) -> bool:
    return isinstance(info, Mapping) and bool(info.get("output_node"))


def _no_output(graph: Graph, object_info: Mapping[str, Any]) -> list[Problem]:
    if any(node["class_type"] not in object_info for node in graph.values()):
        return []  # an unknown node might be the output; its own problem says enough
    return [Problem(ProblemCode.NO_OUTPUT,
                    "the workflow has no output node, so ComfyUI would run nothing; add one "
                    "such as SaveImage or PreviewImage")]


def check_outputs_offline(graph: Graph) -> list[Problem]:
    """The "no output node" problem ComfyUI would report, judged without a server.

    Only a graph made of core classes alone can be judged (a custom class might be an
    output); :func:`unjudged_classes` names the classes that kept it from being judged.
    """
    classes = {str(node["class_type"]) for node in graph.values()}
    if classes & CORE_OUTPUT_CLASSES or not classes <= CORE_CLASSES:
        return []
    return [Problem(ProblemCode.NO_OUTPUT,
                    "the workflow has no output node, so ComfyUI would refuse it (\"Prompt "
                    "has no outputs\"); add one such as SaveImage or PreviewImage")]


def unjudged_classes(graph: Graph) -> list[str]:
    """Classes that are not ComfyUI core classes, when no core output node is present:
    whether the graph has an output depends on them, which only a server can tell."""
    classes = {str(node["class_type"]) for node in graph.values()}
    if classes & CORE_OUTPUT_CLASSES:
        return []
    return sorted(classes - CORE_CLASSES)


def _node_problems(graph: Graph, node_id: str, node: Mapping[str, Any],
                   infos: tuple[Mapping[str, Any], Mapping[str, Any]],
                   pending: frozenset[tuple[str, str]], rules: _Rules) -> list[Problem]:
    info, object_info = infos
    class_type = str(node["class_type"])
    inputs: Mapping[str, Any] = node.get("inputs") or {}
    sections = info.get("input") or {}
    required: Mapping[str, Any] = sections.get("required") or {}
    optional: Mapping[str, Any] = sections.get("optional") or {}
    problems = [
        Problem(ProblemCode.MISSING_INPUT, _missing_message(spec), node_id, class_type, name)
        for name, spec in required.items() if name not in inputs
    ]
    for name, value in inputs.items():
        spec = required.get(name, optional.get(name))
        if spec is not None and (node_id, name) not in pending:
            site = _Site(node_id, class_type, name)
            problems += rules(site, value, InputSpec.parse(spec), graph, object_info)
    return problems


def _missing_message(spec: Any) -> str:
    parsed = InputSpec.parse(spec)
    if parsed.kind not in _SCALAR_KINDS and parsed.kind != "COMBO":
        return f"required input is missing; link it to a node that outputs {parsed.kind}"
    default = parsed.options.get("default")
    hint = f" (ComfyUI's default is {default!r})" if default is not None else ""
    return f"required input is missing; add it{hint}"


@dataclass(frozen=True)
class _Site:
    node_id: str
    class_type: str
    input_name: str

    def problem(self, code: ProblemCode, message: str, received: object = None) -> Problem:
        return Problem(code, message, self.node_id, self.class_type, self.input_name, received)


_SCALAR_KINDS = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN"})
# Newer ComfyUI's "same type as the other input" type; its front end checks those links.
_MATCH_TYPE = "COMFY_MATCHTYPE_V3"


@dataclass(frozen=True)
class InputSpec:
    """One ``/object_info`` input spec, whichever of ComfyUI's three shapes it came in.

    ``kind`` is a type name (``INT``, ``IMAGE``...) or ``COMBO``; ``values`` lists a
    COMBO's allowed values, None for a "remote" COMBO that accepts anything.
    """

    kind: str
    options: Mapping[str, Any]
    values: tuple[Any, ...] | None = None

    @classmethod
    def parse(cls, spec: Any) -> InputSpec:
        """Read ``[TYPE]``, ``[TYPE, opts]``, ``[[values], opts]`` or ``["COMBO", opts]``."""
        head = spec[0] if isinstance(spec, list | tuple) and spec else "*"
        opts = spec[1] if isinstance(spec, list | tuple) and len(spec) > 1 else {}
        opts = opts if isinstance(opts, Mapping) else {}
        if isinstance(head, list | tuple):
            return cls("COMBO", opts, tuple(head))
        if head == "COMBO":
            listed = opts.get("options")
            return cls("COMBO", opts, None if listed is None else tuple(listed))
        return cls(str(head), opts)


def _shared_problems(site: _Site, value: Any, spec: InputSpec, graph: Graph,
                     object_info: Mapping[str, Any]) -> list[Problem] | None:
    """What links, uploads and combos get under both rule sets; None for other values."""
    if is_link(value):
        return _link_problems(site, value, spec, graph, object_info)
    if isinstance(value, UploadRequest):
        return []
    if spec.kind == "COMBO":
        return _combo_problems(site, value, spec)
    return None


def _input_problems(site: _Site, value: Any, spec: InputSpec, graph: Graph,
                    object_info: Mapping[str, Any]) -> list[Problem]:
    shared = _shared_problems(site, value, spec, graph, object_info)
    if shared is not None:
        return shared
    if spec.kind in ("INT", "FLOAT"):
        return _number_problems(site, value, spec)
    if spec.kind == "BOOLEAN" and not isinstance(value, bool):
        return [site.problem(ProblemCode.WRONG_TYPE,
                             f"expects true or false, got {value!r}", value)]
    if spec.kind not in _SCALAR_KINDS and spec.kind != "*":
        return [site.problem(ProblemCode.WRONG_TYPE,
                             f"expects a link from a node that outputs {spec.kind}, got "
                             f"the value {_short(value)}", value)]
    return []


def _comfyui_problems(site: _Site, value: Any, spec: InputSpec, graph: Graph,
                      object_info: Mapping[str, Any]) -> list[Problem]:
    """ComfyUI's own checks of one input (``execution.validate_inputs``), nothing more."""
    shared = _shared_problems(site, value, spec, graph, object_info)
    if shared is not None:
        return shared
    if spec.kind not in ("INT", "FLOAT"):
        return []  # str() and bool() take anything; other types take any literal
    try:
        number = int(value) if spec.kind == "INT" else float(value)
    except (TypeError, ValueError, OverflowError):
        return [site.problem(ProblemCode.WRONG_TYPE, f"expects {spec.kind}, got "
                             f"{_short(value)}", value)]
    return list(_range_problems(site, number, spec.options))


_Rules = Callable[[_Site, Any, InputSpec, Graph, Mapping[str, Any]], list[Problem]]
_OURS: _Rules = _input_problems
_AS_COMFYUI: _Rules = _comfyui_problems


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _combo_problems(site: _Site, value: Any, spec: InputSpec) -> list[Problem]:
    if spec.values is None or value in spec.values:
        return []
    if spec.options.get("image_upload"):
        todo = "upload it to the server first (or give the name /upload/image returned)"
        return [site.problem(ProblemCode.NOT_IN_LIST,
                             f"{_short(value)} is not in the server's input folder; {todo}",
                             value)]
    return [site.problem(ProblemCode.NOT_IN_LIST,
                         f"{_short(value)} is not installed on this server; "
                         f"{_installed(value, spec.values)}", value)]


def _installed(value: Any, values: Sequence[Any]) -> str:
    if not values:
        return "the server has none installed; add one to its models folder"
    names = [str(v) for v in values]
    close = difflib.get_close_matches(str(value), names, n=3, cutoff=0.4)
    listed = close + [n for n in names if n not in close]
    more = f" (and {len(names) - MAX_LISTED} more)" if len(names) > MAX_LISTED else ""
    return f"installed: {', '.join(listed[:MAX_LISTED])}{more}"


def _number_problems(site: _Site, value: Any, spec: InputSpec) -> list[Problem]:
    whole = spec.kind == "INT"
    ok_type = int if whole else (int, float)
    if isinstance(value, bool) or not isinstance(value, ok_type):
        what = "a whole number" if whole else "a number"
        return [site.problem(ProblemCode.WRONG_TYPE, f"expects {what}, got {_short(value)}",
                             value)]
    return list(_range_problems(site, value, spec.options))


def _range_problems(site: _Site, value: float, options: Mapping[str, Any]) -> Iterator[Problem]:
    low, high = options.get("min"), options.get("max")
    if low is not None and value < low:
        yield site.problem(ProblemCode.TOO_SMALL,
                           f"{value} is below the minimum {low}; use {low} or more", value)
    if high is not None and value > high:
        yield site.problem(ProblemCode.TOO_BIG,
                           f"{value} is above the maximum {high}; use {high} or less", value)


def _link_problems(site: _Site, link: list[Any], spec: InputSpec, graph: Graph,
                   object_info: Mapping[str, Any]) -> list[Problem]:
    source_id, index = str(link[0]), int(link[1])
    source_class = str(graph[source_id]["class_type"])
    info = object_info.get(source_class)
    if info is None:
        return []  # the unknown node has its own problem
    outputs = list(info.get("output") or [])
    if not 0 <= index < len(outputs):
        return [site.problem(ProblemCode.BAD_LINK,
                             f"links to output {index} of node {source_id} ({source_class}), "
                             f"which has only {len(outputs)} output(s)", link)]
    if not _types_match(outputs[index], spec.kind):
        return [site.problem(ProblemCode.LINK_TYPE,
                             f"expects {spec.kind} but node {source_id} ({source_class}) "
                             f"output {index} is {outputs[index]}; link a matching output",
                             link)]
    return []


def _types_match(received: Any, expected: str) -> bool:
    if isinstance(received, list) or expected == "COMBO":
        return True  # a node passing a COMBO value through: ComfyUI checks it at run time
    wanted = {t.strip() for t in expected.split(",")}
    given = {t.strip() for t in str(received).split(",")}
    return bool({"*", _MATCH_TYPE} & (wanted | given)) or bool(wanted & given)


# --- placeholders --------------------------------------------------------------------------


def check_placeholders(workflow: Workflow) -> list[Problem]:
    """Every ``%name%`` in the graph that nothing declares, with the engine's did-you-mean.

    Known names are the built-in catalog, the metadata's declarations and custom pairs, and
    ComfyUI's own date tokens. A request can still fill an unknown name with its own custom
    placeholder, so the registry reports these as warnings and ``workflows check`` as errors.
    """
    # A dry render with no request values: the engine reports unknown names exactly as a
    # real render would; names that merely lack a value (%model%) are not a problem here.
    bindings = bind(specs=workflow.specs, customs=custom_placeholders(workflow.meta))
    try:
        substitute(workflow.graph, bindings, rng=random.Random(0))
    except PlaceholderProblems as exc:
        return [_unknown(p) for p in exc.problems if isinstance(p, UnknownPlaceholder)]
    return []


def _unknown(exc: UnknownPlaceholder) -> Problem:
    site = exc.site
    todo = (f"did you mean %{exc.suggestion}%?" if exc.suggestion else
            "declare it in the metadata's placeholders or custom_placeholders")
    return Problem(ProblemCode.UNKNOWN_PLACEHOLDER,
                   f"unknown placeholder %{exc.placeholder}% ({todo})",
                   site.node_id, site.class_type, site.input_name, f"%{exc.placeholder}%")
