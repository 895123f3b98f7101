"""Click tracking: recording a click (the tracked links themselves: ``deliveries/links.py``).

A click (the link followed, or ``POST /inbox/{id}/click/``) sets ``clicked_at`` on the
first click, the status ``clicked`` (the highest: read and delivery bookkeeping never lower
it, see ``status.USER_STATUSES``), marks the notification read, counts every click in the
delivery's ``delivery_metadata["clicks"]`` and publishes a private ``notification_clicked``
event to the user.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from realtime.services import publish
from templates.rich import own_urls

from ..links import click_token_target
from ..models import Notification, NotificationDelivery, NotificationStatus
from ..signals import notification_engaged

logger = logging.getLogger(__name__)

EVENT_TYPE = "notification_clicked"


def _own_url(notification: Notification, target: str, delivery_id: int | None) -> str | None:
    """The notification's own URL named ``target`` (``own_urls``): a rich-content URL is
    read from the delivery the link went out with (its channel's rich content) when the
    token names one of this notification's deliveries, else from the notification."""
    if target == "a":
        return notification.action_url
    rich = notification.rich_content
    if delivery_id is not None:
        meta = (
            NotificationDelivery.objects.filter(pk=delivery_id, notification_id=notification.pk)
            .values_list("delivery_metadata", flat=True)
            .first()
        )
        if isinstance(meta, dict) and isinstance(meta.get("rich_content"), dict):
            rich = meta["rich_content"]
    return own_urls(None, rich).get(target)


def redirect_target(
    notification: Notification, target: str = "a", delivery_id: int | None = None
) -> str | None:
    """The notification's own URL ``target`` (its action URL by default) if it is one a
    browser may be sent to (http(s), or a path on this host); None otherwise."""
    url = (_own_url(notification, target, delivery_id) or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and parts.netloc:
        return url
    if not parts.scheme and not parts.netloc and url.startswith("/") and "\\" not in url:
        return url
    return None


# One atomic read-modify-write in SQL: concurrent clicks each count.
_COUNT_SQL = (
    "UPDATE notification_deliveries SET delivery_metadata ="
    " COALESCE(delivery_metadata, '{}'::jsonb) || jsonb_build_object("
    " 'clicks', COALESCE((delivery_metadata->>'clicks')::int, 0) + 1,"
    " 'last_clicked_at', %s::text), updated_at = %s WHERE id = %s"
)


def _count_click(notification_id: Any, delivery_id: int | None, now: Any) -> int | None:
    """Add one to the click count of the delivery (the token's, when it belongs to this
    notification; else the notification's in-app delivery; else its latest); its id."""
    deliveries = NotificationDelivery.objects.filter(notification_id=notification_id)
    chosen = None
    if delivery_id is not None:
        chosen = deliveries.filter(pk=delivery_id).values_list("pk", flat=True).first()
    if chosen is None:
        chosen = (
            deliveries.filter(delivery_type="in_app").values_list("pk", flat=True).first()
            or deliveries.order_by("-pk").values_list("pk", flat=True).first()
        )
    if chosen is None:
        return None
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_SQL, [now.isoformat(), now, chosen])
    return int(chosen)


def delivery_count_click(delivery_id: int) -> None:
    """Count a click on a delivery that has no notification (an address-only recipient's):
    an ESP's click receipt."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(_COUNT_SQL, [now.isoformat(), now, delivery_id])


@transaction.atomic
def notification_click(
    notification: Notification, *, delivery_id: int | None = None
) -> Notification:
    """Record one click on ``notification`` (see the module's docstring); returns it fresh."""
    now = timezone.now()
    Notification.objects.filter(pk=notification.pk).update(
        status=NotificationStatus.CLICKED,
        clicked_at=Coalesce(F("clicked_at"), Value(now)),
        is_read=True,
        read_at=Coalesce(F("read_at"), Value(now)),
        updated_at=now,
    )
    counted = _count_click(notification.pk, delivery_id, now)
    notification.refresh_from_db()
    notification_engaged.send(
        sender=Notification, notification_ids=[str(notification.pk)], how="clicked"
    )
    if notification.user_id is None:  # an address-only notification: nobody to tell
        return notification
    try:
        with transaction.atomic():  # a savepoint: a failed event never undoes the click
            publish(
                event_type=EVENT_TYPE,
                category="notification",
                data={
                    "notification_id": str(notification.pk),
                    "delivery_id": counted,
                    "status": notification.status,
                    "clicked_at": notification.clicked_at.isoformat()
                    if notification.clicked_at
                    else None,
                },
                visibility="private",
                user=notification.user_id,
                correlation_id=str(notification.pk),
            )
    except Exception:  # noqa: BLE001 - the click row is the truth; the event is the nudge
        logger.exception("publishing the click of notification %s failed", notification.pk)
    return notification


def notification_click_by_token(token: str) -> tuple[Notification, str] | None:
    """Record a click from a tracked link; (notification, where to redirect) or None when
    the token does not resolve to a notification with a redirectable URL of that name."""
    resolved = click_token_target(token)
    if resolved is None:
        return None
    notification_id, delivery_id, key = resolved
    try:
        pk = uuid.UUID(notification_id)
    except ValueError:  # signed by us, yet not an id (another version's token)
        return None
    notification = Notification.objects.filter(pk=pk).first()
    if notification is None:
        return None
    max_age = timedelta(days=settings.NP_CLICK_LINK_MAX_AGE_DAYS)
    if notification.created_at + max_age < timezone.now():  # the link has expired
        return None
    target = redirect_target(notification, key, delivery_id)
    if target is None:
        return None
    return notification_click(notification, delivery_id=delivery_id), target
