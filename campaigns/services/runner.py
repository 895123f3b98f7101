"""Running a chunk: claim it, do its job type's work, record it in the ledger and the job's
counters in one transaction; finish the job when the last chunk is done."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Sum
from django.utils import timezone

from .. import cleanup, handlers
from ..errors import (
    CHUNK_FAILED,
)
from ..models import BatchChunk, BatchJobStatus, BatchJobType, ChunkStatus, NotificationBatchJob
from ..outcome import ChunkOutcome
from ..queue import chunk_enqueue

logger = logging.getLogger(__name__)


def _max_chunk_attempts() -> int:
    return int(getattr(settings, "NP_BATCH_CHUNK_MAX_ATTEMPTS", 3))


def _pending_chunk_ids(job_id: int) -> list[int]:
    return list(
        BatchChunk.objects.filter(job_id=job_id, status=ChunkStatus.PENDING)
        .order_by("index")
        .values_list("pk", flat=True)
    )


def _job_status_key_share(job_id: int) -> str | None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT status FROM notification_batch_jobs WHERE id = %s FOR KEY SHARE", [job_id]
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _handler(job_type: str) -> Callable[[NotificationBatchJob, BatchChunk], ChunkOutcome]:
    handlers_by_type: dict[str, Callable[[NotificationBatchJob, BatchChunk], ChunkOutcome]] = {
        BatchJobType.INVITATION_BATCH: handlers.invitation_chunk,
        BatchJobType.REMINDER_BATCH: handlers.reminder_chunk,
        BatchJobType.CLEANUP_BATCH: cleanup.cleanup_chunk,
        BatchJobType.BROADCAST: handlers.broadcast_chunk,
    }
    return handlers_by_type[job_type]


def batch_chunk_run(chunk_id: int) -> str:
    """Run one chunk: claim it, check the job still runs, do the work, mark it done and
    count it — one transaction. Safe to call any number of times, concurrently."""
    try:
        with transaction.atomic():
            chunk = (
                BatchChunk.objects.select_for_update(skip_locked=True, of=("self",))
                .filter(pk=chunk_id)
                .order_by("pk")
                .first()
            )
            if chunk is None:
                return "locked"  # another worker has it
            if chunk.status == ChunkStatus.DONE:
                return "already_done"
            status = _job_status_key_share(chunk.job_id)
            if status != BatchJobStatus.RUNNING:
                return f"job_{status}"
            job = NotificationBatchJob.objects.get(pk=chunk.job_id)
            outcome = _handler(job.job_type)(job, chunk)
            _record(chunk, outcome)
            job_id = chunk.job_id
    except Exception as exc:  # noqa: BLE001 - a chunk must not die silently; see _chunk_error
        done = BatchChunk.objects.filter(pk=chunk_id, status=ChunkStatus.DONE).first()
        if done is None:
            logger.exception("batch chunk %s failed", chunk_id)
            return _chunk_error(chunk_id, exc)
        # The chunk committed; what failed was an after-commit hook (e.g. a broker publish:
        # its rows stay pending for the sweeper). The chunk's work stands.
        logger.exception("batch chunk %s: after-commit hook failed", chunk_id)
        job_id = done.job_id
    batch_finish_if_done(job_id)
    return "done"


def _record(chunk: BatchChunk, outcome: ChunkOutcome) -> None:
    now = timezone.now()
    chunk.status = ChunkStatus.DONE
    chunk.processed = outcome.processed
    chunk.successful = outcome.successful
    chunk.failed = outcome.failed
    chunk.error_counts = outcome.errors or None
    chunk.finished_at = now
    chunk.save(
        update_fields=[
            "status",
            "processed",
            "successful",
            "failed",
            "error_counts",
            "finished_at",
            "updated_at",
        ]
    )
    fields: dict[str, Any] = {
        "processed_notifications": F("processed_notifications") + outcome.processed,
        "successful_notifications": F("successful_notifications") + outcome.successful,
        "failed_notifications": F("failed_notifications") + outcome.failed,
        "updated_at": now,
    }
    if outcome.total_delta:
        fields["total_notifications"] = F("total_notifications") + outcome.total_delta
    if outcome.errors:
        fields["error_summary"] = _error_summary_json(chunk.job_id)
    NotificationBatchJob.objects.filter(pk=chunk.job_id).update(**fields)


def _chunk_error(chunk_id: int, exc: Exception) -> str:
    """An unexpected error (the chunk's work rolled back): retry the chunk a few times, then
    count all its items failed (``CHUNK_FAILED``) so the job can finish, as ``failed``."""
    message = f"{type(exc).__name__}: {exc}"[:1000]
    with transaction.atomic():
        chunk = (
            BatchChunk.objects.select_for_update(of=("self",))
            .filter(pk=chunk_id)
            .order_by("pk")
            .first()
        )
        if chunk is None or chunk.status == ChunkStatus.DONE:
            return "error"
        chunk.attempts += 1
        chunk.last_error = message
        chunk.save(update_fields=["attempts", "last_error", "updated_at"])
        attempts, job_id = chunk.attempts, chunk.job_id
        if attempts >= _max_chunk_attempts():
            outcome = ChunkOutcome()
            items = len(chunk.item_ids) if chunk.job.job_type != BatchJobType.CLEANUP_BATCH else 0
            outcome.fail(CHUNK_FAILED, message, items)
            if not items:
                outcome.errors[CHUNK_FAILED] = {"count": 1, "message": message}
            _record(chunk, outcome)
    if attempts >= _max_chunk_attempts():
        batch_finish_if_done(job_id)
        return "gave_up"
    chunk_enqueue(chunk_id, countdown=min(60, 2**attempts))
    return "retry"


def _error_summary(job_id: int) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for counts in BatchChunk.objects.filter(job_id=job_id, error_counts__isnull=False).values_list(
        "error_counts", flat=True
    ):
        for code, entry in (counts or {}).items():
            slot = merged.setdefault(code, {"count": 0, "message": entry.get("message", "")})
            slot["count"] += int(entry.get("count", 0))
    return dict(sorted(merged.items(), key=lambda item: -item[1]["count"]))


def _error_summary_json(job_id: int) -> str | None:
    summary = _error_summary(job_id)
    return json.dumps(summary) if summary else None


def batch_finish_if_done(job_id: int) -> bool:
    """running → completed (or failed when a chunk gave up) once every chunk is done; the
    counters are set to the sums of the ledger (they already are: this only makes it so by
    construction). True if this call finished the job."""
    with transaction.atomic():
        job = NotificationBatchJob.objects.select_for_update(no_key=True).get(pk=job_id)
        if job.status != BatchJobStatus.RUNNING:
            return False
        if BatchChunk.objects.filter(job_id=job_id, status=ChunkStatus.PENDING).exists():
            return False
        sums = BatchChunk.objects.filter(job_id=job_id).aggregate(
            processed=Sum("processed"), successful=Sum("successful"), failed=Sum("failed")
        )
        summary = _error_summary(job_id)
        job.processed_notifications = sums["processed"] or 0
        job.successful_notifications = sums["successful"] or 0
        job.failed_notifications = sums["failed"] or 0
        if job.job_type == BatchJobType.CLEANUP_BATCH:
            job.total_notifications = job.processed_notifications
        job.error_summary = json.dumps(summary) if summary else None
        job.status = BatchJobStatus.FAILED if CHUNK_FAILED in summary else BatchJobStatus.COMPLETED
        job.completed_at = timezone.now()
        job.save()
    return True


def batch_run_inline(job_id: int) -> None:
    """Run a started job's pending chunks in this process (``run_batch --inline``: no worker
    needed; still chunked, still resumable)."""
    for _ in range(_max_chunk_attempts()):
        pending = _pending_chunk_ids(job_id)
        if not pending:
            return
        for chunk_id in pending:
            if batch_chunk_run(chunk_id).startswith("job_"):
                return
