"""Batch jobs (``notification_batch_jobs``, seed 000) and their chunk ledger
(``notification_batch_chunks``, an extension table).

A job's audience is resolved once, when the job is created, into a stable ordered list of
item ids (user ids for an invitation batch, invitation ids for a reminder batch, step names
for a cleanup batch) cut into chunks. Each chunk row is both the unit of work handed to
Celery and the ledger entry saying whether that work is done: a chunk's work, its ``done``
mark and the job's counters commit in ONE transaction, so after any crash a chunk is either
entirely done (and skipped when re-run) or entirely not (and simply run again).
"""

from __future__ import annotations

from django.db import models

from notifyplatform.db import SeedIndex, choices_check, created_at, seed_default, updated_at


class BatchJobType(models.TextChoices):
    INVITATION_BATCH = "invitation_batch", "Invitation batch"
    REMINDER_BATCH = "reminder_batch", "Reminder batch"
    CLEANUP_BATCH = "cleanup_batch", "Cleanup batch"
    BROADCAST = "broadcast", "Template to an audience"


class BatchJobStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    RUNNING = "running", "Running"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class NotificationBatchJob(models.Model):
    id = models.AutoField(primary_key=True)
    job_name = models.CharField(max_length=255)
    job_type = models.CharField(max_length=50, choices=BatchJobType.choices)
    invitation_type = models.CharField(max_length=50, null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=BatchJobStatus.choices, default=BatchJobStatus.PENDING
    )
    total_notifications = models.IntegerField(**seed_default(0))
    processed_notifications = models.IntegerField(**seed_default(0))
    successful_notifications = models.IntegerField(**seed_default(0))
    failed_notifications = models.IntegerField(**seed_default(0))
    job_config = models.JSONField(null=True, blank=True)
    error_summary = models.TextField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "notification_batch_jobs"
        ordering = ["-created_at"]
        indexes = [
            SeedIndex(fields=["status"], name="idx_notification_batch_jobs_status"),
            SeedIndex(fields=["job_type"], name="idx_notification_batch_jobs_type"),
            SeedIndex(fields=["started_at"], name="idx_notification_batch_jobs_started"),
        ]
        constraints = [
            choices_check("job_type", BatchJobType, "notification_batch_jobs_type_valid"),
            choices_check("status", BatchJobStatus, "notification_batch_jobs_status_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.job_name} ({self.status})"

    @property
    def progress_percent(self) -> float:
        if not self.total_notifications:
            return 100.0 if self.status == BatchJobStatus.COMPLETED else 0.0
        return round(100.0 * self.processed_notifications / self.total_notifications, 1)


class ChunkStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DONE = "done", "Done"


class BatchChunk(models.Model):
    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(NotificationBatchJob, on_delete=models.CASCADE, related_name="chunks")
    index = models.IntegerField(help_text="Position of the chunk in the job's ordered audience")
    item_ids = models.JSONField(help_text="User ids, invitation ids or cleanup step names")
    status = models.CharField(
        max_length=20, choices=ChunkStatus.choices, default=ChunkStatus.PENDING
    )
    processed = models.IntegerField(default=0)
    successful = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    error_counts = models.JSONField(
        null=True, blank=True, help_text='{"CODE": {"count": n, "message": "..."}}'
    )
    attempts = models.IntegerField(default=0)
    last_error = models.TextField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "notification_batch_chunks"
        # not ["job", ...]: ordering by the FK would JOIN the job (and lock it with the chunk)
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["job", "index"], name="batch_chunks_job_index_uniq"),
        ]
        indexes = [
            models.Index(
                fields=["job", "index"],
                name="batch_chunks_unfinished",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"job {self.job_id} chunk {self.index} ({self.status})"
