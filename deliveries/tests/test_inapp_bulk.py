"""The in-app bulk path: payloads of many notifications in one query, identical to the API's,
and a recorded group's events published together exactly as one by one would."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries.models import Notification
from deliveries.payloads import inbox_payload, inbox_payloads
from deliveries.services import notify
from deliveries.services.sending import publish_in_app, publish_in_app_groups
from realtime.models import RealTimeEvent

pytestmark = pytest.mark.usefixtures("catalogue")


def _auction(user):
    from auctions.models import Auction

    return Auction.objects.create(
        title="Lamp",
        seller=user,
        auction_type="english",
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(hours=1),
    )


def _notifications(user, other_user) -> list[Notification]:
    now = timezone.now()
    plain = notify(user, title="Hi", message="plain", channels=["in_app"]).notification
    rich = notify(
        other_user,
        title="Rich",
        message="with everything",
        channels=["in_app"],
        priority="urgent",
        action_url="https://example.test/a",
        action_label="Open",
        metadata={"k": [1, "two", None], "nested": {"x": 1.5}},
        expires_at=now + timedelta(days=1),
        scheduled_at=now + timedelta(minutes=5),
        auction=_auction(other_user),
    ).notification
    Notification.objects.filter(pk=rich.pk).update(
        is_read=True, read_at=now, sent_at=now, rich_content={"blocks": [{"t": "p"}]}
    )
    return [plain, rich]


def test_payloads_of_many_equal_the_serializers_with_one_query(db, user, other_user):
    ids = [n.pk for n in _notifications(user, other_user)]

    with CaptureQueriesContext(connection) as queries:
        payloads = inbox_payloads(ids)

    assert len(queries) == 1
    for notification in Notification.objects.filter(pk__in=ids):
        expected = inbox_payload(notification)
        assert payloads[notification.pk] == expected
        # same keys in the same order: the event's JSON text is the same too
        assert json.dumps(payloads[notification.pk]) == json.dumps(expected)
    assert inbox_payloads([]) == {}


def _comparable(event: RealTimeEvent) -> dict:
    return {
        "event_type": event.event_type,
        "category": event.event_category,
        "visibility": event.visibility,
        "user_id": event.user_id,
        "auction_id": event.auction_id,
        "priority": event.priority,
        "correlation_id": event.correlation_id,
        "data": event.event_data,
        "topics": event.broadcast_channels,
    }


def test_a_group_publishes_what_publish_in_app_would_in_delivery_order(
    transactional_db, user, other_user
):
    notifications = _notifications(user, other_user)
    published = [(1000 + i, n.pk) for i, n in enumerate(notifications)]

    for delivery_id, notification_id in published:
        publish_in_app(delivery_id, notification_id)
    one_by_one = list(RealTimeEvent.objects.order_by("sequence_number"))
    RealTimeEvent.objects.all().delete()

    publish_in_app_groups(published)
    together = list(RealTimeEvent.objects.order_by("sequence_number"))

    assert [e.event_metadata for e in together] == [{"delivery_id": d} for d, _ in published]
    assert [_comparable(e) for e in together] == [_comparable(e) for e in one_by_one]
    assert together[1].priority == "critical" and together[1].auction_id is not None
    assert together[1].user_id == other_user.pk
    assert all(e.published_at is not None for e in together)  # fanned out after commit
    seqs = [e.sequence_number for e in together]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_a_notification_deleted_before_its_group_is_published_is_skipped(
    transactional_db, user, other_user
):
    kept, gone = _notifications(user, other_user)
    Notification.objects.filter(pk=gone.pk).delete()

    publish_in_app_groups([(1, kept.pk), (2, gone.pk)])

    events = list(RealTimeEvent.objects.all())
    assert [(e.correlation_id, e.event_metadata) for e in events] == [
        (str(kept.pk), {"delivery_id": 1})
    ]
