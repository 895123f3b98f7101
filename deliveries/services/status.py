"""How a notification's status follows its deliveries."""

from __future__ import annotations

from collections.abc import Iterable

from ..models import DeliveryStatus, NotificationStatus

_SENT = {DeliveryStatus.SENT}
_DELIVERED = {DeliveryStatus.DELIVERED}
_OPEN = {DeliveryStatus.PENDING, DeliveryStatus.SENDING}
_FAILED = {
    DeliveryStatus.FAILED,
    DeliveryStatus.BOUNCED,
    DeliveryStatus.COMPLAINED,
    DeliveryStatus.EXPIRED,
}
# Statuses the user produced (read/clicked) are never overwritten by delivery bookkeeping.
USER_STATUSES = {NotificationStatus.READ, NotificationStatus.CLICKED}


def notification_status_from(statuses: Iterable[str]) -> str:
    """delivered if any channel delivered, else sent if any sent, else pending while any is
    still open, else failed if any failed or expired, else cancelled (every one skipped)."""
    seen = set(statuses)
    if seen & _DELIVERED:
        return NotificationStatus.DELIVERED
    if seen & _SENT:
        return NotificationStatus.SENT
    if seen & _OPEN:
        return NotificationStatus.PENDING
    if seen & _FAILED:
        return NotificationStatus.FAILED
    return NotificationStatus.CANCELLED
