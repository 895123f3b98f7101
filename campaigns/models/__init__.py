"""campaigns' tables, one module per job: batch jobs here; workflows and audiences beside."""

from campaigns.models.batch import (
    BatchChunk,
    BatchJobStatus,
    BatchJobType,
    ChunkStatus,
    NotificationBatchJob,
)
from campaigns.models.workflows import (
    RunState,
    StepState,
    Workflow,
    WorkflowDigest,
    WorkflowRun,
    WorkflowRunStep,
    WorkflowTriggerRequest,
    WorkflowVersion,
)

__all__ = [
    "BatchChunk",
    "BatchJobStatus",
    "BatchJobType",
    "ChunkStatus",
    "NotificationBatchJob",
    "RunState",
    "StepState",
    "Workflow",
    "WorkflowDigest",
    "WorkflowRun",
    "WorkflowRunStep",
    "WorkflowTriggerRequest",
    "WorkflowVersion",
]
