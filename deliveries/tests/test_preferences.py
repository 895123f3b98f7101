"""Preferences: opt-out, quiet hours (across midnight, non-UTC), urgent bypass, caps."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, time, timedelta

import pytest
from django.utils import timezone

from deliveries.models import UserNotificationPreference
from deliveries.preferences import decide, preferences_for
from deliveries.services import notify

pytestmark = pytest.mark.usefixtures("catalogue")
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")


def _pref(user, **fields):
    fields.setdefault("invitation_type", "outbid")
    fields.setdefault("delivery_method", "email")
    return UserNotificationPreference.objects.create(user=user, **fields)


def _zone_where_it_is_23h() -> str:
    """A fixed-offset, non-UTC zone whose local hour is 23 right now."""
    hour = timezone.now().astimezone(UTC).hour
    offset = (23 - hour) % 24
    offset = offset if offset <= 14 else offset - 24
    assert offset != 0 or hour == 23
    # Etc/GMT signs are inverted (Etc/GMT-2 is UTC+2)
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


def test_opt_out_skips_the_channel_and_records_the_rule(user):
    pref = _pref(user, is_enabled=False)
    result = notify(
        user, template_key="outbid", context={"amount": "$5"}, channels=["email", "in_app"]
    )
    email, in_app = result.deliveries
    assert email.status == "skipped"
    assert email.delivery_metadata["decision"] == {
        "rule": "opt_out",
        "preference_id": pref.pk,
        "scope": "user",
        "type": "outbid",
        "channel": "email",
    }
    assert in_app.status == "pending"
    assert result.notification.status == "pending"


def test_urgent_never_bypasses_an_opt_out(user):
    _pref(user, invitation_type="*", delivery_method="in_app", is_enabled=False)
    result = notify(
        user,
        template_key="auction_ending",
        context={"auction_title": "Clocks", "time_remaining": "1 minute"},
        channels=["in_app"],
    )
    assert result.notification.priority == "urgent"
    assert result.deliveries[0].status == "skipped"
    assert result.deliveries[0].delivery_metadata["decision"]["rule"] == "opt_out"
    # every channel skipped: the notification is cancelled, not left pending
    assert result.notification.status == "cancelled"


def test_platform_default_applies_and_user_row_overrides_it(user, other_user):
    UserNotificationPreference.objects.create(
        user=None, invitation_type="*", delivery_method="email", is_enabled=False
    )
    mine = _pref(user, is_enabled=True)
    assert preferences_for(user, "outbid", ["email"])["email"].pk == mine.pk
    theirs = notify(other_user, template_key="outbid", context={"amount": "1"}, channels=["email"])
    assert theirs.deliveries[0].status == "skipped"
    assert theirs.deliveries[0].delivery_metadata["decision"]["scope"] == "platform"
    ours = notify(user, template_key="outbid", context={"amount": "1"}, channels=["email"])
    assert ours.deliveries[0].status == "pending"


@pytest.mark.parametrize(
    ("local_now", "expected_end"),
    [
        # 23:30 on 14 March, inside 22:00–07:00: ends at 07:00 the next morning
        (datetime(2026, 3, 14, 23, 30, tzinfo=BERLIN), datetime(2026, 3, 15, 7, 0, tzinfo=BERLIN)),
        # 01:15 after midnight, still inside: ends at 07:00 the same day
        (datetime(2026, 3, 15, 1, 15, tzinfo=BERLIN), datetime(2026, 3, 15, 7, 0, tzinfo=BERLIN)),
        # 28 March 23:00 → 29 March 07:00 across the spring-forward night (CET → CEST)
        (datetime(2026, 3, 28, 23, 0, tzinfo=BERLIN), datetime(2026, 3, 29, 7, 0, tzinfo=BERLIN)),
    ],
)
def test_quiet_hours_across_midnight_in_berlin_defer_to_the_window_end(
    make_user, local_now, expected_end
):
    # given a user in Berlin with quiet hours 22:00–07:00 (the preference has no timezone)
    user = make_user(timezone="Europe/Berlin")
    pref = _pref(user, quiet_hours_start=time(22), quiet_hours_end=time(7))
    # when a normal-priority delivery is due at local_now
    decision = decide(
        pref,
        user=user,
        type_name="outbid",
        channel="email",
        priority="normal",
        when=local_now.astimezone(UTC),
        user_timezone=user.timezone,
    )
    # then it is deferred to the end of the window, with the rule recorded
    assert decision.action == "send"
    assert decision.scheduled_at == expected_end.astimezone(UTC)
    assert decision.rule == {
        "rule": "quiet_hours",
        "preference_id": pref.pk,
        "scope": "user",
        "start": "22:00:00",
        "end": "07:00:00",
        "timezone": "Europe/Berlin",
        "deferred_until": expected_end.astimezone(UTC).isoformat(),
    }


def test_outside_quiet_hours_nothing_changes(make_user):
    user = make_user(timezone="Europe/Berlin")
    pref = _pref(user, quiet_hours_start=time(22), quiet_hours_end=time(7))
    noon = datetime(2026, 3, 15, 12, 0, tzinfo=BERLIN).astimezone(UTC)
    decision = decide(
        pref,
        user=user,
        type_name="outbid",
        channel="email",
        priority="normal",
        when=noon,
        user_timezone=user.timezone,
    )
    assert (decision.action, decision.scheduled_at, decision.rules) == ("send", noon, [])


def test_notify_inside_quiet_hours_schedules_for_the_end_of_the_window(make_user):
    # given a user whose quiet hours (22:00–07:00, the preference's own zone) are on now
    zone = _zone_where_it_is_23h()
    user = make_user(timezone="UTC")
    _pref(user, quiet_hours_start=time(22), quiet_hours_end=time(7), timezone=zone)
    before = timezone.now()
    # when notified with normal priority
    result = notify(user, template_key="outbid", context={"amount": "1"}, channels=["email"])
    # then the email waits until 07:00 in that zone
    delivery = result.deliveries[0]
    local_end = delivery.scheduled_at.astimezone(zoneinfo.ZoneInfo(zone))
    assert delivery.status == "pending"
    assert local_end.time() == time(7, 0)
    assert before < delivery.scheduled_at < before + timedelta(hours=9)
    assert delivery.delivery_metadata["decision"]["rule"] == "quiet_hours"


def test_urgent_bypasses_quiet_hours(make_user):
    zone = _zone_where_it_is_23h()
    user = make_user()
    _pref(
        user,
        invitation_type="*",
        delivery_method="in_app",
        quiet_hours_start=time(22),
        quiet_hours_end=time(7),
        timezone=zone,
    )
    result = notify(
        user,
        template_key="auction_ending",
        context={"auction_title": "Clocks", "time_remaining": "1 minute"},
        channels=["in_app"],
    )
    delivery = result.deliveries[0]
    assert delivery.scheduled_at <= timezone.now()
    assert delivery.delivery_metadata["decision"]["rule"] == "quiet_hours"
    assert delivery.delivery_metadata["decision"]["bypassed"] == "urgent"


def test_frequency_cap_skips_over_the_limit(user):
    pref = _pref(user, frequency_limit=2, frequency_period="daily", timezone="America/New_York")
    results = [
        notify(user, template_key="outbid", context={"amount": str(n)}, channels=["email"])
        for n in range(3)
    ]
    statuses = [r.deliveries[0].status for r in results]
    assert statuses == ["pending", "pending", "skipped"]
    decision = results[2].deliveries[0].delivery_metadata["decision"]
    assert decision["rule"] == "frequency_cap"
    assert (decision["preference_id"], decision["limit"], decision["count"]) == (pref.pk, 2, 2)
    assert decision["action"] == "skip"


def test_frequency_cap_defers_to_the_next_period_when_asked(user):
    _pref(
        user,
        frequency_limit=1,
        frequency_period="daily",
        timezone="Asia/Tokyo",
        delivery_preferences={"over_cap": "defer"},
    )
    first = notify(user, template_key="outbid", context={"amount": "1"}, channels=["email"])
    second = notify(user, template_key="outbid", context={"amount": "2"}, channels=["email"])
    third = notify(user, template_key="outbid", context={"amount": "3"}, channels=["email"])
    tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
    today = first.deliveries[0].scheduled_at.astimezone(tokyo).date()
    tomorrow = datetime.combine(today + timedelta(days=1), time(0), tzinfo=tokyo)
    assert second.deliveries[0].status == "pending"
    assert second.deliveries[0].scheduled_at == tomorrow.astimezone(UTC)
    assert second.deliveries[0].delivery_metadata["decision"]["action"] == "defer"
    # the next period is then full too: the third goes the day after
    assert third.deliveries[0].scheduled_at == (tomorrow + timedelta(days=1)).astimezone(UTC)


def test_preferred_and_blocked_providers_are_kept_for_routing(user):
    _pref(user, preferred_providers=["ses"], blocked_providers=["smtp-old"])
    result = notify(user, template_key="outbid", context={"amount": "1"}, channels=["email"])
    meta = result.deliveries[0].delivery_metadata
    assert (meta["preferred_providers"], meta["blocked_providers"]) == (["ses"], ["smtp-old"])
