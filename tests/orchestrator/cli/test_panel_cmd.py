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
