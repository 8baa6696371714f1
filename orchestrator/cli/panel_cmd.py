"""``comfy-orch panel --api URL --token T [--port 8501]``: the control panel on loopback.

It runs ``streamlit run ui/app.py`` as a child process bound to 127.0.0.1, pointed at a
running service (here or on another machine). The token goes to the panel in the
``COMFY_ORCH_TOKEN`` environment variable, never on its command line, where any local
user could read it in the process list. Ctrl-C stops the panel.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path
from types import FrameType
from typing import Any

from orchestrator.errors import ConfigError
from orchestrator.provision.lifeline import tied_to_parent
from orchestrator.settings import DEFAULT_HOST, DEFAULT_PORT, MAX_UPLOAD_BYTES

DEFAULT_PANEL_PORT = 8501  # Streamlit's own default
PANEL_HOST = "127.0.0.1"  # the panel holds a token: exposing it is not a default
ENV_API, ENV_TOKEN = "COMFY_ORCH_API", "COMFY_ORCH_TOKEN"
STOP_TIMEOUT_S = 10.0


def register(commands: Any) -> None:
    cmd = commands.add_parser("panel", help="open the control panel (Streamlit) for a "
                                            "running service")
    cmd.add_argument("--api", default=None, metavar="URL",
                     help=f"the service (default ${ENV_API} or "
                          f"http://{DEFAULT_HOST}:{DEFAULT_PORT})")
    cmd.add_argument("--token", default=None,
                     help=f"a token from 'comfy-orch token create' (default ${ENV_TOKEN})")
    cmd.add_argument("--port", type=int, default=DEFAULT_PANEL_PORT,
                     help=f"panel port on {PANEL_HOST} (default {DEFAULT_PANEL_PORT})")
    cmd.set_defaults(handler=run_panel)


def app_path() -> Path:
    """``ui/app.py`` of the installed panel; ``ConfigError`` when the panel is missing."""
    spec = find_spec("ui")
    if spec is None or spec.origin is None:
        raise ConfigError("the control panel (package 'ui') is not installed; reinstall "
                          "comfy-orchestrator")
    return Path(spec.origin).parent / "app.py"


def panel_argv(api_url: str, *, port: int) -> list[str]:
    """The command that serves the panel on ``PANEL_HOST:port`` for the service at
    ``api_url`` (the token is passed in the environment, see the module docstring)."""
    return [sys.executable, "-m", "streamlit", "run", str(app_path()),
            "--server.address", PANEL_HOST, "--server.port", str(port),
            "--server.headless", "true", "--browser.gatherUsageStats", "false",
            "--server.fileWatcherType", "none", "--client.toolbarMode", "minimal",
            # uploads the service would refuse (20 MB) are refused in the browser already
            "--server.maxUploadSize", str(MAX_UPLOAD_BYTES // 2**20),
            "--", "--api", api_url]


def run_panel(args: argparse.Namespace) -> int:
    api = args.api or os.environ.get(ENV_API) or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"
    token = args.token or os.environ.get(ENV_TOKEN, "")
    print(f"panel: http://{PANEL_HOST}:{args.port} for the service at {api} "
          "(Ctrl-C stops it)", flush=True)
    env = {**os.environ, ENV_API: api, ENV_TOKEN: token}
    signal.signal(signal.SIGTERM, _interrupt)
    process = subprocess.Popen(tied_to_parent(panel_argv(api, port=args.port),
                                              on_death=signal.SIGTERM),
                               env=env, stdin=subprocess.DEVNULL)
    try:
        return process.wait()
    except KeyboardInterrupt:
        return _stop(process)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM stops the panel as Ctrl-C does; by default it would end this process alone
    # and leave Streamlit holding its port.
    raise KeyboardInterrupt


def _stop(process: subprocess.Popen[bytes]) -> int:
    # Ctrl-C may have reached the panel too (same process group); SIGTERM did not.
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    return 0
