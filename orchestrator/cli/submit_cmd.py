"""``comfy-orch submit``: run a workflow through the pool and write its outputs to a folder.

``NAME_OR_FILE`` is a workflow name in ``--dir`` or a path to a workflow file (its folder
then serves as the registry, so a ``NAME.meta.json`` beside it is honoured). One
progress line per image; Ctrl-C cancels the job cleanly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from orchestrator.comfy.client import ComfyClient
from orchestrator.console import ProgressLine
from orchestrator.errors import ConfigError, NodeError, WorkflowError
from orchestrator.events import Finished, ItemFailed, OutputEvent, ProgressEvent, Snapshot
from orchestrator.jobs import MAX_COUNT, Job, JobStatus
from orchestrator.outputs import OutputRecord
from orchestrator.provision.install import default_home
from orchestrator.registry import read_workflow
from orchestrator.service import JobHandle, Orchestrator

DEFAULT_WORKFLOWS_DIR = Path("workflows")
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
# Item error codes that mean the request itself was wrong, not the run.
BAD_INPUT_CODES = frozenset({"invalid_workflow", "invalid_values", "no_capable_node"})


def register(commands: Any) -> None:
    cmd = commands.add_parser("submit", help="run a workflow on the node pool and save outputs")
    cmd.add_argument("workflow", metavar="NAME_OR_FILE",
                     help="a workflow name in --dir, or an API-format workflow file")
    cmd.add_argument("--node", action="append", required=True, metavar="URL",
                     help="ComfyUI server address, e.g. http://127.0.0.1:8188 (repeatable)")
    cmd.add_argument("--set", dest="values", action="append", default=[], type=_pair,
                     metavar="KEY=VALUE", help="a placeholder value (repeatable)")
    cmd.add_argument("--image", dest="images", action="append", default=[], type=_pair,
                     metavar="KEY=PATH", help="an image placeholder's file (repeatable)")
    cmd.add_argument("--count", type=int, default=1, metavar="N",
                     help=f"images, each with its own seed (1-{MAX_COUNT})")
    cmd.add_argument("--out", type=Path, default=Path("."), metavar="DIR",
                     help="folder for the outputs, named NAME-JOB-INDEX (default: current "
                          "folder)")
    cmd.add_argument("--force", action="store_true",
                     help="overwrite files in --out that have the same name")
    cmd.add_argument("--dir", type=Path, default=DEFAULT_WORKFLOWS_DIR, metavar="D",
                     help="workflows folder for names (default: ./workflows)")
    cmd.add_argument("--data", type=Path, default=None, metavar="DIR",
                     help="job database and outputs (default: in $COMFY_ORCH_HOME)")
    cmd.set_defaults(handler=run_submit)


def _pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value


def resolve_target(name_or_file: str, folder: Path) -> tuple[Path, str]:
    """(workflows folder, workflow name) for a registry name or a file path."""
    path = Path(name_or_file)
    if path.suffix == ".json" or path.exists():
        if not path.is_file():
            raise WorkflowError(f"{name_or_file}: no such file; give the path of an "
                                f"API-format workflow file, or a workflow name in {folder}")
        return path.resolve().parent, path.name.removesuffix(".json")
    return folder, name_or_file


def check_count(count: int) -> int:
    """``count`` when it is one the service accepts; ``ConfigError`` otherwise."""
    if not 1 <= count <= MAX_COUNT:
        raise ConfigError(f"--count {count}: give 1 to {MAX_COUNT} images per job")
    return count


def run_submit(args: argparse.Namespace) -> int:
    check_count(args.count)
    folder, name = resolve_target(args.workflow, args.dir)
    read_workflow(folder / f"{name}.json")  # a broken file is named before any node is asked
    images = {key: Path(path) for key, path in args.images}
    data = args.data or default_home() / "data"
    _require_a_live_node(args.node)
    with Orchestrator(data_dir=data, workflows_dir=folder, nodes=args.node,
                      watch_workflows=False) as orch:
        handle = orch.submit(name, dict(args.values), count=args.count, images=images)
        try:
            job = _follow(handle, name)
        except KeyboardInterrupt:
            orch.cancel(handle.id)
            job = orch.wait(handle.id, timeout=30)
            print(f"job {job.id} {job.status.value}", file=sys.stderr)
            return EXIT_INTERRUPTED
        return _finish(orch, job, args.out, force=args.force)


def _require_a_live_node(urls: list[str]) -> None:
    """Fail fast with the first node's own error when none of them answers."""
    failures: list[NodeError] = []
    for url in urls:
        try:
            with ComfyClient(url) as client:
                client.system_stats()
            return
        except NodeError as exc:
            failures.append(exc)
    raise failures[0]


def _follow(handle: JobHandle, label: str) -> Job:
    lines: dict[int, ProgressLine] = {}
    count = len(handle.get().items)

    def line(index: int) -> ProgressLine:
        if index not in lines:
            # One redrawn bar on a terminal for a single image; plain lines for several.
            lines[index] = ProgressLine(f"{label} {index + 1}/{count}",
                                        tty=None if count == 1 else False)
        return lines[index]

    with handle.events() as sub:
        for event in sub:
            if isinstance(event, ProgressEvent):
                what = f"{event.class_type or ''} {event.value}/{event.max}" if event.max else (
                    event.class_type or "")
                line(event.item).update(event.item_fraction, f"on {event.node}: {what}",
                                        node=event.node_id)
            elif isinstance(event, OutputEvent):
                line(event.item).done(f"done ({event.filename})")
            elif isinstance(event, ItemFailed):
                # a final failure's message is printed once, by _finish
                line(event.item).done(f"failed: {event.message} — retrying on another node"
                                      if event.will_retry else "failed")
            elif isinstance(event, Finished | Snapshot) and _is_terminal(event):
                break
    return handle.wait(timeout=30)


def _is_terminal(event: Finished | Snapshot) -> bool:
    return isinstance(event, Finished) or JobStatus(event.status).terminal


def output_name(record: OutputRecord) -> str:
    """``NAME-JOB-INDEX.ext``: outputs of different jobs and images never share a name."""
    path = Path(record.filename)
    return f"{path.stem}-{record.job_id}-{record.index + 1}{path.suffix}"


def _finish(orch: Orchestrator, job: Job, out: Path, *, force: bool = False) -> int:
    out.mkdir(parents=True, exist_ok=True)
    kept = []
    for record in orch.outputs_of(job.id):
        target = out / output_name(record)
        if target.exists() and not force:
            kept.append(target)
            continue
        target.write_bytes(orch.output_bytes(record.id))
        print(target)
        seed = "as in the graph" if record.seed is None else str(record.seed)
        print(f"image {record.index + 1}: seed {seed} → {target}", file=sys.stderr)
    if kept:
        raise ConfigError(f"{', '.join(map(str, kept))} already exist(s), not overwritten; "
                          "pass --force to overwrite, or another --out folder")
    if job.status == JobStatus.SUCCEEDED:
        return EXIT_OK
    errors = [i.error for i in job.items if i.error is not None]
    for error in {e.message for e in errors}:
        print(f"error: {error}", file=sys.stderr)
    if errors and all(e.code in BAD_INPUT_CODES for e in errors):
        return EXIT_BAD_INPUT
    return EXIT_FAILED
