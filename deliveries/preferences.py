"""User notification preferences: which rule applies, and what it decides for one delivery.

Lookup: rows in ``user_notification_preferences`` for (user, type, method). The most specific
row wins *as a whole* (no field-by-field merging, so a user's row is exactly what the user
sees and edits): the user's row for the type, the user's ``*`` row, the platform default
(user NULL) for the type, the platform ``*`` row.

What a row decides, in order (every rule that changes the outcome is recorded in
``delivery_metadata.decision`` so "why was this not sent (now)?" always has an answer):

1. ``is_enabled = false`` → skipped (``opt_out``; ``unsubscribed`` when the row was written
   by an unsubscribe, ``delivery_preferences.unsubscribed``). Urgent messages do not bypass
   an opt-out.
2. Quiet hours (``quiet_hours_start``/``_end`` in the row's timezone, else the user's; a window
   may cross midnight, e.g. 22:00–07:00) → scheduled at the end of the window, unless the
   priority is ``urgent`` (recorded as bypassed).
3. ``frequency_limit`` per calendar ``frequency_period`` (hour/day/week in that timezone),
   counting this user's deliveries of the type on the channel scheduled in the period. Over
   the cap: ``delivery_preferences.over_cap`` = ``skip`` (default) or ``defer`` (to the first
   later period with room). Concurrent notifies for one user serialise on an advisory lock so
   two cannot both take the last slot.
4. ``preferred_providers`` / ``blocked_providers`` are handed to routing at send time.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db import connection
from django.db.models import Q

from notifyplatform.choices import Priority

from .models import (
    DeliveryStatus,
    FrequencyPeriod,
    NotificationDelivery,
    SuppressionReason,
    UserNotificationPreference,
)
from .types import Decision

ANY_TYPE = "*"
OVER_CAP_SKIP = "skip"
OVER_CAP_DEFER = "defer"
# Deliveries that take a slot of a frequency cap: those that reached, or will reach, the user.
CAP_COUNTED_STATUSES = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.DELIVERED,
)
_MAX_DEFER_PERIODS = 366


def preferences_for(
    user: Any, type_name: str, channels: Iterable[str]
) -> dict[str, UserNotificationPreference]:
    """The winning preference row per channel (channels without any row are absent)."""
    grid = preference_grid(user, [type_name], channels)
    return {channel: row for (_type, channel), row in grid.items()}


def preference_grid(
    user: Any, type_names: Iterable[str], channels: Iterable[str]
) -> dict[tuple[str, str], UserNotificationPreference]:
    """The winning row per (type, channel), one query for every pair (pairs without any
    row are absent)."""
    type_names, channels = list(type_names), list(channels)
    user_q = Q(user__isnull=True) if user is None else Q(user=user) | Q(user__isnull=True)
    rows = list(
        UserNotificationPreference.objects.filter(
            user_q,
            invitation_type__in=[*type_names, ANY_TYPE],
            delivery_method__in=channels,
        )
    )
    chosen: dict[tuple[str, str], tuple[int, UserNotificationPreference]] = {}
    for type_name in type_names:
        for row in rows:
            if row.invitation_type not in (type_name, ANY_TYPE):
                continue
            rank = (0 if row.user_id is not None else 2) + (
                0 if row.invitation_type != ANY_TYPE else 1
            )
            key = (type_name, row.delivery_method)
            current = chosen.get(key)
            if current is None or rank < current[0]:
                chosen[key] = (rank, row)
    return {key: row for key, (_rank, row) in chosen.items()}


def _zone(name: str | None) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _local_datetime(day: date, at: time, tz: zoneinfo.ZoneInfo) -> datetime:
    return datetime.combine(day, at, tzinfo=tz)


def quiet_hours_end(
    when: datetime, start: time, end: time, tz: zoneinfo.ZoneInfo
) -> datetime | None:
    """End of the quiet window containing ``when`` (UTC), or None if ``when`` is outside it."""
    if start == end:
        return None
    local = when.astimezone(tz)
    now = local.time().replace(tzinfo=None)
    inside = (start <= now < end) if start < end else (now >= start or now < end)
    if not inside:
        return None
    end_day = local.date() if now < end else local.date() + timedelta(days=1)
    return _local_datetime(end_day, end, tz).astimezone(UTC)


def period_bounds(when: datetime, period: str, tz: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """The calendar period (in ``tz``) containing ``when``, as UTC [start, end)."""
    local = when.astimezone(tz)
    if period == FrequencyPeriod.HOURLY:
        start = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        return start, start + timedelta(hours=1)
    day = local.date()
    if period == FrequencyPeriod.WEEKLY:
        first = day - timedelta(days=day.weekday())
        return (
            _local_datetime(first, time(0), tz).astimezone(UTC),
            _local_datetime(first + timedelta(days=7), time(0), tz).astimezone(UTC),
        )
    return (
        _local_datetime(day, time(0), tz).astimezone(UTC),
        _local_datetime(day + timedelta(days=1), time(0), tz).astimezone(UTC),
    )


def _cap_lock(user_id: Any, channel: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", [f"np-cap:{user_id}:{channel}"]
        )


def _cap_count(
    user: Any,
    type_name: str,
    channel: str,
    pref: UserNotificationPreference,
    start: datetime,
    end: datetime,
) -> int:
    rows = NotificationDelivery.objects.filter(
        notification__user=user,
        delivery_type=channel,
        status__in=CAP_COUNTED_STATUSES,
        scheduled_at__gte=start,
        scheduled_at__lt=end,
    )
    if pref.invitation_type != ANY_TYPE:
        rows = rows.filter(notification__event_type=type_name)
    return rows.count()


def decide(
    pref: UserNotificationPreference | None,
    *,
    user: Any,
    type_name: str,
    channel: str,
    priority: str,
    when: datetime,
    user_timezone: str | None,
) -> Decision:
    """Apply one preference row to one delivery due at ``when`` (must run in a transaction:
    the frequency cap takes an advisory lock held until commit)."""
    decision = Decision(scheduled_at=when)
    if pref is None:
        return decision
    decision.preference_id = pref.id
    decision.preferred_providers = [str(p) for p in pref.preferred_providers or []]
    decision.blocked_providers = [str(p) for p in pref.blocked_providers or []]
    scope = "user" if pref.user_id is not None else "platform"

    if not pref.is_enabled:
        decision.action = "skip"
        # an opt-out the user made by unsubscribing (one-click link, the ESP's unsubscribe)
        # says so: decision ``unsubscribed``, with how and when
        unsubscribed = (pref.delivery_preferences or {}).get("unsubscribed")
        rule = {
            "rule": "unsubscribed" if unsubscribed else "opt_out",
            "preference_id": pref.id,
            "scope": scope,
            "type": pref.invitation_type,
            "channel": channel,
        }
        if unsubscribed:
            rule["unsubscribed"] = unsubscribed
        decision.record(rule)
        return decision

    tz_name = pref.timezone or user_timezone or "UTC"
    tz = _zone(tz_name)
    if pref.quiet_hours_start is not None and pref.quiet_hours_end is not None:
        window_end = quiet_hours_end(when, pref.quiet_hours_start, pref.quiet_hours_end, tz)
        if window_end is not None:
            rule = {
                "rule": "quiet_hours",
                "preference_id": pref.id,
                "scope": scope,
                "start": pref.quiet_hours_start.isoformat(),
                "end": pref.quiet_hours_end.isoformat(),
                "timezone": tz_name,
            }
            if priority == Priority.URGENT:
                decision.record({**rule, "bypassed": "urgent"})
            else:
                decision.scheduled_at = window_end
                decision.record({**rule, "deferred_until": window_end.isoformat()})

    if pref.frequency_limit is not None and user is not None:
        period = pref.frequency_period or FrequencyPeriod.DAILY
        over_cap = (pref.delivery_preferences or {}).get("over_cap", OVER_CAP_SKIP)
        _cap_lock(user.pk, channel)
        when_due = decision.scheduled_at or when
        start, end = period_bounds(when_due, period, tz)
        count = _cap_count(user, type_name, channel, pref, start, end)
        if count >= pref.frequency_limit:
            rule = {
                "rule": "frequency_cap",
                "preference_id": pref.id,
                "scope": scope,
                "limit": pref.frequency_limit,
                "period": period,
                "timezone": tz_name,
                "count": count,
                "window_start": start.isoformat(),
                "window_end": end.isoformat(),
            }
            if over_cap != OVER_CAP_DEFER or pref.frequency_limit == 0:
                decision.action = "skip"
                decision.record({**rule, "action": "skip"})
                return decision
            for _ in range(_MAX_DEFER_PERIODS):
                start, end = period_bounds(end, period, tz)
                if _cap_count(user, type_name, channel, pref, start, end) < pref.frequency_limit:
                    decision.scheduled_at = start
                    decision.record(
                        {**rule, "action": "defer", "deferred_until": start.isoformat()}
                    )
                    return decision
            decision.action = "skip"
            decision.record({**rule, "action": "skip", "reason": "no free period within a year"})
    return decision


def suppression_rule(reason: str, channel: str) -> dict[str, Any]:
    """The decision trace of a send skipped for an active suppression with ``reason``."""
    if reason == SuppressionReason.UNSUBSCRIBE:
        return {"rule": "unsubscribed", "scope": "address", "channel": channel, "action": "skip"}
    return {"rule": "suppressed", "reason": reason, "channel": channel, "action": "skip"}
