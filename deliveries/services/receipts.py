"""Applying providers' receipts: a verified, normalised ``Receipt`` moves its delivery on,
and the notification's status is recomputed from its deliveries by the pipeline's one
rule (``status.notification_status_from``), as every other path that changes a delivery does.

Providers verify and parse callbacks into ``Receipt`` (``providers.types``); they never write
these tables. Application is idempotent: a receipt only moves a delivery forward
(``_RECEIPT_FROM``), so the same receipt applied twice — a provider's retry, or a replay of a
captured callback within the signature tolerance — changes nothing the second time.
A hard bounce or a complaint also suppresses the delivery's address (``suppression``).
Opens, clicks and unsubscribes reported by the ESP: ``engagement``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from providers import errors as provider_errors
from providers.types import Receipt, ReceiptStatus

from ..models import Notification, NotificationDelivery
from .engagement import engagement_apply
from .sending import _refresh_notification
from .suppression import suppression_add_from_receipt

# Receipt outcome → which current statuses it may replace. A late "delivered" must not
# undo a bounce, and nothing moves a delivery back to an earlier state.
_RECEIPT_FROM: dict[str, tuple[str, ...]] = {
    ReceiptStatus.DELIVERED: ("pending", "sending", "sent"),
    ReceiptStatus.BOUNCED: ("pending", "sending", "sent", "delivered"),
    ReceiptStatus.FAILED: ("pending", "sending", "sent"),
    ReceiptStatus.COMPLAINED: ("sent", "delivered"),
}


@transaction.atomic
def receipt_apply(*, provider_name: str, receipt: Receipt) -> int:
    """Record a normalised receipt on the delivery it names and refresh its notification;
    the number of deliveries updated. Engagement events (opened, clicked, unsubscribed) go
    to ``engagement.engagement_apply``."""
    if receipt.status in ReceiptStatus.ENGAGEMENT:
        return engagement_apply(provider_name=provider_name, receipt=receipt)
    now = timezone.now()
    when: datetime = receipt.timestamp or now
    fields: dict[str, Any] = {"status": receipt.status, "updated_at": now}
    if receipt.status == ReceiptStatus.DELIVERED:
        fields["delivered_at"] = when
    elif receipt.status in (ReceiptStatus.BOUNCED, ReceiptStatus.FAILED):
        fields["failed_at"] = when
        fields["error_code"] = receipt.error_code or (
            provider_errors.INVALID_RECIPIENT
            if receipt.status == ReceiptStatus.BOUNCED
            else provider_errors.REJECTED
        )
        if receipt.description:
            fields["error_message"] = receipt.description[:1000]
    elif receipt.status == ReceiptStatus.COMPLAINED and receipt.error_code:
        fields["error_code"] = receipt.error_code
    rows = list(
        NotificationDelivery.objects.select_for_update()
        .filter(
            provider_name=provider_name,
            provider_message_id=receipt.provider_message_id,
            status__in=_RECEIPT_FROM[receipt.status],
        )
        .only("id", "delivery_metadata", "notification_id", "delivery_type", "recipient")
    )
    for row in rows:
        metadata = dict(row.delivery_metadata or {})
        metadata.setdefault("receipts", []).append(
            {
                "event": receipt.event,
                "status": receipt.status,
                "at": when.isoformat(),
                "error_code": receipt.error_code,
            }
        )
        NotificationDelivery.objects.filter(pk=row.pk).update(delivery_metadata=metadata, **fields)
        # a hard bounce or a complaint: no more sends to this address on this channel
        suppression_add_from_receipt(
            provider_name=provider_name,
            receipt=receipt,
            channel=row.delivery_type,
            address=row.recipient,
            delivery_id=row.pk,
        )
    for notification_id in sorted({row.notification_id for row in rows if row.notification_id}):
        _refresh_notification(notification_id)
        if receipt.status == ReceiptStatus.DELIVERED:
            Notification.objects.filter(pk=notification_id, status="delivered").update(
                delivered_at=Coalesce(F("delivered_at"), Value(when))
            )
    return len(rows)
