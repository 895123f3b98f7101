"""A preview of a batch: the first recipient's messages, rendered exactly as the job would
render them — by doing the first recipient's work inside a transaction that is then rolled
back. Nothing stays (no job, invitation, notification; after-commit hooks are dropped with
the rollback), and no second rendering path can drift from the real one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from deliveries.models import NotificationDelivery
from users.models import User

from .. import handlers
from ..models import BatchChunk, BatchJobType
from .jobs import batch_create
from .plan import BatchPlan
from .spec import BatchSpec


@dataclass
class PreviewMessage:
    channel: str
    subject: str
    text: str


@dataclass
class BatchPreview:
    recipient: str
    messages: list[PreviewMessage] = field(default_factory=list)
    not_sent: dict[str, Any] = field(default_factory=dict)  # why nothing would go out


def batch_preview(spec: BatchSpec, plan: BatchPlan) -> BatchPreview | None:
    """The first recipient's rendered messages (None for job types that send nothing)."""
    if spec.job_type not in (BatchJobType.INVITATION_BATCH, BatchJobType.BROADCAST):
        return None
    if not plan.item_ids:
        return None
    first = str(plan.item_ids[0])
    user = User.objects.filter(pk=first).first()
    preview = BatchPreview(recipient=user.email if user else first)
    run = handlers.broadcast_chunk
    if spec.job_type == BatchJobType.INVITATION_BATCH:
        run = handlers.invitation_chunk
    with transaction.atomic():
        job = batch_create(spec, plan=BatchPlan([first], []), start=False)
        chunk = BatchChunk.objects.get(job=job)
        outcome = run(job, chunk)
        rows = NotificationDelivery.objects.filter(
            notification__idempotency_key=f"batch:{job.pk}:{first}"
        ).order_by("id")
        for row in rows:
            message = (row.delivery_metadata or {}).get("message") or {}
            if not isinstance(message, dict):
                message = {"text": str(message)}
            preview.messages.append(
                PreviewMessage(
                    row.delivery_type, message.get("subject") or "", message.get("text") or ""
                )
            )
        preview.not_sent = dict(outcome.errors)
        transaction.set_rollback(True)  # a preview keeps nothing
    return preview
