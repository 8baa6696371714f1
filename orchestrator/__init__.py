"""comfy-orchestrator: ComfyUI workflows as durable jobs on a pool of ComfyUI nodes.

```python
from pathlib import Path
from orchestrator import Orchestrator

with Orchestrator(data_dir="data", workflows_dir="workflows",
                  nodes=["http://127.0.0.1:8188"]) as orch:
    job = orch.submit("txt2img", {"prompt": "a lighthouse at dusk", "seed": -1}, count=2)
    job.wait(timeout=300)
    for output in job.outputs():  # each with its seed, values, node, size, mime
        Path(output.filename).write_bytes(orch.output_bytes(output.id))
```
"""

from orchestrator.errors import (
    AccessDenied,
    ConfigError,
    GraphRejected,
    JobCancelled,
    JobError,
    JobFailed,
    JobNotFound,
    NodeError,
    NodeTimeout,
    NodeUnreachable,
    NotFound,
    OrchestratorError,
    StoreError,
    SubstitutionError,
    WorkflowError,
    WorkflowFormatError,
    WorkflowNotFound,
)
from orchestrator.jobs import ItemStatus, Job, JobSpec, JobStatus, Visibility
from orchestrator.service import JobHandle, Orchestrator

__all__ = [
    "AccessDenied",
    "ConfigError",
    "GraphRejected",
    "ItemStatus",
    "Job",
    "JobCancelled",
    "JobError",
    "JobFailed",
    "JobHandle",
    "JobNotFound",
    "NotFound",
    "JobSpec",
    "JobStatus",
    "NodeError",
    "NodeTimeout",
    "NodeUnreachable",
    "Orchestrator",
    "OrchestratorError",
    "StoreError",
    "SubstitutionError",
    "Visibility",
    "WorkflowError",
    "WorkflowFormatError",
    "WorkflowNotFound",
]
