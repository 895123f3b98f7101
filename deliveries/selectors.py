"""Read paths of the pipeline."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, QuerySet

from notifyplatform.choices import Channel

from .models import DeliveryStatus, Notification, NotificationDelivery, UserNotificationPreference

INBOX_STATUSES = (DeliveryStatus.SENT, DeliveryStatus.DELIVERED)


def inbox_list(user: Any, *, include_archived: bool = False) -> QuerySet[Notification]:
    """The user's in-app inbox: their notifications whose in-app delivery went out.

    A notification appears once its ``in_app`` delivery is sent — so one deferred by quiet
    hours or a frequency cap appears when it is due, and an opted-out one never does.
    """
    delivered = NotificationDelivery.objects.filter(
        notification=OuterRef("pk"), delivery_type=Channel.IN_APP, status__in=INBOX_STATUSES
    )
    rows = Notification.objects.filter(user=user).filter(Exists(delivered))
    if not include_archived:
        rows = rows.filter(is_archived=False)
    return rows.order_by("-created_at")


def inbox_unread_count(user: Any) -> int:
    return inbox_list(user).filter(is_read=False).count()


def notification_get(user: Any, notification_id: Any) -> Notification | None:
    """One of the user's own notifications (any state), or None."""
    return Notification.objects.filter(user=user, pk=notification_id).first()


def preference_list(user: Any) -> QuerySet[UserNotificationPreference]:
    return UserNotificationPreference.objects.filter(user=user).order_by(
        "invitation_type", "delivery_method"
    )


def delivery_list_for_notification(notification: Notification) -> QuerySet[NotificationDelivery]:
    return NotificationDelivery.objects.filter(notification=notification).order_by("id")
