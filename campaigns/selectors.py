"""Reads of batch jobs: their deliveries, progress figures (command, admin, API)."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from deliveries.models import NotificationDelivery

from .models import BatchChunk, BatchJobStatus, BatchJobType, ChunkStatus, NotificationBatchJob


def batch_job_list(
    *, status: str | None = None, job_type: str | None = None
) -> QuerySet[NotificationBatchJob]:
    jobs = NotificationBatchJob.objects.order_by("-created_at", "-id")
    if status:
        jobs = jobs.filter(status=status)
    if job_type:
        jobs = jobs.filter(job_type=job_type)
    return jobs


def batch_job_deliveries(job: NotificationBatchJob) -> QuerySet[NotificationDelivery]:
    """The deliveries a job produced. Invitation batches: through ``invitation.batch_job``
    (and the per-job idempotency prefix for any without an invitation). Reminder batches:
    the deliveries of the job's invitations flagged as reminders, since the job started."""
    if job.job_type == BatchJobType.BROADCAST:
        return NotificationDelivery.objects.filter(
            notification__idempotency_key__startswith=f"batch:{job.pk}:"
        )
    if job.job_type == BatchJobType.INVITATION_BATCH:
        return NotificationDelivery.objects.filter(
            Q(invitation__batch_job=job)
            | Q(notification__idempotency_key__startswith=f"batch:{job.pk}:")
        )
    if job.job_type == BatchJobType.REMINDER_BATCH:
        ids: list[int] = []
        for item_ids in BatchChunk.objects.filter(job=job).values_list("item_ids", flat=True):
            ids.extend(item_ids)
        deliveries = NotificationDelivery.objects.filter(
            invitation_id__in=ids, delivery_metadata__data__reminder=True
        )
        # rows written after the job was (created_at is the writing transaction's start)
        return deliveries.filter(created_at__gte=job.created_at)
    return NotificationDelivery.objects.none()


def batch_delivery_breakdown(job: NotificationBatchJob) -> dict[str, int]:
    rows = (
        batch_job_deliveries(job).order_by().values("status").annotate(n=Count("id"))
    )
    return {row["status"]: row["n"] for row in rows}


def error_summary(job: NotificationBatchJob) -> dict[str, Any]:
    if not job.error_summary:
        return {}
    try:
        value = json.loads(job.error_summary)
    except ValueError:
        return {"UNPARSED": {"count": 1, "message": job.error_summary[:200]}}
    return value if isinstance(value, dict) else {}


def batch_progress(job: NotificationBatchJob) -> dict[str, Any]:
    """Counters, percentage, rate (items/s since start) and ETA — one shape everywhere."""
    chunks = BatchChunk.objects.filter(job=job).aggregate(
        total=Count("id"), done=Count("id", filter=Q(status=ChunkStatus.DONE))
    )
    end = job.completed_at or timezone.now()
    elapsed = (end - job.started_at).total_seconds() if job.started_at else 0.0
    rate = job.processed_notifications / elapsed if elapsed > 0 else 0.0
    remaining = max(job.total_notifications - job.processed_notifications, 0)
    eta = remaining / rate if rate > 0 and job.status == BatchJobStatus.RUNNING else None
    return {
        "id": job.pk,
        "name": job.job_name,
        "job_type": job.job_type,
        "status": job.status,
        "total": job.total_notifications,
        "processed": job.processed_notifications,
        "successful": job.successful_notifications,
        "failed": job.failed_notifications,
        "percent": job.progress_percent,
        "chunks_total": chunks["total"],
        "chunks_done": chunks["done"],
        "elapsed_seconds": round(elapsed, 3),
        "rate_per_second": round(rate, 1),
        "eta_seconds": round(eta, 1) if eta is not None else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "completed_at": job.completed_at.isoformat() if job.completed_at else None,
        "finished": job.status in (
            BatchJobStatus.COMPLETED, BatchJobStatus.FAILED, BatchJobStatus.CANCELLED
        ),
        "errors": error_summary(job),
    }
