"""The chunk ledger of a batch job (``notification_batch_chunks``, an extension table).

A job's audience is resolved once, when the job is created, into a stable ordered list of
item ids (user ids for an invitation batch, invitation ids for a reminder batch, step names
for a cleanup batch) cut into chunks. Each chunk row is both the unit of work handed to
Celery and the ledger entry saying whether that work is done: a chunk's work, its ``done``
mark and the job's counters commit in ONE transaction, so after any crash a chunk is either
entirely done (and skipped when re-run) or entirely not (and simply run again).
"""

from __future__ import annotations

from django.db import models

from deliveries.models import NotificationBatchJob
from notifyplatform.db import created_at, updated_at


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
        app_label = "deliveries"
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
