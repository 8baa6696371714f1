"""``comfy-orch workflows list|check|schema`` and ``comfy-orch render``: the registry's CLI.

``check`` prints one message per problem (file, node, input, what to do) and exits 2 when
any workflow has one; it also shows which placeholders each workflow uses (✅/❌), as
SillyTavern's workflow editor does. Without ``--node`` it still knows ComfyUI's core
classes, so a graph of core classes without an output node is refused as ComfyUI would
refuse it; one with custom classes gets a note that only a node can tell. ``render``
shows exactly what a request would send.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from orchestrator.comfy.client import ComfyClient
from orchestrator.errors import WorkflowError, WorkflowInvalid
from orchestrator.metadata import META_SCHEMA
from orchestrator.registry import GRAPH_SUFFIX, WorkflowRegistry, name_of, read_workflow
from orchestrator.rendering import Rendered, compiled, render_workflow
from orchestrator.validation import (
    check_against_object_info,
    check_outputs_offline,
    check_placeholders,
    unjudged_classes,
)
from orchestrator.workflow import GRAPH_SCHEMA, Workflow
from placeholders import Context, UploadRequest, presence

DEFAULT_DIR = Path("workflows")
PRESENCE_WIDTH = 100  # characters per line of the ✅/❌ placeholder list
EXIT_OK = 0
EXIT_INVALID = 2


def register(commands: Any) -> None:
    group = commands.add_parser("workflows", help="list, check and describe workflows")
    sub = group.add_subparsers(dest="workflows_command", required=True, metavar="ACTION")

    listing = sub.add_parser("list", help="the workflows of a folder and whether they load")
    _add_dir(listing)
    listing.set_defaults(handler=run_list)

    check = sub.add_parser("check", help="validate workflows; exit 2 if any has a problem")
    check.add_argument("targets", nargs="+", metavar="FILE_OR_NAME",
                       help="a workflow file, or a name in --dir")
    _add_dir(check)
    check.add_argument("--node", metavar="URL",
                       help="also check against this ComfyUI's installed nodes and models")
    check.set_defaults(handler=run_check)

    schema = sub.add_parser("schema", help="print the JSON Schemas of graph and metadata files")
    schema.add_argument("--which", choices=["both", "graph", "metadata"], default="both",
                        help="which schema to print (default both)")
    schema.set_defaults(handler=run_schema)

    render = commands.add_parser("render", help="print the API JSON a request would send")
    render.add_argument("name", help="a workflow name in --dir, or a workflow file")
    _add_dir(render)
    render.add_argument("--set", dest="values", action="append", default=[], type=_pair,
                        metavar="KEY=VALUE", help="a placeholder value (repeatable)")
    render.add_argument("--image", dest="images", action="append", default=[], type=_pair,
                        metavar="KEY=PATH", help="an image placeholder's PNG file (repeatable)")
    render.add_argument("--count", type=int, default=1, metavar="N", help="images to render")
    render.add_argument("--char", default="", help="character name for {{char}} macros")
    render.add_argument("--user", default="", help="user name for {{user}} macros")
    render.add_argument("--var", dest="vars", action="append", default=[], type=_pair,
                        metavar="NAME=VALUE", help="a {{getvar::NAME}} variable (repeatable)")
    render.set_defaults(handler=run_render)


def _add_dir(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", type=Path, default=DEFAULT_DIR, metavar="D",
                        help=f"workflows folder (default: ./{DEFAULT_DIR})")


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value


# --- list -----------------------------------------------------------------------------------


def run_list(args: argparse.Namespace) -> int:
    with WorkflowRegistry(args.dir, watch=False) as registry:
        statuses = registry.list()
    if not statuses:
        print(f"no workflows in {args.dir} (add NAME.json files exported in API format)")
    for st in statuses:
        state = "ok" if st.ok else ("STALE" if st.serving else "BROKEN")
        kind = st.kind.value if st.kind else "-"
        print(f"{st.name:<32} {kind:<9} {state:<7} {st.title}")
        for line in (st.error or "").splitlines():
            print(f"    error: {line}")
        for warning in st.warnings:
            print(f"    warning: {warning}")
    return EXIT_OK


# --- check ----------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    object_info = _object_info(args.node) if args.node else None
    paths = dict.fromkeys(_target_path(target, args.dir) for target in args.targets)
    failed = [path for path in paths if not _check_one(path, object_info, args.node)]
    return EXIT_INVALID if failed else EXIT_OK


def _object_info(url: str) -> dict[str, Any]:
    with ComfyClient(url) as client:
        return client.object_info()


def _target_path(target: str, folder: Path) -> Path:
    """A file as given (its metadata file stands for its workflow), else a name in folder."""
    path = Path(target)
    if path.is_file() or target.endswith(GRAPH_SUFFIX) or "/" in target:
        return path.with_name((name_of(path) or path.stem) + GRAPH_SUFFIX)
    return folder / (target + GRAPH_SUFFIX)


def _check_one(path: Path, object_info: dict[str, Any] | None, node: str | None) -> bool:
    try:
        workflow = read_workflow(path)
    except WorkflowError as exc:
        _report(path, [str(p) for p in _each(exc)])
        return False
    problems = [str(p) for p in check_placeholders(workflow)]
    if object_info is not None:
        found = check_against_object_info(workflow.graph, object_info,
                                          node_packs=workflow.meta.node_packs)
        problems += [f"{p} (on {node})" for p in found]
    else:
        problems += [str(p) for p in check_outputs_offline(workflow.graph)]
    _report(path, [f"{path}: {p}" for p in problems])
    if object_info is None:
        _note_unjudged(path, workflow)
    _print_presence(workflow)
    return not problems


def _note_unjudged(path: Path, workflow: Workflow) -> None:
    unknown = unjudged_classes(workflow.graph)
    if unknown:
        print(f"  note: {path} has no ComfyUI core output node; whether "
              f"{', '.join(unknown)} (not core classes) is one only a node can tell: "
              "check again with --node URL")


def _each(exc: WorkflowError) -> Sequence[WorkflowError]:
    return exc.problems if isinstance(exc, WorkflowInvalid) else [exc]


def _report(path: Path, messages: Sequence[str]) -> None:
    if not messages:
        print(f"{path}: ok")
        return
    print(f"{path}: {len(messages)} problem(s)")
    for message in messages:
        print(f"error: {message}", file=sys.stderr)


def _print_presence(workflow: Workflow) -> None:
    customs = [pair.find for pair in workflow.meta.custom_placeholders]
    used = presence(workflow.graph, customs, declared=list(workflow.meta.placeholders))
    marks = "  ".join(f"{'✅' if on else '❌'}\u00a0%{name}%" for name, on in used.items())
    # no-break spaces keep each mark with its name when the line wraps
    print(textwrap.fill(marks, width=PRESENCE_WIDTH, initial_indent="  ",
                        subsequent_indent="  ").replace("\u00a0", " "))


# --- schema ---------------------------------------------------------------------------------


def run_schema(args: argparse.Namespace) -> int:
    schemas = {"graph": GRAPH_SCHEMA, "metadata": META_SCHEMA}
    doc = schemas if args.which == "both" else schemas[args.which]
    print(json.dumps(doc, indent=2))
    return EXIT_OK


# --- render ---------------------------------------------------------------------------------


def run_render(args: argparse.Namespace) -> int:
    workflow = compiled(read_workflow(_target_path(args.name, args.dir)))
    images = {key: Path(path).read_bytes() for key, path in args.images}
    context = Context(char=args.char, user=args.user, vars=dict(args.vars))
    rng = random.Random()  # a fresh system-seeded source: the seeds used are printed
    renders = [
        render_workflow(workflow, dict(args.values), index=i, count=args.count, rng=rng,
                        images=images, context=context)
        for i in range(max(args.count, 1))
    ]
    graphs = [r.graph for r in renders]
    print(json.dumps(graphs[0] if len(graphs) == 1 else graphs, indent=2, default=_marker))
    _print_notes(renders)
    return EXIT_OK


def _marker(value: object) -> str:
    if isinstance(value, UploadRequest):
        return value.filename_hint
    raise TypeError(f"{type(value).__name__} is not JSON")


def _print_notes(renders: Sequence[Rendered]) -> None:
    seeds = ", ".join("none" if r.seed is None else str(r.seed) for r in renders)
    print(f"seed{'s' if len(renders) > 1 else ''}: {seeds}", file=sys.stderr)
    for note in dict.fromkeys(_notes(renders)):
        print(note, file=sys.stderr)


def _notes(renders: Sequence[Rendered]) -> Iterator[str]:
    for rendered in renders:
        for upload in rendered.uploads:
            yield (f"upload: %{upload.placeholder}% is sent to the node with /upload/image "
                   f"as {upload.filename_hint}; the graph names it after the upload")
        for warning in rendered.warnings:
            yield f"warning: {warning}"
