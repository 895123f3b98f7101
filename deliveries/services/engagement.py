"""ESP engagement receipts: the recipient opened the email, followed a link in it, or
unsubscribed at the ESP (Mailgun, SendGrid, Postmark and anymail's tracking events,
normalised to ``Receipt``s with ``ReceiptStatus.ENGAGEMENT`` statuses).

They update the same fields as our own tracking:

- ``opened``: the delivery's ``delivery_metadata`` counts ``opens`` (``first_opened_at``,
  ``last_opened_at``); the notification becomes ``read`` (``read_at`` on the first open,
  ``is_read``) unless it is already ``clicked`` — the rule ``clicked > read > delivered``.
- ``clicked``: ``clicks.notification_click`` — the very service our tracked links use
  (``clicked_at`` on the first click, status ``clicked``, the click counted in the
  delivery's metadata, the ``notification_clicked`` event).
- ``unsubscribed``: the address is suppressed on the channel for the email's category
  (reason ``unsubscribe``, with the source receipt) and, for a user's notification, the user is opted out of its type on
  the channel like the one-click link does (``unsubscribe.unsubscribe_user``).

An open or a click proves delivery: a delivery still ``sent`` becomes ``delivered``.
Each event is applied once: events with an id (Mailgun, SendGrid, anymail's ``event_id``)
are remembered on the delivery (``delivery_metadata["esp_events"]``), so a provider's
retry or a replayed callback does not count a second open or click.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from providers.types import Receipt, ReceiptStatus

from ..models import DeliveryStatus, Notification, NotificationDelivery, NotificationStatus
from .clicks import delivery_count_click, notification_click
from .sending import _refresh_notification
from .suppression import suppression_add_from_receipt
from .unsubscribe import unsubscribe_user

_KEEP_EVENT_IDS = 200  # per delivery: enough for any real recipient's opens and clicks
_KEEP_RECEIPTS = 50
_NOT_YET_DELIVERED = (DeliveryStatus.PENDING, DeliveryStatus.SENDING, DeliveryStatus.SENT)


def _event_key(receipt: Receipt) -> str | None:
    return f"{receipt.status}:{receipt.event_id}" if receipt.event_id else None


def _record(row: NotificationDelivery, receipt: Receipt, when: datetime) -> dict[str, Any]:
    """The row's metadata with this event recorded (and counted, for an open)."""
    metadata = dict(row.delivery_metadata or {})
    key = _event_key(receipt)
    if key:
        metadata["esp_events"] = [*(metadata.get("esp_events") or []), key][-_KEEP_EVENT_IDS:]
    entry: dict[str, Any] = {"event": receipt.event, "status": receipt.status}
    entry["at"] = when.isoformat()
    if receipt.click_url:
        entry["url"] = receipt.click_url[:500]
    metadata["receipts"] = [*(metadata.get("receipts") or []), entry][-_KEEP_RECEIPTS:]
    if receipt.status == ReceiptStatus.OPENED:
        metadata["opens"] = int(metadata.get("opens") or 0) + 1
        metadata.setdefault("first_opened_at", when.isoformat())
        metadata["last_opened_at"] = when.isoformat()
    return metadata


def _mark_read(notification_id: Any, when: datetime) -> None:
    now = timezone.now()
    Notification.objects.filter(pk=notification_id).exclude(
        status=NotificationStatus.CLICKED
    ).update(status=NotificationStatus.READ, updated_at=now)
    Notification.objects.filter(pk=notification_id).update(
        is_read=True, read_at=Coalesce(F("read_at"), Value(when)), updated_at=now
    )


def _unsubscribe(row: NotificationDelivery, provider_name: str, receipt: Receipt) -> None:
    suppression_add_from_receipt(
        provider_name=provider_name,
        receipt=receipt,
        channel=row.delivery_type,
        address=row.recipient,
        delivery_id=row.pk,
        category=(row.delivery_metadata or {}).get("category"),
    )
    notification = row.notification if row.notification_id else None
    type_name = (row.delivery_metadata or {}).get("event_type")
    if notification is not None and notification.user_id and type_name:
        unsubscribe_user(
            notification.user,
            type_name,
            row.delivery_type,
            via=f"esp:{provider_name}",
            event=receipt.event,
        )


@transaction.atomic
def engagement_apply(*, provider_name: str, receipt: Receipt) -> int:
    """Apply one engagement receipt to the deliveries it names; how many it changed."""
    now = timezone.now()
    when: datetime = receipt.timestamp or now
    rows = list(
        NotificationDelivery.objects.select_for_update(of=("self",))
        .filter(provider_name=provider_name, provider_message_id=receipt.provider_message_id)
        .select_related("notification")
    )
    key = _event_key(receipt)
    applied = 0
    for row in rows:
        if key and key in ((row.delivery_metadata or {}).get("esp_events") or []):
            continue  # seen before: a retry or a replay
        fields: dict[str, Any] = {"delivery_metadata": _record(row, receipt, when)}
        proves_delivery = receipt.status in (ReceiptStatus.OPENED, ReceiptStatus.CLICKED)
        if proves_delivery and row.status in _NOT_YET_DELIVERED:
            fields.update(status=DeliveryStatus.DELIVERED, delivered_at=when)
        NotificationDelivery.objects.filter(pk=row.pk).update(updated_at=now, **fields)
        applied += 1
        if row.notification_id:
            _refresh_notification(row.notification_id)
        if receipt.status == ReceiptStatus.OPENED and row.notification_id:
            _mark_read(row.notification_id, when)
        elif receipt.status == ReceiptStatus.CLICKED:
            if row.notification is not None:
                notification_click(row.notification, delivery_id=row.pk)
            else:  # an address-only delivery: no notification, the delivery counts it
                delivery_count_click(row.pk)
        elif receipt.status == ReceiptStatus.UNSUBSCRIBED:
            _unsubscribe(row, provider_name, receipt)
    return applied
