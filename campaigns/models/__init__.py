"""campaigns' tables, one module per job: batch jobs, audiences and broadcasts here;
workflows beside."""

from campaigns.models.audiences import (
    VALUED_KINDS,
    Audience,
    AudienceKind,
    AudienceMember,
    TopicSubscription,
)
from campaigns.models.batch import (
    BatchChunk,
    BatchJobStatus,
    BatchJobType,
    ChunkStatus,
    NotificationBatchJob,
)
from campaigns.models.broadcasts import Broadcast, BroadcastStatus
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
    "VALUED_KINDS",
    "Audience",
    "AudienceKind",
    "AudienceMember",
    "BatchChunk",
    "BatchJobStatus",
    "BatchJobType",
    "Broadcast",
    "BroadcastStatus",
    "ChunkStatus",
    "NotificationBatchJob",
    "TopicSubscription",
    "RunState",
    "StepState",
    "Workflow",
    "WorkflowDigest",
    "WorkflowRun",
    "WorkflowRunStep",
    "WorkflowTriggerRequest",
    "WorkflowVersion",
]
