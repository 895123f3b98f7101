"""Inbox writes: read, read all, archive — each only on the user's own notifications."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from ..models import Notification, NotificationStatus
from ..selectors import inbox_list
from ..signals import notification_engaged


def _mark_read_fields() -> dict[str, Any]:
    now = timezone.now()
    return {"is_read": True, "read_at": now, "updated_at": now}


@transaction.atomic
def inbox_mark_read(*, user: Any, notification_id: Any) -> Notification | None:
    """Mark one inbox notification read; None when it is not in this user's inbox."""
    notification = inbox_list(user, include_archived=True).filter(pk=notification_id).first()
    if notification is None:
        return None
    if not notification.is_read:
        fields = _mark_read_fields()
        if notification.status != NotificationStatus.CLICKED:
            fields["status"] = NotificationStatus.READ
        Notification.objects.filter(pk=notification.pk).update(**fields)
        notification.refresh_from_db()
        notification_engaged.send(
            sender=Notification, notification_ids=[str(notification.pk)], how="read"
        )
    return notification


@transaction.atomic
def inbox_mark_all_read(*, user: Any) -> int:
    """Mark every unread inbox notification read; returns how many changed."""
    ids = list(
        inbox_list(user, include_archived=True).filter(is_read=False).values_list("pk", flat=True)
    )
    if not ids:
        return 0
    fields = _mark_read_fields()
    Notification.objects.filter(pk__in=ids).exclude(status=NotificationStatus.CLICKED).update(
        status=NotificationStatus.READ, **fields
    )
    Notification.objects.filter(pk__in=ids, status=NotificationStatus.CLICKED).update(**fields)
    notification_engaged.send(
        sender=Notification, notification_ids=[str(pk) for pk in ids], how="read"
    )
    return len(ids)


@transaction.atomic
def inbox_archive(*, user: Any, notification_id: Any) -> Notification | None:
    notification = inbox_list(user, include_archived=True).filter(pk=notification_id).first()
    if notification is None:
        return None
    if not notification.is_archived:
        Notification.objects.filter(pk=notification.pk).update(
            is_archived=True, updated_at=timezone.now()
        )
        notification.refresh_from_db()
    return notification
