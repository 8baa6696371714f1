"""What a node speaks: version rules (pure) and detection against a real ComfyUI."""

from __future__ import annotations

import uuid

import pytest

from orchestrator.comfy.client import ComfyClient
from orchestrator.comfy.features import (
    JOB_CANCEL,
    JOBS_API,
    NodeFeatures,
    is_canonical_uuid,
    parse_version,
)
from orchestrator.errors import PromptIdRejected
from tests import graphs


def test_versions_read_as_number_tuples_and_builds_without_one_as_none() -> None:
    assert parse_version("0.30.0") == (0, 30, 0)
    assert parse_version("v0.3.75") == (0, 3, 75)
    assert parse_version("0.16") == (0, 16)
    assert parse_version("unknown") is None and parse_version(None) is None
    assert parse_version("0.3.75") < parse_version("0.16.3") < parse_version("0.30.0")  # type: ignore[operator]


def test_only_the_canonical_spelling_of_a_uuid_is_canonical() -> None:
    text = str(uuid.uuid4())
    assert is_canonical_uuid(text)
    assert not is_canonical_uuid(text.upper())
    assert not is_canonical_uuid(text.replace("-", ""))
    assert not is_canonical_uuid("{" + text + "}")
    assert not is_canonical_uuid("item-1-1") and not is_canonical_uuid(7)


def test_uuid_rule_follows_the_version_or_else_the_cancel_route() -> None:
    assert NodeFeatures(version="0.26.0").uuid_prompt_ids
    assert not NodeFeatures(version="0.16.3", jobs_api=True).uuid_prompt_ids
    assert not NodeFeatures(version="0.3.75").uuid_prompt_ids
    assert NodeFeatures(version=None, jobs_api=True, job_cancel=True).uuid_prompt_ids
    assert not NodeFeatures(version="dev", jobs_api=True).uuid_prompt_ids


def test_a_problem_is_worded_with_the_release_and_what_to_send() -> None:
    problem = NodeFeatures(version="0.30.0").prompt_id_problem("job-7")
    assert problem is not None and "ComfyUI 0.30.0" in problem and "UUID" in problem
    assert NodeFeatures(version="0.3.75").prompt_id_problem("job-7") is None
    assert NodeFeatures(version="0.3.75").prompt_id_problem("") is not None


@pytest.fixture()
def client(comfy_url: str) -> ComfyClient:
    return ComfyClient(comfy_url)


@pytest.mark.every_comfyui
def test_detected_features_match_what_the_release_ships(client: ComfyClient) -> None:
    stats = client.system_stats()
    features = client.detect_features(stats)
    version = parse_version(features.version)
    assert features.version == stats["system"]["comfyui_version"] and version is not None
    assert features.jobs_api == (version >= JOBS_API)
    assert features.job_cancel == (version >= JOB_CANCEL)
    assert isinstance(features.flags, dict)
    assert client.features is features  # kept: later calls ask nothing again


@pytest.mark.every_comfyui
def test_submit_refuses_an_id_the_release_would_refuse_without_sending_it(
    client: ComfyClient,
) -> None:
    prompt_id = f"job-{uuid.uuid4().hex}"
    graph = graphs.solid_image(seed=uuid.uuid4().int % 10**9)
    if client.features.uuid_prompt_ids:
        with pytest.raises(PromptIdRejected, match="canonical lowercase UUID") as info:
            client.submit(graph, prompt_id=prompt_id)
        assert info.value.prompt_id == prompt_id and info.value.code == "invalid_prompt_id"
        assert not client.lookup(prompt_id).known  # nothing reached the node
    else:  # releases before 0.26 take any string
        assert client.run(graph, prompt_id=prompt_id).prompt_id == prompt_id


@pytest.mark.every_comfyui
def test_comfyuis_own_refusal_of_an_id_is_the_same_error(client: ComfyClient) -> None:
    """Speaking to a 0.26+ node as to an older one: ComfyUI's 400 invalid_prompt_id
    becomes PromptIdRejected too, never a generic rejection of the graph."""
    if not client.features.uuid_prompt_ids:
        assert NodeFeatures(version=client.features.version).prompt_id_problem("x") is None
        return
    client.features = NodeFeatures(version="0.3.75")
    with pytest.raises(PromptIdRejected, match="canonical lowercase hyphenated form"):
        client.submit(graphs.solid_image(seed=3), prompt_id=f"job-{uuid.uuid4().hex}")
