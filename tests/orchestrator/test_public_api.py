"""The names `from orchestrator import ...` offers are a promise: pin them."""

import orchestrator


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
