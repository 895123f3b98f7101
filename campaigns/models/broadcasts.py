"""Broadcasts (``broadcasts``, an extension table): one template to one audience, now or at
``send_at`` — optionally at a wall-clock time in each recipient's own timezone.

A broadcast is the schedule and the API's handle; the sending is a batch job of type
``broadcast`` (``job``), so it is chunked, resumable after a crash and cancellable exactly
like every batch job. ``scheduled`` → (the dispatcher, at ``starts_at``) ``started`` with its
job; ``cancelled`` (by id or ``cancellation_key``) is possible until then, and later cancels
the job; ``failed`` when it could not start (the audience was empty, the template gone).

A broadcast sends a template (``template_key``) or starts a workflow (``workflow_key``) per
recipient — exactly one of the two; the job's chunks trigger the workflow with idempotency
keys ``batch:<job>:<user>``, so a re-run chunk starts nobody's run twice.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from notifyplatform.db import choices_check, created_at, updated_at

from .audiences import Audience
from .batch import NotificationBatchJob


class BroadcastStatus(models.TextChoices):
    SCHEDULED = "scheduled", "Scheduled"
    STARTED = "started", "Started"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class Broadcast(models.Model):
    id = models.BigAutoField(primary_key=True)
    name = models.CharField(max_length=255)
    audience = models.ForeignKey(Audience, on_delete=models.PROTECT, related_name="broadcasts")
    template_key = models.CharField(max_length=100, blank=True, default="")
    workflow_key = models.CharField(
        max_length=100, blank=True, default="", help_text="a workflow to start per recipient"
    )
    channels = models.JSONField(null=True, blank=True)
    context = models.JSONField(default=dict, blank=True)
    send_at = models.DateTimeField(null=True, blank=True, help_text="absolute send time")
    local_send_at = models.CharField(
        max_length=16,
        blank=True,
        default="",
        help_text="YYYY-MM-DDTHH:MM in each recipient's own timezone",
    )
    starts_at = models.DateTimeField(help_text="when the dispatcher starts the job")
    status = models.CharField(
        max_length=20, choices=BroadcastStatus.choices, default=BroadcastStatus.SCHEDULED
    )
    cancellation_key = models.CharField(max_length=255, null=True, blank=True)
    idempotency_scope = models.CharField(max_length=64, null=True, blank=True)
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    request_fingerprint = models.CharField(max_length=64, null=True, blank=True)
    job = models.OneToOneField(
        NotificationBatchJob,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="broadcast",
    )
    error = models.TextField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    started_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "broadcasts"
        ordering = ["-id"]
        constraints = [
            choices_check("status", BroadcastStatus, "broadcasts_status_valid"),
            models.CheckConstraint(
                condition=(models.Q(template_key="") & ~models.Q(workflow_key=""))
                | (~models.Q(template_key="") & models.Q(workflow_key="")),
                name="broadcasts_template_xor_workflow",
            ),
            models.UniqueConstraint(
                fields=["idempotency_scope", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="broadcasts_idempotency_uniq",
            ),
        ]
        indexes = [
            models.Index(
                fields=["starts_at"],
                name="broadcasts_due",
                condition=models.Q(status="scheduled"),
            ),
            models.Index(
                fields=["cancellation_key"],
                name="broadcasts_cancellation_key",
                condition=models.Q(cancellation_key__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"
