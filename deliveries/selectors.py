"""Read paths of the pipeline."""

from __future__ import annotations

from typing import Any

from django.db.models import Prefetch, QuerySet

from .models import Notification, NotificationDelivery, UserNotificationPreference


def inbox_list(user: Any, *, include_archived: bool = False) -> QuerySet[Notification]:
    """The user's in-app inbox: their notifications whose in-app delivery went out.

    A notification appears once its ``in_app`` delivery is sent — so one deferred by quiet
    hours or a frequency cap appears when it is due, and an opted-out one never does. The
    ``in_inbox`` flag says so; a trigger on the deliveries keeps it (migration 0004).
    """
    rows = Notification.objects.filter(user=user, in_inbox=True)
    if not include_archived:
        rows = rows.filter(is_archived=False)
    return rows.order_by("-created_at")


def inbox_unread_count(user: Any) -> int:
    """An index-only scan of ``idx_notifications_inbox_unread`` (its predicate is the whole
    filter)."""
    return inbox_list(user).filter(is_read=False).count()


def notification_list(user: Any) -> QuerySet[Notification]:
    """The user's own notifications, newest first, each with its deliveries (one more
    query for the whole page, not one per notification)."""
    deliveries = NotificationDelivery.objects.order_by("id")
    return (
        Notification.objects.filter(user=user)
        .prefetch_related(Prefetch("deliveries", queryset=deliveries))
        .order_by("-created_at")
    )


def notification_get(user: Any, notification_id: Any) -> Notification | None:
    """One of the user's own notifications (any state), or None."""
    return Notification.objects.filter(user=user, pk=notification_id).first()


def preference_list(user: Any) -> QuerySet[UserNotificationPreference]:
    return UserNotificationPreference.objects.filter(user=user).order_by(
        "invitation_type", "delivery_method"
    )


def delivery_list_for_notification(notification: Notification) -> QuerySet[NotificationDelivery]:
    return NotificationDelivery.objects.filter(notification=notification).order_by("id")
