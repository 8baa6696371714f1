"""``comfy-orch panel``: Streamlit on loopback, pointed at the service, token kept off argv."""

from __future__ import annotations

from pathlib import Path

from orchestrator.cli.app import build_parser
from orchestrator.cli.panel_cmd import DEFAULT_PANEL_PORT, app_path, panel_argv

REPO = Path(__file__).resolve().parents[3]


def test_the_panel_runs_the_installed_app_on_loopback() -> None:
    argv = panel_argv("http://10.0.0.5:8288", port=8600)
    assert argv[1:4] == ["-m", "streamlit", "run"]
    assert Path(argv[4]) == app_path() == REPO / "ui" / "app.py"
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert argv[argv.index("--server.port") + 1] == "8600"
    assert argv[-3:] == ["--", "--api", "http://10.0.0.5:8288"]


def test_the_command_is_registered_with_its_flags() -> None:
    args = build_parser().parse_args(["panel", "--api", "http://h:1", "--token", "t"])
    assert (args.api, args.token, args.port) == ("http://h:1", "t", DEFAULT_PANEL_PORT)


def test_every_option_of_every_command_has_help() -> None:
    """``--help`` explains every flag: no entry is left blank."""
    import argparse

    blank: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}")
                blank.extend(f"{path} {c.dest}" for c in action._choices_actions if not c.help)
            elif not action.help:
                blank.append(f"{path} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "comfy-orch")
    assert blank == []


def test_sigterm_stops_streamlit_too(tmp_path: Path) -> None:
    """A service manager stops the panel with SIGTERM: its Streamlit child must go too."""
    import os
    import signal
    import subprocess
    import sys

    import requests

    from orchestrator.provision.server import free_port
    from tests.helpers import wait_until

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "orchestrator", "panel", "--api",
                             "http://127.0.0.1:9", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def healthy() -> bool:
            try:
                return requests.get(f"http://127.0.0.1:{port}/_stcore/health",
                                    timeout=2).ok
            except requests.ConnectionError:
                return False

        wait_until(healthy, 60, "the panel to answer")
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert len(children) == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        wait_until(lambda: not Path(f"/proc/{children[0]}").exists(), 10,
                   "streamlit to stop with the panel")
        assert not healthy()
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
