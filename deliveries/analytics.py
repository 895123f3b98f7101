"""Click-through analytics: how many deliveries that reached people were clicked.

For the deliveries created in a time window (``[since, until)``, at most
``CTR_MAX_HOURS`` long, like the dashboard's last 24 hours):

- ``delivered``: deliveries that reached the recipient's provider or device (status ``sent``
  or ``delivered``, the platform's success statuses);
- ``clicked``: those among them whose tracked link (or ``POST /inbox/{id}/click/``) was
  followed at least once (``services/clicks.py`` counts clicks per delivery in
  ``delivery_metadata["clicks"]``);
- ``clicks``: every click on them (repeat clicks included);
- ``click_through_rate``: ``clicked / delivered`` in percent (2 places), None without any
  delivered.

Grouped by template (the key of the template row the delivery was rendered from,
``delivery_metadata["template_id"]``: one per type, channel and language; ``None`` for
deliveries without one, e.g. invitations), channel or provider, in one grouped SQL query
each (the ``created_at`` index bounds the scan; per template, one more query names the
templates of the page).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, IntegerField, Q, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce
from django.utils import timezone

from templates.models import NotificationTemplate

from .models import NotificationDelivery

REACHED = ("sent", "delivered")
CTR_DEFAULT_HOURS = 24
CTR_MAX_HOURS = 24 * 31
DIMENSIONS = {
    "template": "template_id",  # annotated from delivery_metadata
    "channel": "delivery_type",
    "provider": "provider_name",
}


@dataclass(frozen=True)
class ClickThrough:
    key: str | None
    delivered: int
    clicked: int
    clicks: int
    click_through_rate: Decimal | None


def ctr_window(
    hours: int = CTR_DEFAULT_HOURS, *, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The last ``hours`` hours (1 … ``CTR_MAX_HOURS``) up to ``now``."""
    if not 1 <= hours <= CTR_MAX_HOURS:
        raise ValueError(f"hours must be between 1 and {CTR_MAX_HOURS}")
    until = now or timezone.now()
    return until - timedelta(hours=hours), until


def rate(part: int, whole: int) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part * 100) / Decimal(whole)).quantize(Decimal("0.01"))


def _template_name(template_id: int | None, names: dict[Any, str]) -> str | None:
    if template_id is None:
        return None
    return names.get(template_id, f"#{template_id} (deleted)")


def click_through(by: str, *, since: datetime, until: datetime) -> list[ClickThrough]:
    """CTR per ``by`` (``template`` | ``channel`` | ``provider``) over the deliveries created
    in ``[since, until)``; groups without any delivered delivery are left out. Most
    delivered first."""
    column = DIMENSIONS[by]
    reached = Q(status__in=REACHED)
    clicked = reached & Q(delivery_metadata__has_key="clicks")
    click_count = Cast(KeyTextTransform("clicks", "delivery_metadata"), IntegerField())
    deliveries = NotificationDelivery.objects.filter(created_at__gte=since, created_at__lt=until)
    if by == "template":
        template_id = Cast(KeyTextTransform("template_id", "delivery_metadata"), IntegerField())
        deliveries = deliveries.annotate(template_id=template_id)
    rows = list(
        deliveries.values(column)
        .annotate(
            delivered=Count("id", filter=reached),
            clicked=Count("id", filter=clicked),
            clicks=Coalesce(Sum(click_count, filter=clicked), 0),
        )
        .filter(delivered__gt=0)
        .order_by("-delivered", column)
    )
    names: dict[Any, str] = {}
    if by == "template":
        ids = [row[column] for row in rows if row[column] is not None]
        names = dict(
            NotificationTemplate.objects.filter(pk__in=ids).values_list("pk", "template_key")
        )
    return [
        ClickThrough(
            key=row[column] if by != "template" else _template_name(row[column], names),
            delivered=row["delivered"],
            clicked=row["clicked"],
            clicks=row["clicks"],
            click_through_rate=rate(row["clicked"], row["delivered"]),
        )
        for row in rows
    ]
