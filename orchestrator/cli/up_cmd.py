"""``comfy-orch up``: the main job — service, panel and (when needed) a local ComfyUI.

On a fresh machine this is the one command that ends with an image in a browser: when no
configured ComfyUI node answers, it installs ComfyUI into the cache (with progress) and
starts a managed CPU instance with the generated test checkpoint; it starts the REST
service and the Streamlit panel on loopback; on first run it creates an admin token and
keeps it in the data folder (mode 0600) so later runs open the panel signed in. Ctrl-C
stops everything it started.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from orchestrator.cli.comfyui_cmd import ensure_tiny_checkpoint
from orchestrator.comfy.client import ComfyClient
from orchestrator.errors import ConfigError, NodeError
from orchestrator.provision.checkpoint import TINY_CHECKPOINT_NAME
from orchestrator.provision.install import default_home, ensure_installed, newest_install
from orchestrator.provision.lifeline import tied_to_parent
from orchestrator.provision.server import LocalComfy, free_port, prepare_base_dir
from orchestrator.settings import Settings, load_settings
from orchestrator.tokens import TokenStore
from orchestrator.web.app import create_app
from orchestrator.web.server import ServerThread, service

ADMIN_TOKEN_FILE = "admin-token"  # in the data folder, mode 0600
DEFAULT_PANEL_PORT = 8501
SHIPPED_WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
SHIPPED_SUFFIXES = frozenset({".json", ".png", ".jpg", ".jpeg", ".webp"})
MANAGED_NOTE = (
    "note: the managed ComfyUI runs on this CPU with a random-weight test checkpoint "
    f"({TINY_CHECKPOINT_NAME}): its images are noise, by design, and small sizes finish in "
    "seconds. For real images start with --node http://GPU-BOX:8188 (repeatable), or add "
    "nodes on the panel's Nodes page.")


def register(commands: Any) -> None:
    cmd = commands.add_parser("up", help="start the service and the panel (and a local "
                                         "ComfyUI when no node answers); Ctrl-C stops all")
    cmd.add_argument("--host", default=None, help="address of the service (default 127.0.0.1)")
    cmd.add_argument("--port", type=int, default=None, help="service port (default 8288)")
    cmd.add_argument("--panel-port", type=int, default=DEFAULT_PANEL_PORT,
                     help=f"panel port on 127.0.0.1 (default {DEFAULT_PANEL_PORT}; 0 picks a "
                          "free one)")
    cmd.add_argument("--data", type=Path, default=None, metavar="DIR",
                     help="folder for jobs, outputs and tokens (default $COMFY_ORCH_DATA_DIR "
                          "or ~/.local/share/comfy-orchestrator)")
    cmd.add_argument("--workflows", type=Path, default=None, metavar="DIR",
                     help="workflows folder, where the panel saves dropped workflows "
                          "(default DATA/workflows, first filled with the shipped ones)")
    cmd.add_argument("--node", action="append", default=[], metavar="URL",
                     help="a ComfyUI server (repeatable); none answering → a local one")
    cmd.add_argument("--comfyui-port", type=int, default=None, metavar="PORT",
                     help="port of the managed local ComfyUI, when one is started (default: "
                          "a free one)")
    cmd.add_argument("--no-panel", action="store_true", help="serve the API only")
    cmd.set_defaults(handler=run_up)


def run_up(args: argparse.Namespace) -> int:
    settings = load_settings(os.environ, host=args.host, port=args.port, data_dir=args.data,
                             workflows_dir=args.workflows, nodes=tuple(args.node))
    if args.workflows is None and settings.workflows_dir is None:
        seed_workflows(settings.workflows_folder)
    stop = _stop_on_signals()
    with contextlib.ExitStack() as stack:
        settings, managed = _with_live_nodes(settings, stack, comfyui_port=args.comfyui_port)
        orch, tokens = stack.enter_context(service(settings))
        token = admin_token(tokens, settings.data_dir)
        server = stack.enter_context(ServerThread(create_app(orch, tokens, settings),
                                                  host=settings.host, port=settings.port))
        print(f"service: {server.url} (API docs {server.url}/docs)", flush=True)
        if not args.no_panel:
            panel = stack.enter_context(Panel(server.url, token, port=args.panel_port))
            print(f"panel:   {panel.url}", flush=True)
        if managed is not None:
            print(MANAGED_NOTE, flush=True)
        print(shell_lines(server.url, settings.data_dir / ADMIN_TOKEN_FILE, settings.nodes),
              flush=True)
        print("Ctrl-C stops everything", flush=True)
        stop.wait()
    print("stopped", flush=True)
    return 0


def seed_workflows(folder: Path, shipped: Path = SHIPPED_WORKFLOWS) -> None:
    """Fill a new workflows folder with the shipped workflows (graphs, metadata, preview
    images), so the panel saves dropped files in the data folder, not in a checkout."""
    if folder.exists() or not shipped.is_dir():
        return
    folder.mkdir(parents=True)
    for path in sorted(shipped.iterdir()):
        if path.is_file() and path.suffix in SHIPPED_SUFFIXES:
            shutil.copy2(path, folder / path.name)
    print(f"workflows: {folder} (the shipped ones copied in; add yours there or on the "
          "panel's Workflows page)", flush=True)


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    return stop


def live_nodes(urls: Sequence[str]) -> list[str]:
    """The configured nodes that answer ``/system_stats`` now."""
    alive = []
    for url in urls:
        try:
            with ComfyClient(url, timeout=3) as client:
                client.system_stats()
            alive.append(url)
        except NodeError as exc:
            print(f"node {url}: {exc}", flush=True)
    return alive


def shell_lines(api_url: str, token_file: Path, nodes: Sequence[str]) -> str:
    """The lines to paste into a shell before the README's examples: the address and the
    token for curl (``TOKEN``) and for Comfy's SDK (``COMFY_BASE_URL``, ``COMFY_API_KEY``),
    and the ComfyUI nodes for ``comfy-orch submit --node``. The token is read from its
    file, so it never lands in a log or a terminal's scrollback."""
    return "\n".join([
        "paste into a shell to use the examples of README.md:",
        f"  export COMFY_BASE_URL={api_url}",
        f"  export TOKEN=$(cat {shlex.quote(str(token_file.resolve()))})",
        "  export COMFY_API_KEY=$TOKEN",
        f"  export COMFYUI_URL={nodes[0] if nodes else ''}",
    ])


def _with_live_nodes(settings: Settings, stack: contextlib.ExitStack, *,
                     comfyui_port: int | None = None) -> tuple[Settings, LocalComfy | None]:
    """``settings`` with the nodes that answer first, else a managed local ComfyUI."""
    if live_nodes(settings.nodes):
        return settings, None
    print("no ComfyUI node answers: starting a managed local CPU ComfyUI", flush=True)
    local = stack.enter_context(managed_comfy(default_home(), port=comfyui_port or 0))
    print(f"managed ComfyUI: {local.url} (pid {local.pid})", flush=True)
    return settings.model_copy(update={"nodes": (local.url, *settings.nodes)}), local


@contextlib.contextmanager
def managed_comfy(home: Path, *, port: int = 0) -> Iterator[LocalComfy]:
    """Start the newest installed ComfyUI (installing the default release first, with
    progress, when none is) on ``port`` (0: a free one); stop it on exit."""
    inst = newest_install(home) or ensure_installed(
        home, progress=lambda line: print(line, flush=True))
    base = prepare_base_dir(inst, home / "base")
    ensure_tiny_checkpoint(base)
    with LocalComfy(inst, base, port=port) as server:
        yield server


def admin_token(tokens: TokenStore, data_dir: Path) -> str:
    """The saved admin token; on first run (no token at all) create and save one."""
    path = data_dir / ADMIN_TOKEN_FILE
    if path.exists():
        token = path.read_text().strip()
        if tokens.authenticate(token) is not None:
            return token
    if tokens.list() and not path.exists():
        raise ConfigError(f"tokens exist but {path} does not; create one for the panel with "
                          "'comfy-orch token create --owner admin --admin' and write it there")
    token = tokens.create("admin", admin=True)
    path.touch(mode=0o600)
    path.write_text(token + "\n")
    print(f"created an admin token (kept in {path}):\n  {token}", flush=True)
    return token


class Panel:
    """The Streamlit panel as a child process on loopback, pointed at the service."""

    def __init__(self, api_url: str, token: str, *, port: int) -> None:
        self.api_url, self.token = api_url, token
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def argv(self) -> list[str]:
        from orchestrator.cli.panel_cmd import panel_argv

        return panel_argv(self.api_url, port=self.port)

    def __enter__(self) -> Panel:
        env = {**os.environ, "COMFY_ORCH_API": self.api_url, "COMFY_ORCH_TOKEN": self.token}
        # Its own session, so stopping it by PID takes Streamlit's children too; tied to
        # this process, so a SIGKILL of `up` does not leave it holding its port.
        self.process = subprocess.Popen(tied_to_parent(self.argv(), on_death=signal.SIGTERM),
                                        env=env, stdin=subprocess.DEVNULL,
                                        start_new_session=True)
        return self

    def __exit__(self, *exc: object) -> None:
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

