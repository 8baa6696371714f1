"""Settings: flags over environment over named defaults, and errors that name the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import settings as config
from orchestrator.errors import ConfigError
from orchestrator.settings import Settings, load_settings


def test_defaults_are_the_named_constants() -> None:
    loaded = load_settings({"XDG_DATA_HOME": "/srv/data"})
    assert (loaded.host, loaded.port) == (config.DEFAULT_HOST, config.DEFAULT_PORT)
    assert loaded.data_dir == Path("/srv/data/comfy-orchestrator")
    assert loaded.workflows_folder == Path("/srv/data/comfy-orchestrator/workflows")
    assert loaded.max_queued == config.MAX_QUEUED
    assert loaded.sse_keepalive_s == config.SSE_KEEPALIVE_S


def test_the_default_data_dir_is_under_the_home_folder() -> None:
    assert load_settings({}).data_dir == Path.home() / ".local/share/comfy-orchestrator"


def test_environment_overrides_defaults_and_flags_override_environment() -> None:
    env = {"COMFY_ORCH_PORT": "9000", "COMFY_ORCH_HOST": "0.0.0.0",
           "COMFY_ORCH_NODES": "http://a:8188,http://b:8188"}
    loaded = load_settings(env, port=9100, host=None)
    assert loaded.port == 9100 and loaded.host == "0.0.0.0"
    assert loaded.nodes == ("http://a:8188", "http://b:8188")


def test_flags_given_as_empty_lists_do_not_hide_the_environment() -> None:
    loaded = load_settings({"COMFY_ORCH_NODES": "http://a:8188"}, nodes=())
    assert loaded.nodes == ("http://a:8188",)


def test_a_bad_value_names_the_setting_and_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"setting port = 'many'.*COMFY_ORCH_PORT"):
        load_settings({"COMFY_ORCH_PORT": "many"})


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="portt"):
        load_settings({}, portt=1)


def test_a_multipart_body_may_carry_every_upload() -> None:
    limits = Settings(max_body_bytes=2048, max_upload_bytes=4096, max_upload_files=3)
    assert limits.max_multipart_bytes == 3 * 4096 + 2048


def test_the_job_database_is_sqlite_unless_a_postgresql_url_is_given() -> None:
    assert load_settings({}).db is None
    url = "postgresql://orch@127.0.0.1:5432/orch"
    assert load_settings({"COMFY_ORCH_DB": url}).db == url
    assert load_settings({"COMFY_ORCH_DB": "postgresql://x/y"}, db=url).db == url
    with pytest.raises(ConfigError, match="COMFY_ORCH_DB"):
        load_settings({"COMFY_ORCH_DB": "mysql://orch@db/orch"})
