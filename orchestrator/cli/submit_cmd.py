"""``comfy-orch submit``: run one workflow and write its outputs to a folder."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from orchestrator.comfy.client import ComfyClient
from orchestrator.comfy.messages import Message
from orchestrator.comfy.progress import GraphProgress
from orchestrator.console import ProgressLine
from orchestrator.errors import WorkflowFormatError, WorkflowNotFound
from orchestrator.workflow import Graph, parse_graph_text


def register(commands: Any) -> None:
    cmd = commands.add_parser("submit", help="run a workflow on a ComfyUI node and save outputs")
    cmd.add_argument("workflow", metavar="FILE", help="an API-format workflow JSON file")
    cmd.add_argument("--node", required=True, metavar="URL",
                     help="ComfyUI server address, e.g. http://127.0.0.1:8188")
    cmd.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                     help="folder for the outputs (default: current folder)")
    cmd.set_defaults(handler=run_submit)


def load_graph_file(path: Path) -> Graph:
    """Read and parse a workflow file, naming the file in every error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise WorkflowNotFound(str(path)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise WorkflowFormatError(f"cannot be read: {exc}", source=str(path)) from exc
    return parse_graph_text(text, source=str(path))


def run_submit(args: argparse.Namespace) -> int:
    graph = load_graph_file(Path(args.workflow))
    line = ProgressLine(Path(args.workflow).stem)
    tracker = GraphProgress.for_graph(graph)

    def on_message(msg: Message) -> None:
        snap = tracker.update(msg)
        if snap is None:
            return
        detail = f"node {snap.current_node} ({snap.current_class})" if snap.current_node else ""
        if snap.steps:
            detail += f" {snap.step}/{snap.steps}"
        line.update(snap.fraction, detail, node=snap.current_node)

    with ComfyClient(args.node) as client:
        client.system_stats()  # fail fast with "no ComfyUI answered at ..."
        try:
            result = client.run(graph, on_message=on_message)
        except BaseException:
            line.done("failed")
            raise
        line.done(f"done on {client.url}")
        args.out.mkdir(parents=True, exist_ok=True)
        for file in result.outputs:
            if file.type != "output":
                continue
            target = args.out / Path(file.filename).name
            target.write_bytes(client.view(file))
            print(target)
    return 0
