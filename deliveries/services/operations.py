"""Operator actions on deliveries and notifications: retry and cancel.

Called by the staff API (``deliveries/api/staff.py``) and the admin console's actions, so
both faces behave the same. Each action locks the row, checks the state it may act on and
raises :class:`DeliveryOperationError` (``code`` UPPER_SNAKE, ``status`` 409 for "not in a
state that allows this") otherwise; nothing is written then.

- **retry** puts a *finished-unsuccessfully* delivery (failed, bounced, expired, cancelled)
  back to ``pending`` now (``max_retries`` raised so at least one automatic retry remains,
  a past ``expires_at`` cleared), and enqueues it after commit. The claim in
  ``sending.py`` stays the only place that sends, so a retry racing the sweeper is harmless.
- **cancel** stops a delivery that has not been handed to a provider (``pending``). A
  ``sending`` delivery is in a provider call right now: cancelling it would race the
  recording step, so we refuse (409) and the operator can cancel the retry if it fails.
- **notification cancel** cancels every pending delivery of the notification and marks the
  notification ``cancelled`` when nothing of it was sent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from notifyplatform.errors import DomainError

from ..models import DeliveryStatus, Notification, NotificationDelivery, NotificationStatus
from .sending import _refresh_notification, _without, enqueue_deliveries

DELIVERY_NOT_RETRYABLE = "DELIVERY_NOT_RETRYABLE"
DELIVERY_NOT_CANCELLABLE = "DELIVERY_NOT_CANCELLABLE"
NOTIFICATION_NOT_CANCELLABLE = "NOTIFICATION_NOT_CANCELLABLE"

RETRYABLE_STATUSES = frozenset(
    {
        DeliveryStatus.FAILED,
        DeliveryStatus.BOUNCED,
        DeliveryStatus.EXPIRED,
        DeliveryStatus.CANCELLED,
    }
)
CANCELLABLE_STATUSES = frozenset({DeliveryStatus.PENDING})


class DeliveryOperationError(DomainError):
    """An operator action that the row's current state does not allow. Nothing was written."""

    def __init__(self, code: str, message: str, *, status: int = 409) -> None:
        super().__init__(code, message, status=status)


@dataclass(frozen=True)
class NotificationCancelResult:
    notification: Notification
    cancelled_deliveries: int


def _locked_delivery(delivery: NotificationDelivery) -> NotificationDelivery:
    return NotificationDelivery.objects.select_for_update().get(pk=delivery.pk)


@transaction.atomic
def delivery_retry(*, delivery: NotificationDelivery) -> NotificationDelivery:
    """Send a failed/bounced/expired/cancelled delivery again, now. Returns the updated row.

    Raises ``DeliveryOperationError(DELIVERY_NOT_RETRYABLE)`` for any other status.
    """
    row = _locked_delivery(delivery)
    if row.status not in RETRYABLE_STATUSES:
        raise DeliveryOperationError(
            DELIVERY_NOT_RETRYABLE,
            f"Delivery {row.pk} is {row.status}; only "
            f"{', '.join(sorted(RETRYABLE_STATUSES))} deliveries can be retried.",
        )
    now = timezone.now()
    meta = _without(row.delivery_metadata, "lease", "lease_expired")
    meta["decision"] = {
        "rule": "manual_retry",
        "previous_status": row.status,
        "at": now.isoformat(),
    }
    row.status = DeliveryStatus.PENDING
    row.scheduled_at = now
    # An exhausted retry budget still allows this attempt plus one automatic retry.
    row.max_retries = max(row.max_retries, row.retry_count + 1)
    if row.expires_at is not None and row.expires_at <= now:
        row.expires_at = None
    row.failed_at = None
    row.error_code = None
    row.error_message = None
    row.delivery_metadata = meta
    row.save(
        update_fields=[
            "status",
            "scheduled_at",
            "max_retries",
            "expires_at",
            "failed_at",
            "error_code",
            "error_message",
            "delivery_metadata",
            "updated_at",
        ]
    )
    if row.notification_id:
        _refresh_notification(row.notification_id)
    pk = row.pk
    transaction.on_commit(lambda: enqueue_deliveries([pk]))
    return row


def _cancel_fields(row: NotificationDelivery, now: Any, reason: str) -> None:
    meta = _without(row.delivery_metadata, "lease", "lease_expired")
    meta["decision"] = {"rule": reason, "previous_status": row.status, "at": now.isoformat()}
    row.status = DeliveryStatus.CANCELLED
    row.error_code = "CANCELLED"
    row.error_message = "cancelled by an operator"
    row.delivery_metadata = meta


_CANCEL_UPDATE_FIELDS = ["status", "error_code", "error_message", "delivery_metadata", "updated_at"]


@transaction.atomic
def delivery_cancel(*, delivery: NotificationDelivery) -> NotificationDelivery:
    """Cancel a pending delivery. Raises ``DeliveryOperationError(DELIVERY_NOT_CANCELLABLE)``
    for any other status (a ``sending`` one is mid-call to its provider)."""
    row = _locked_delivery(delivery)
    if row.status not in CANCELLABLE_STATUSES:
        raise DeliveryOperationError(
            DELIVERY_NOT_CANCELLABLE,
            f"Delivery {row.pk} is {row.status}; only pending deliveries can be cancelled.",
        )
    _cancel_fields(row, timezone.now(), "manual_cancel")
    row.save(update_fields=_CANCEL_UPDATE_FIELDS)
    if row.notification_id:
        _refresh_notification(row.notification_id)
    return row


@transaction.atomic
def notification_cancel(*, notification: Notification) -> NotificationCancelResult:
    """Cancel every pending delivery of a notification.

    The notification becomes ``cancelled`` when none of its deliveries was sent (its status
    is otherwise recomputed from the deliveries as usual). Raises
    ``DeliveryOperationError(NOTIFICATION_NOT_CANCELLABLE)`` when it has no pending delivery
    and is not itself pending (nothing left to stop).
    """
    locked = Notification.objects.select_for_update().get(pk=notification.pk)
    rows = list(
        NotificationDelivery.objects.select_for_update()
        .filter(notification_id=locked.pk, status__in=CANCELLABLE_STATUSES)
        .order_by("id")
    )
    if not rows and locked.status != NotificationStatus.PENDING:
        raise DeliveryOperationError(
            NOTIFICATION_NOT_CANCELLABLE,
            f"Notification {locked.pk} is {locked.status} and has no pending delivery.",
        )
    now = timezone.now()
    for row in rows:
        _cancel_fields(row, now, "manual_cancel_notification")
        row.save(update_fields=_CANCEL_UPDATE_FIELDS)
    # the one rule: every delivery cancelled/skipped (or none at all) → cancelled
    _refresh_notification(locked.pk)
    locked.refresh_from_db()
    return NotificationCancelResult(notification=locked, cancelled_deliveries=len(rows))
