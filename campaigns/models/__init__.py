"""campaigns' tables, one module per job: batch jobs here; workflows and audiences beside."""

from campaigns.models.batch import (
    BatchChunk,
    BatchJobStatus,
    BatchJobType,
    ChunkStatus,
    NotificationBatchJob,
)

__all__ = [
    "BatchChunk",
    "BatchJobStatus",
    "BatchJobType",
    "ChunkStatus",
    "NotificationBatchJob",
]
