"""Where the panel finds the service and its token when it starts (pure)."""

from __future__ import annotations

from ui.state import DEFAULT_API_URL, Connection, connection_defaults


def test_script_arguments_win_over_the_environment() -> None:
    found = connection_defaults(["--api", "http://a:1", "--token", "t1"],
                                {"COMFY_ORCH_API": "http://b:2", "COMFY_ORCH_TOKEN": "t2"})
    assert found == Connection("http://a:1", "t1")


def test_the_environment_is_used_when_no_argument_is_given() -> None:
    found = connection_defaults([], {"COMFY_ORCH_API": "http://b:2", "COMFY_ORCH_TOKEN": "t2"})
    assert found == Connection("http://b:2", "t2")


def test_without_either_the_local_service_and_no_token() -> None:
    assert connection_defaults(["--other"], {}) == Connection(DEFAULT_API_URL, "")
