"""``comfy-orch comfyui install|start``: a local CPU ComfyUI from the cache."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from importlib import metadata
from pathlib import Path
from types import FrameType
from typing import Any

from orchestrator.errors import ProvisionError
from orchestrator.provision.install import default_home, ensure_installed, installed_versions
from orchestrator.provision.releases import DEFAULT_VERSION, SUPPORTED_VERSIONS
from orchestrator.provision.server import LocalComfy, prepare_base_dir

DEFAULT_PORT = 8188


def register(commands: Any) -> None:
    group = commands.add_parser("comfyui", help="install or start a local CPU ComfyUI")
    sub = group.add_subparsers(dest="comfyui_command", required=True, metavar="ACTION")

    install = sub.add_parser("install", help="provision ComfyUI into the cache (idempotent)")
    _version_option(install)
    install.add_argument("--all", action="store_true",
                         help="every supported release, newest first (what CI does)")
    install.add_argument("--home", type=Path, default=None, help="cache folder (default "
                         "$COMFY_ORCH_HOME or ~/.cache/comfy-orchestrator)")
    install.set_defaults(handler=run_install)

    start = sub.add_parser("start", help="start the cached ComfyUI in the foreground")
    start.add_argument("--host", default="127.0.0.1", help="address to listen on "
                       "(default 127.0.0.1)")
    start.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"port to listen on (default {DEFAULT_PORT})")
    start.add_argument("--base-dir", type=Path, default=None,
                       help="ComfyUI's models/input/output folders (default: in the cache)")
    start.add_argument("--custom-nodes", type=Path, action="append", default=[],
                       metavar="PATH", help="a custom node folder to link in (repeatable)")
    start.add_argument("--checkpoint", choices=["tiny"], default=None,
                       help="generate the random-weight SD1.5 test checkpoint into models/")
    _version_option(start)
    start.add_argument("--home", type=Path, default=None, help="cache folder (default "
                       "$COMFY_ORCH_HOME or ~/.cache/comfy-orchestrator)")
    start.set_defaults(handler=run_start)


def version_report(home: Path) -> str:
    """What ``comfy-orch --version`` prints: ours, and the ComfyUI releases installed here."""
    try:
        ours = metadata.version("comfy-orchestrator")
    except metadata.PackageNotFoundError:
        ours = "(not installed as a package)"
    found = installed_versions(home)
    comfy = ", ".join(found) if found else "none (comfy-orch comfyui install)"
    return (f"comfy-orch {ours}\n"
            f"ComfyUI installed in {home}: {comfy}\n"
            f"ComfyUI supported: {', '.join(SUPPORTED_VERSIONS)}")


class VersionAction(argparse.Action):
    """``--version``: the report above, printed as is (argparse's own action reflows it)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the orchestrator's and the installed ComfyUI versions")

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> None:
        print(version_report(default_home()))
        parser.exit()


def _version_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", choices=SUPPORTED_VERSIONS, default=DEFAULT_VERSION,
                        help=f"ComfyUI release (default {DEFAULT_VERSION})")


def run_install(args: argparse.Namespace) -> int:
    """Install one release, or with ``--all`` each one, going on past a failed one so the
    report names every release that failed."""
    home = args.home or default_home()
    failed = []
    for version in SUPPORTED_VERSIONS if args.all else (args.version,):
        try:
            inst = ensure_installed(home, version,
                                    progress=lambda line: print(line, flush=True))
        except ProvisionError as exc:
            if not args.all:
                raise
            print(f"error: ComfyUI {version}: {exc}", file=sys.stderr, flush=True)
            failed.append(version)
            continue
        print(f"ComfyUI {inst.version} ready: {inst.root}", flush=True)
    if failed:
        print(f"error: not installed: {', '.join(failed)}", file=sys.stderr)
        return 2
    return 0


def run_start(args: argparse.Namespace) -> int:
    home = args.home or default_home()
    inst = ensure_installed(home, args.version, progress=lambda line: print(line, flush=True))
    base = prepare_base_dir(inst, args.base_dir or home / "base", args.custom_nodes)
    if args.checkpoint == "tiny":
        print(f"checkpoint: {ensure_tiny_checkpoint(base)}", flush=True)
    server = LocalComfy(inst, base, host=args.host, port=args.port)
    print(f"starting ComfyUI on {server.url} (base dir {base}) ...", flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with server:
        print(f"ComfyUI is ready at {server.url} (pid {server.pid}); Ctrl-C stops it",
              flush=True)
        while not stop.wait(0.5):
            if server.process is not None and server.process.poll() is not None:
                print(f"ComfyUI exited (code {server.process.returncode}); log tail:\n"
                      f"{server.log_tail()}", file=sys.stderr)
                return 2
    print("ComfyUI stopped", flush=True)
    return 0


def ensure_tiny_checkpoint(base: Path) -> Path:
    """Write the random-weight SD1.5 checkpoint into ``base/models/checkpoints`` once."""
    from orchestrator.provision.checkpoint import TINY_CHECKPOINT_NAME, write_tiny_checkpoint

    path = base / "models" / "checkpoints" / TINY_CHECKPOINT_NAME
    if not path.exists():
        write_tiny_checkpoint(path, seed=0)
    return path
