"""The cleanup batch: one chunk per step.

* ``expire_invitations`` — open invitations past ``expires_at`` (``invitations_expire_due``,
  with its history rows);
* ``expire_deliveries`` — pending deliveries past ``expires_at`` → ``expired``;
* ``expire_notifications`` — pending notifications past ``expires_at`` whose deliveries are
  all finished → status recomputed from them (``failed``/``cancelled``);
* ``purge_events`` — real-time events past their retention (``event_purge_expired``);
* ``prune_connections`` — ``disconnected`` websocket rows older than ``--older-than`` days.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from deliveries.models import (
    DeliveryStatus,
    Notification,
    NotificationDelivery,
    NotificationStatus,
)
from deliveries.services.status import notification_status_from
from invitations.models import StoryInvitation
from invitations.services import OPEN_STATUSES, invitations_expire_due
from realtime.models import ConnectionStatus, RealTimeEvent, WebsocketConnection
from realtime.services import event_purge_expired

from .models import BatchChunk, NotificationBatchJob
from .outcome import ChunkOutcome

_OPEN_DELIVERY = [DeliveryStatus.PENDING, DeliveryStatus.SENDING]


def _expired_notifications(now: Any) -> Any:
    open_delivery = NotificationDelivery.objects.filter(
        notification=OuterRef("pk"), status__in=_OPEN_DELIVERY
    )
    return Notification.objects.filter(
        status=NotificationStatus.PENDING, expires_at__lte=now
    ).filter(~Exists(open_delivery))


def _old_connections(older_than_days: int, now: Any) -> Any:
    return WebsocketConnection.objects.filter(
        connection_status=ConnectionStatus.DISCONNECTED,
        disconnected_at__lt=now - timedelta(days=older_than_days),
    )


def counts(*, older_than_days: int) -> dict[str, int]:
    """How many rows each step would touch now (``--dry-run`` and the job's total)."""
    now = timezone.now()
    days: dict[str, int] = settings.NP_RT_RETENTION_DAYS
    default_days = days.get("standard", 7)
    by_policy = Q(expires_at__lt=now) | Q(
        retention_policy__isnull=True, generated_at__lt=now - timedelta(days=default_days)
    )
    for policy, policy_days in days.items():
        by_policy |= Q(retention_policy=policy, generated_at__lt=now - timedelta(days=policy_days))
    by_policy |= Q(generated_at__lt=now - timedelta(days=default_days)) & ~Q(
        retention_policy__in=list(days)
    )
    return {
        "expire_invitations": StoryInvitation.objects.filter(
            status__in=OPEN_STATUSES, expires_at__lte=now
        ).count(),
        "expire_deliveries": NotificationDelivery.objects.filter(
            status=DeliveryStatus.PENDING, expires_at__lte=now
        ).count(),
        "expire_notifications": Notification.objects.filter(
            status=NotificationStatus.PENDING, expires_at__lte=now
        ).count(),
        "purge_events": RealTimeEvent.objects.filter(by_policy).count(),
        "prune_connections": _old_connections(older_than_days, now).count(),
    }


def _expire_deliveries(now: Any) -> int:
    # A row being claimed right now is locked; the UPDATE waits for it and then re-checks
    # ``status = pending``, so a delivery that went out meanwhile is left alone.
    ids = list(
        NotificationDelivery.objects.filter(
            status=DeliveryStatus.PENDING, expires_at__lte=now
        ).values_list("pk", flat=True)
    )
    if not ids:
        return 0
    return NotificationDelivery.objects.filter(
        pk__in=ids, status=DeliveryStatus.PENDING
    ).update(
        status=DeliveryStatus.EXPIRED,
        error_code="EXPIRED",
        error_message="expired before it could be sent",
        updated_at=now,
    )


def _expire_notifications(now: Any) -> int:
    ids = list(_expired_notifications(now).values_list("pk", flat=True))
    statuses: dict[Any, list[str]] = defaultdict(list)
    for notification_id, status in NotificationDelivery.objects.filter(
        notification_id__in=ids
    ).values_list("notification_id", "status"):
        statuses[notification_id].append(status)
    by_target: dict[str, list[Any]] = defaultdict(list)
    for notification_id in ids:
        # no delivery at all (every channel refused before writing one): failed
        target = notification_status_from(statuses[notification_id]) if statuses[
            notification_id
        ] else NotificationStatus.FAILED
        if target == NotificationStatus.PENDING:
            continue
        by_target[target].append(notification_id)
    changed = 0
    for target, target_ids in by_target.items():
        changed += Notification.objects.filter(
            pk__in=target_ids, status=NotificationStatus.PENDING
        ).update(status=target, error_message="expired", updated_at=now)
    return changed


def cleanup_chunk(job: NotificationBatchJob, chunk: BatchChunk) -> ChunkOutcome:
    step, planned = chunk.item_ids[0], int(chunk.item_ids[1])
    older_than = int((job.job_config or {}).get("older_than_days", 30))
    now = timezone.now()
    if step == "expire_invitations":
        done = invitations_expire_due(now=now)
    elif step == "expire_deliveries":
        done = _expire_deliveries(now)
    elif step == "expire_notifications":
        done = _expire_notifications(now)
    elif step == "purge_events":
        done = event_purge_expired(now=now)
    elif step == "prune_connections":
        _, per_model = _old_connections(older_than, now).delete()
        done = per_model.get("realtime.WebsocketConnection", 0)
    else:
        raise ValueError(f"unknown cleanup step {step!r}")
    outcome = ChunkOutcome(total_delta=done - planned)
    outcome.succeed(done)
    return outcome
