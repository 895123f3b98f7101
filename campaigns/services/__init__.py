"""Batch jobs' write paths, by step: ``spec`` (validate a request), ``plan`` (resolve the
audience), ``jobs`` (create, start, cancel, resume; the guarantees are in its docstring) and
``runner`` (run one chunk, finish the job); ``audiences`` (saved audiences, topic
subscriptions) and ``broadcasts`` (a template to an audience, scheduled, via a job)."""

from .audiences import (
    audience_members_from_csv,
    audience_members_replace,
    audience_save,
    audience_validate,
    topic_subscribe,
    topic_unsubscribe,
)
from .broadcasts import (
    broadcast_cancel,
    broadcast_create,
    broadcast_get,
    broadcast_start,
    broadcasts_cancel_by_key,
    broadcasts_start_due,
)
from .jobs import (
    FINISHED,
    batch_cancel,
    batch_create,
    batch_get,
    batch_resume,
    batch_start,
    batches_resume_stalled,
)
from .plan import BatchPlan, batch_inviter, batch_plan
from .runner import batch_chunk_run, batch_finish_if_done, batch_run_inline
from .spec import CLEANUP_STEPS, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, BatchSpec, batch_validate

__all__ = [
    "audience_members_from_csv",
    "audience_members_replace",
    "audience_save",
    "audience_validate",
    "broadcast_cancel",
    "broadcast_create",
    "broadcast_get",
    "broadcast_start",
    "broadcasts_cancel_by_key",
    "broadcasts_start_due",
    "topic_subscribe",
    "topic_unsubscribe",
    "CLEANUP_STEPS",
    "DEFAULT_CHUNK_SIZE",
    "FINISHED",
    "MAX_CHUNK_SIZE",
    "BatchPlan",
    "BatchSpec",
    "batch_cancel",
    "batch_chunk_run",
    "batch_create",
    "batch_finish_if_done",
    "batch_get",
    "batch_inviter",
    "batch_plan",
    "batch_resume",
    "batch_run_inline",
    "batch_start",
    "batch_validate",
    "batches_resume_stalled",
]
