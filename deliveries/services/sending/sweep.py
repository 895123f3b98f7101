"""Sweeper: expired leases back to pending (or failed), past ``expires_at`` to expired, then a
dispatcher run."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from ...models import DeliveryStatus, NotificationDelivery
from .claim import _expire
from .dispatch import deliveries_dispatch_due
from .policy import LEASE_EXPIRED, _setting, _without
from .record import _refresh_notification


def _release_expired_leases(now: datetime, batch_size: int) -> int:
    released = 0
    with transaction.atomic():
        rows = list(
            NotificationDelivery.objects.select_for_update(skip_locked=True)
            .filter(
                status=DeliveryStatus.SENDING, delivery_metadata__lease__until__lt=now.timestamp()
            )
            .order_by("id")[:batch_size]
        )
        for row in rows:
            lease = (row.delivery_metadata or {}).get("lease") or {}
            meta = _without(row.delivery_metadata, "lease")
            meta["lease_expired"] = lease
            meta["lease_expiries"] = int(meta.get("lease_expiries", 0)) + 1
            if row.retry_count >= row.max_retries:
                meta["decision"] = {"rule": "max_retries", "max_retries": row.max_retries}
                NotificationDelivery.objects.filter(pk=row.pk).update(
                    status=DeliveryStatus.FAILED,
                    failed_at=now,
                    error_code=LEASE_EXPIRED,
                    error_message="the worker sending it vanished (lease expired) too often",
                    delivery_metadata=meta,
                    updated_at=now,
                )
                if row.notification_id:
                    _refresh_notification(row.notification_id)
            else:
                NotificationDelivery.objects.filter(pk=row.pk).update(
                    status=DeliveryStatus.PENDING,
                    retry_count=row.retry_count + 1,
                    scheduled_at=now,
                    delivery_metadata=meta,
                    # old enough that this same sweep re-enqueues it
                    updated_at=now - timedelta(days=1),
                )
            released += 1
    return released


def _expire_pending(now: datetime, batch_size: int) -> int:
    with transaction.atomic():
        rows = list(
            NotificationDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.PENDING, expires_at__lte=now)
            .order_by("id")[:batch_size]
        )
        for row in rows:
            _expire(row, now)
    return len(rows)


def deliveries_sweep(
    *, batch_size: int | None = None, now: datetime | None = None
) -> dict[str, int]:
    """Repair and re-drive the outbox: expired leases → pending, past ``expires_at`` →
    expired, then a dispatcher run (:func:`deliveries_dispatch_due`) for what is due.

    The grace period keeps the sweeper from re-enqueueing rows whose own on-commit enqueue is
    still in flight; a duplicate enqueue would be harmless anyway (the claim is idempotent).
    """
    now = now or timezone.now()
    batch_size = batch_size or int(_setting("NP_SWEEP_BATCH_SIZE", 5000))
    released = _release_expired_leases(now, batch_size)
    expired = _expire_pending(now, batch_size)
    dispatched = deliveries_dispatch_due(now=now, limit=batch_size)
    return {
        "released": released,
        "expired": expired,
        "due": dispatched["due"],
        "enqueued": dispatched["enqueued"],
    }
