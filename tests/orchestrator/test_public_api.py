"""The names `from orchestrator import ...` offers are a promise: pin them."""

import json
from pathlib import Path

import pytest

import orchestrator
from orchestrator.provision.install import (
    ComfyInstall,
    find_install,
    install_location,
    newest_install,
)
from orchestrator.provision.releases import DEFAULT_VERSION
from orchestrator.provision.server import prepare_base_dir
from orchestrator.registry import read_workflow
from orchestrator.tokens import Principal
from tests import graphs

ANYONE = Principal(owner="me", admin=False, token_id="")


def test_public_api_is_pinned() -> None:
    assert sorted(orchestrator.__all__) == [
        "AccessDenied", "ConfigError", "GraphRejected", "ItemStatus", "Job", "JobCancelled",
        "JobError", "JobFailed", "JobHandle", "JobNotFound", "JobSpec", "JobStatus", "NodeError",
        "NodeTimeout", "NodeUnreachable", "NotFound", "Orchestrator", "OrchestratorError",
        "StoreError", "SubstitutionError", "Visibility", "WorkflowError", "WorkflowFormatError",
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
        assert orch.workflow(ANYONE, "solid").name == "solid"
    assert (tmp_path / "data").is_dir()
    assert read_workflow("workflows/solid.json").name == "solid"


def test_provisioning_takes_text_paths_too(comfy_install: ComfyInstall, tmp_path: Path) -> None:
    home = str(tmp_path / "home")
    assert install_location(home).root == Path(home) / f"comfyui-{DEFAULT_VERSION}"
    assert find_install(home) is None and newest_install(home) is None
    base = prepare_base_dir(comfy_install, str(tmp_path / "base"),
                            [str(Path(__file__).parents[1] / "comfy_nodes")])
    assert (base / "custom_nodes" / "comfy_nodes").is_symlink()
