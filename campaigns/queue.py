"""Handing a chunk to the ``batch`` queue, by the task's name.

The runner both is called by the task and re-enqueues chunks (retries, resumes); sending by
name keeps ``tasks`` → ``services`` one-way. ``send_task`` applies the same
``CELERY_TASK_ROUTES`` as ``.delay()``."""

from __future__ import annotations

from notifyplatform.celery import app

# The names from before the app moved (queued messages and beat's schedule use them).
RUN_CHUNK_TASK = "deliveries.run_batch_chunk"
RESUME_STALLED_TASK = "deliveries.resume_stalled_batches"
START_BROADCASTS_TASK = "campaigns.start_due_broadcasts"


def chunk_enqueue(chunk_id: int, *, countdown: float | None = None) -> None:
    """Queue one run of the chunk (after ``countdown`` seconds, if given)."""
    app.send_task(RUN_CHUNK_TASK, args=(chunk_id,), countdown=countdown)
