"""Batch jobs: validate → plan (resolve the audience) → create the job and its chunk ledger →
chunks run on Celery workers → the last chunk completes the job. Cancel, resume.

Guarantees, and how:

* **Counters stay true.** A chunk's work (invitations, notifications, deliveries), its
  ``done`` mark in the ledger and the job's counter increments (``F()`` expressions) commit
  in ONE transaction: the counters can never count work that is not there, or miss work
  that is.
* **Nobody is notified twice by a job.** A chunk is claimed with ``SELECT … FOR UPDATE SKIP
  LOCKED`` and skipped once ``done``, so a redelivered or re-enqueued chunk does nothing; a
  chunk whose worker died mid-way rolled back entirely and simply runs again. Underneath,
  every notification carries the per-job idempotency key ``batch:<job>:<recipient>``.
* **Cancel stops within a chunk.** Each chunk holds ``FOR KEY SHARE`` on the job row for
  its whole transaction and checks the status under it; cancel takes ``FOR UPDATE``, which
  waits for the chunks in flight (≈ one chunk's duration) and blocks new ones, so after
  ``batch_cancel`` returns no chunk of the job can write anything.
* **Resumable.** ``batch_resume`` (and the beat task for stalled jobs) re-enqueues the
  chunks not yet ``done``; the Redis transport's own redelivery of a dead worker's message is
  harmless too.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..errors import (
    EMPTY_AUDIENCE,
    INVALID_STATE,
    JOB_NOT_FOUND,
    BatchError,
)
from ..models import BatchChunk, BatchJobStatus, BatchJobType, NotificationBatchJob
from ..queue import chunk_enqueue
from .plan import BatchPlan, batch_inviter, batch_plan
from .runner import (
    _error_summary_json,
    _pending_chunk_ids,
    batch_finish_if_done,
)
from .spec import BatchSpec

logger = logging.getLogger(__name__)

FINISHED = (BatchJobStatus.COMPLETED, BatchJobStatus.FAILED, BatchJobStatus.CANCELLED)


# --------------------------------------------------------------------------------------------
# Create, start, cancel, resume
# --------------------------------------------------------------------------------------------


def batch_create(
    spec: BatchSpec, *, plan: BatchPlan | None = None, start: bool = True
) -> NotificationBatchJob:
    """Write the job (``pending``) and its chunk ledger in one transaction, then start it
    (``running``, chunks enqueued on commit) unless ``start=False``."""
    plan = plan or batch_plan(spec)
    sends = (BatchJobType.INVITATION_BATCH, BatchJobType.BROADCAST)
    if spec.job_type in sends and not plan.item_ids:
        raise BatchError(EMPTY_AUDIENCE, "the audience matches no active user", "audience")
    config = {**spec.config(), **({"plan": plan.notes} if plan.notes else {})}
    with transaction.atomic():
        if spec.job_type == BatchJobType.INVITATION_BATCH and not spec.inviter_id:
            config["inviter_id"] = spec.inviter_id = str(batch_inviter(spec).pk)
        job = NotificationBatchJob.objects.create(
            job_name=spec.name,
            job_type=spec.job_type,
            invitation_type=spec.invitation_type,
            status=BatchJobStatus.PENDING,
            total_notifications=plan.total,
            job_config=config,
        )
        if spec.job_type == BatchJobType.CLEANUP_BATCH:
            # one chunk per step; a step's planned count is recorded so the total can be
            # corrected to what the step actually did
            chunks = [
                BatchChunk(job=job, index=i, item_ids=[step, plan.step_counts.get(step, 0)])
                for i, step in enumerate(plan.item_ids)
            ]
        else:
            size = spec.chunk_size
            chunks = [
                BatchChunk(job=job, index=i, item_ids=plan.item_ids[start_at : start_at + size])
                for i, start_at in enumerate(range(0, len(plan.item_ids), size))
            ]
        BatchChunk.objects.bulk_create(chunks, batch_size=1000)
    if start:
        batch_start(job.pk)
        job.refresh_from_db()
    return job


def _enqueue_chunks(chunk_ids: list[int]) -> None:
    for chunk_id in chunk_ids:
        chunk_enqueue(chunk_id)


def batch_start(job_id: int, *, enqueue: bool = True) -> NotificationBatchJob:
    """pending → running; enqueue the chunks after commit. A job with no chunk completes."""
    now = timezone.now()
    with transaction.atomic():
        job = NotificationBatchJob.objects.select_for_update(no_key=True).get(pk=job_id)
        if job.status != BatchJobStatus.PENDING:
            raise BatchError(INVALID_STATE, f"job {job_id} is {job.status}, not pending")
        job.status = BatchJobStatus.RUNNING
        job.started_at = now
        job.save(update_fields=["status", "started_at", "updated_at"])
        pending = _pending_chunk_ids(job_id)
        if enqueue and pending:
            transaction.on_commit(lambda: _enqueue_chunks(pending))
    if not pending:
        batch_finish_if_done(job_id)
    return job


def batch_get(job_id: Any) -> NotificationBatchJob:
    try:
        return NotificationBatchJob.objects.get(pk=int(job_id))
    except (ValueError, TypeError, NotificationBatchJob.DoesNotExist):
        raise BatchError(JOB_NOT_FOUND, f"no batch job with id {job_id}", "id") from None


def batch_cancel(job_id: Any) -> NotificationBatchJob:
    """Cancel a pending or running job. Returns once the chunks in flight have committed:
    from then on the job writes nothing more. Cancelling a cancelled job is a no-op."""
    job = batch_get(job_id)
    with transaction.atomic():
        # 1. flip the status (NO KEY UPDATE: it does not wait for the chunks' FOR KEY SHARE);
        #    every chunk that starts after this commit sees "cancelled" and does nothing
        job = NotificationBatchJob.objects.select_for_update(no_key=True).get(pk=job.pk)
        if job.status == BatchJobStatus.CANCELLED:
            return job
        if job.status in FINISHED:
            raise BatchError(INVALID_STATE, f"job {job.pk} already {job.status}", "id")
        job.status = BatchJobStatus.CANCELLED
        job.completed_at = timezone.now()
        job.save(update_fields=["status", "completed_at", "updated_at"])
    with transaction.atomic():
        # 2. FOR UPDATE conflicts with FOR KEY SHARE: this waits for the chunks that read
        #    "running" before step 1 to commit (about one chunk's duration)
        job = NotificationBatchJob.objects.select_for_update().get(pk=job.pk)
        job.error_summary = _error_summary_json(job.pk)
        job.save(update_fields=["error_summary", "updated_at"])
    return job


def batch_resume(job_id: Any, *, enqueue: bool = True) -> tuple[NotificationBatchJob, int]:
    """Re-enqueue the chunks of a job not yet done (after a crash, a cancel or a failure);
    the job is ``running`` again. Returns the job and how many chunks were enqueued."""
    job = batch_get(job_id)
    with transaction.atomic():
        job = NotificationBatchJob.objects.select_for_update().get(pk=job.pk)
        if job.status == BatchJobStatus.COMPLETED:
            raise BatchError(INVALID_STATE, f"job {job.pk} already completed", "id")
        pending = _pending_chunk_ids(job.pk)
        job.status = BatchJobStatus.RUNNING
        job.started_at = job.started_at or timezone.now()
        job.completed_at = None
        job.save(update_fields=["status", "started_at", "completed_at", "updated_at"])
        BatchChunk.objects.filter(pk__in=pending).update(attempts=0)
        if enqueue and pending:
            transaction.on_commit(lambda: _enqueue_chunks(pending))
    if not pending:
        batch_finish_if_done(job.pk)
    job.refresh_from_db()
    return job, len(pending)


def batches_resume_stalled(*, stalled_after: float | None = None) -> int:
    """Beat: re-enqueue the unfinished chunks of running jobs that made no progress for
    ``NP_BATCH_STALL_SECONDS`` (their workers died, or the broker lost the messages)."""
    seconds = (
        stalled_after
        if stalled_after is not None
        else float(getattr(settings, "NP_BATCH_STALL_SECONDS", 300))
    )
    cutoff = timezone.now() - timedelta(seconds=seconds)
    stalled = NotificationBatchJob.objects.filter(
        status=BatchJobStatus.RUNNING, updated_at__lt=cutoff
    ).values_list("pk", flat=True)
    resumed = 0
    for job_id in stalled:
        pending = _pending_chunk_ids(job_id)
        if not pending:
            batch_finish_if_done(job_id)
            continue
        # touch it: the next beat waits another stall period before enqueueing again
        NotificationBatchJob.objects.filter(pk=job_id).update(updated_at=timezone.now())
        _enqueue_chunks(pending)
        logger.warning("batch job %s stalled; re-enqueued %d chunks", job_id, len(pending))
        resumed += 1
    return resumed
