"""The names `from orchestrator import ...` offers are a promise: pin them."""

import json
from pathlib import Path

import pytest

import orchestrator
from orchestrator.registry import read_workflow
from tests import graphs


def test_public_api_is_pinned() -> None:
    assert sorted(orchestrator.__all__) == [
        "AccessDenied", "ConfigError", "GraphRejected", "ItemStatus", "Job", "JobCancelled",
        "JobError", "JobFailed", "JobHandle", "JobNotFound", "JobSpec", "JobStatus", "NodeError",
        "NodeTimeout", "NodeUnreachable", "Orchestrator", "OrchestratorError", "StoreError",
        "SubstitutionError", "Visibility", "WorkflowError", "WorkflowFormatError",
        "WorkflowNotFound",
    ]
    for name in orchestrator.__all__:
        assert getattr(orchestrator, name) is not None


def test_paths_may_be_given_as_text(comfy_url: str, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``Orchestrator(data_dir="data")`` once failed with ``'str' object has no attribute
    'mkdir'``: every path the API takes is ``str | os.PathLike``."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "workflows").mkdir()
    (tmp_path / "workflows" / "solid.json").write_text(json.dumps(graphs.solid_image(8, 8)))
    with orchestrator.Orchestrator(data_dir="data", workflows_dir="workflows",
                                   nodes=[comfy_url]) as orch:
        job = orch.submit("solid")
        assert job.wait(timeout=120).status == orchestrator.JobStatus.SUCCEEDED
        assert orch.output_bytes(job.outputs()[0].id).startswith(b"\x89PNG")
        assert orch.registry is not None and orch.registry.get("solid").name == "solid"
    assert (tmp_path / "data").is_dir()
    assert read_workflow("workflows/solid.json").name == "solid"
