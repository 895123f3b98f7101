"""Read paths of the pipeline."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import phonenumbers
from django.db.models import (
    Count,
    DecimalField,
    F,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from notifyplatform.choices import Channel
from providers.traffic import FAILURE, SUCCESS

from .models import Notification, NotificationDelivery, Suppression, UserNotificationPreference

# the windows of a provider's health figures (provider_success_rates)
HEALTH_WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}


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


# -- provider traffic: handed to providers at start-up (providers.traffic, apps.py) ---------


def provider_success_rates(provider_name: str) -> dict[str, Decimal | None]:
    """Percent of finished deliveries (sent/delivered vs failed/bounced) per window."""
    now = timezone.now()
    aggregates = {}
    for label, window in HEALTH_WINDOWS.items():
        since = Q(created_at__gte=now - window)
        aggregates[f"ok_{label}"] = Count("id", filter=since & Q(status__in=SUCCESS))
        aggregates[f"bad_{label}"] = Count("id", filter=since & Q(status__in=FAILURE))
    counts = NotificationDelivery.objects.filter(
        provider_name=provider_name, created_at__gte=now - HEALTH_WINDOWS["7d"]
    ).aggregate(**aggregates)
    rates: dict[str, Decimal | None] = {}
    for label in HEALTH_WINDOWS:
        ok, bad = counts[f"ok_{label}"], counts[f"bad_{label}"]
        rates[label] = (
            (Decimal(ok * 100) / Decimal(ok + bad)).quantize(Decimal("0.01")) if ok + bad else None
        )
    return rates


def provider_spent_between(provider_name: str, start: datetime, end: datetime) -> Decimal:
    """The sum of the costs of the provider's sends in ``[start, end)``."""
    total = NotificationDelivery.objects.filter(
        provider_name=provider_name, sent_at__gte=start, sent_at__lt=end
    ).aggregate(total=Sum("cost_per_message"))["total"]
    return total or Decimal(0)


def _deliveries_since(since: datetime) -> QuerySet[NotificationDelivery]:
    return NotificationDelivery.objects.filter(
        provider_name=OuterRef("provider_name"), created_at__gte=since
    ).order_by()


def provider_annotations(since: datetime, window_start: datetime) -> dict[str, Any]:
    """Subqueries for a ``Provider`` queryset: ``ok_24h`` / ``bad_24h`` (finished deliveries
    since ``since``), ``cost_24h`` and ``spent_window`` (costs of sends since
    ``window_start``, the spend-cap window)."""

    def count(statuses: tuple[str, ...]) -> Coalesce:
        rows = (
            _deliveries_since(since)
            .values("provider_name")
            .annotate(n=Count("id", filter=Q(status__in=statuses)))
            .values("n")
        )
        return Coalesce(Subquery(rows, output_field=IntegerField()), 0)

    cost = (
        _deliveries_since(since)
        .values("provider_name")
        .annotate(total=Sum("cost_per_message"))
        .values("total")
    )
    spent = (
        NotificationDelivery.objects.filter(
            provider_name=OuterRef("provider_name"), sent_at__gte=window_start
        )
        .order_by()
        .values("provider_name")
        .annotate(total=Sum("cost_per_message"))
        .values("total")
    )
    money: DecimalField[Decimal, Decimal] = DecimalField(max_digits=20, decimal_places=6)
    return {
        "spent_window": Subquery(spent, output_field=money),
        "ok_24h": count(SUCCESS),
        "bad_24h": count(FAILURE),
        "cost_24h": Subquery(cost, output_field=money),
    }


def provider_spend_by_day(provider_name: str, since: datetime) -> list[dict[str, Any]]:
    """Sends and spend of one provider per UTC day since ``since``, newest first."""
    return list(
        NotificationDelivery.objects.filter(provider_name=provider_name, sent_at__gte=since)
        .annotate(day=TruncDate("sent_at", tzinfo=UTC))
        .values("day")
        .annotate(sent=Count("id"), spend=Sum("cost_per_message"))
        .order_by("-day")
    )


def normalise_address(channel: str, address: str) -> str:
    """The form a suppressed address is stored and looked up in: a lower-cased email, an
    E.164 phone (as given when it does not parse), anything else stripped."""
    address = address.strip()
    if channel == Channel.EMAIL:
        return address.lower()
    if channel == Channel.SMS:
        try:
            parsed = phonenumbers.parse(address, None)
        except phonenumbers.NumberParseException:
            return address
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return address


def suppression_reasons(
    pairs: Iterable[tuple[str, str]], category: str | None = None
) -> dict[tuple[str, str], str]:
    """Which of the (channel, address) pairs have an active suppression that applies to a
    notification of ``category`` (one for every category, or one for this category), and
    its reason — one query; the pairs are returned as given (normalised for the lookup).
    When both apply, the every-category one's reason wins (a bounce outranks an
    unsubscribe)."""
    by_norm: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for channel, address in pairs:
        if channel == Channel.IN_APP or not address:
            continue
        by_norm.setdefault((channel, normalise_address(channel, address)), []).append(
            (channel, address)
        )
    if not by_norm:
        return {}
    scope = Q(category__isnull=True) | Q(category=category) if category else Q(category=None)
    rows = (
        Suppression.objects.filter(
            scope,
            lifted_at__isnull=True,
            channel__in={channel for channel, _ in by_norm},
            address__in={address for _, address in by_norm},
        )
        .order_by(F("category").asc(nulls_last=True))  # the scoped row first: NULL wins
        .values_list("channel", "address", "reason")
    )
    return {
        raw: reason
        for channel, address, reason in rows
        for raw in by_norm.get((channel, address), ())
    }


def suppressed_among(
    pairs: Iterable[tuple[str, str]], category: str | None = None
) -> set[tuple[str, str]]:
    """Which of the (channel, address) pairs have an active suppression (one query)."""
    return set(suppression_reasons(pairs, category))


def suppression_list() -> QuerySet[Suppression]:
    return Suppression.objects.select_related("created_by", "lifted_by")
