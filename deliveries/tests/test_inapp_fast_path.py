"""The in-app fast path of notify_many(): a due in-app delivery is written as sent inside the
fan-out's transaction and published with its group after commit — exactly once, with the
preferences, the decision trace, the inbox flag and the status rules of the send path."""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection

from deliveries.models import Notification, NotificationDelivery, UserNotificationPreference
from deliveries.services import notify_many
from deliveries.services.sending import deliveries_send
from providers.models import Provider
from realtime.models import RealTimeEvent

from .conftest import in_app_record_shape

pytestmark = pytest.mark.usefixtures("catalogue")


@pytest.fixture
def in_app_provider(db) -> Provider:
    return Provider.objects.create(
        provider_name="fast-in-app", provider_type="in_app", provider_class="in_app"
    )


@pytest.fixture
def recipients(make_user):
    users = [make_user() for _ in range(6)]
    # the last one turned in-app off
    UserNotificationPreference.objects.create(
        user=users[-1], invitation_type="*", delivery_method="in_app", is_enabled=False
    )
    return users


def _fan_out(users, **extra):
    return notify_many(
        users,
        title="Fast",
        message="straight to the inbox",
        channels=["in_app", "email"],
        idempotency_prefix="fast-test",
        **extra,
    )


def _events(notification_ids) -> Counter:
    return Counter(
        RealTimeEvent.objects.filter(
            correlation_id__in=[str(pk) for pk in notification_ids],
            event_type="notification.created",
        ).values_list("correlation_id", flat=True)
    )


def test_due_in_app_rows_are_sent_in_the_fan_out_and_published_once_after_commit(
    db, in_app_provider, recipients, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        results = _fan_out(recipients)
        # nothing is published before the commit
        assert RealTimeEvent.objects.count() == 0
    assert callbacks  # the group publish runs on commit
    enabled = recipients[:-1]
    by_user = {r.notification.user_id: r for r in results}

    for user in enabled:
        notification = Notification.objects.get(pk=by_user[user.pk].notification.pk)
        [in_app] = NotificationDelivery.objects.filter(
            notification=notification, delivery_type="in_app"
        )
        # exactly one sent in-app delivery, as the send path records it
        assert in_app.status == "sent"
        assert in_app.sent_at is not None
        assert (in_app.provider_name, in_app.provider_type) == ("fast-in-app", "in_app")
        assert in_app.provider_message_id == str(in_app.pk)
        assert in_app.provider_response["response"] == {"stored": True, "user_id": str(user.pk)}
        [attempt] = in_app.provider_response["attempts"]
        assert (attempt["provider_name"], attempt["ok"]) == ("fast-in-app", True)
        assert "lease" not in in_app.delivery_metadata
        # the email still goes the ordinary way: pending for a worker
        email = NotificationDelivery.objects.get(notification=notification, delivery_type="email")
        assert email.status == "pending"
        # the notification: in the inbox, one attempt, status from both deliveries
        assert notification.in_inbox is True
        assert notification.delivery_attempts == 1
        # sent as soon as any channel is (deliveries.services.status), the email still open
        assert notification.status == "sent"
        assert notification.sent_at is not None
        # the instances handed back say the same
        returned = {d.delivery_type: d for d in by_user[user.pk].deliveries}
        assert returned["in_app"].status == "sent"
        assert returned["in_app"].provider_name == "fast-in-app"

    # each event published exactly once, for the enabled users only
    enabled_ids = [by_user[u.pk].notification.pk for u in enabled]
    assert _events(enabled_ids) == Counter({str(pk): 1 for pk in enabled_ids})
    event = RealTimeEvent.objects.get(correlation_id=str(enabled_ids[0]))
    assert (event.visibility, event.user_id) == ("private", enabled[0].pk)
    in_app_id = NotificationDelivery.objects.get(
        notification_id=enabled_ids[0], delivery_type="in_app"
    ).pk
    assert event.event_metadata["delivery_id"] == in_app_id

    # preferences: the user who turned in-app off got no in-app delivery sent and no event
    off = by_user[recipients[-1].pk].notification
    assert not NotificationDelivery.objects.filter(
        notification=off, delivery_type="in_app", status="sent"
    ).exists()
    assert Notification.objects.get(pk=off.pk).in_inbox is False
    assert _events([off.pk]) == Counter()


def test_a_rerun_and_a_sender_pass_change_nothing(
    db, in_app_provider, recipients, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = _fan_out(recipients)
    in_app = NotificationDelivery.objects.filter(delivery_type="in_app", status="sent")
    before = {d.pk: d.updated_at for d in in_app}
    assert len(before) == 5
    # the same fan-out again (a resumed batch): nothing new written or published
    with django_capture_on_commit_callbacks(execute=True):
        again = _fan_out(recipients)
    assert [r.created for r in again] == [False] * 6
    assert NotificationDelivery.objects.filter(delivery_type="in_app").count() == 6
    ids = [r.notification.pk for r in first]
    assert set(_events(ids).values()) == {1}
    # a worker handed the ids (a stray message) cannot claim a row that is already sent
    summaries = deliveries_send(list(before))
    assert summaries == []
    assert {d.pk: d.updated_at for d in in_app} == before


def test_the_ordinary_path_records_the_same_rows(
    db, in_app_provider, make_user, settings, django_capture_on_commit_callbacks
):
    fast_user, slow_user = make_user(), make_user()
    with django_capture_on_commit_callbacks(execute=True):
        [fast] = notify_many([fast_user], title="T", message="M", channels=["in_app"])
    settings.NP_INAPP_FAST_PATH = False
    with django_capture_on_commit_callbacks(execute=True):
        [slow] = notify_many([slow_user], title="T", message="M", channels=["in_app"])
        assert NotificationDelivery.objects.get(notification=slow.notification).status == "pending"
        deliveries_send([slow.deliveries[0].pk])

    def shape(result):
        return in_app_record_shape(result.notification.pk)

    assert shape(fast) == shape(slow)
    assert shape(fast)[0] == ("sent", True, 1, True)
    assert _events([fast.notification.pk, slow.notification.pk]) == Counter(
        {str(fast.notification.pk): 1, str(slow.notification.pk): 1}
    )


def test_a_rate_limited_in_app_provider_keeps_the_ordinary_path(
    db, in_app_provider, recipients, django_capture_on_commit_callbacks
):
    Provider.objects.filter(pk=in_app_provider.pk).update(rate_limit_per_minute=1000)
    with django_capture_on_commit_callbacks(execute=True):
        _fan_out(recipients[:2])
    statuses = set(
        NotificationDelivery.objects.filter(delivery_type="in_app").values_list("status", flat=True)
    )
    assert statuses == {"pending"}
    assert RealTimeEvent.objects.count() == 0


def _updates() -> tuple[int, int]:
    """Row updates this transaction made to notifications and deliveries so far."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_stat_get_xact_tuples_updated('notifications'::regclass),"
            " pg_stat_get_xact_tuples_updated('notification_deliveries'::regclass)"
        )
        return cursor.fetchone()


def test_each_row_is_written_once(db, in_app_provider, recipients):
    """The notification goes in with in_inbox already set, so the inbox trigger finds
    nothing to change, and no claim, record or refresh touches the rows again: the
    fan-out inserts and updates nothing."""
    before = _updates()
    notify_many(recipients[:3], title="Once", message="one version", channels=["in_app"])
    assert NotificationDelivery.objects.filter(status="sent").count() == 3
    assert Notification.objects.filter(in_inbox=True).count() == 3
    assert _updates() == before


def test_events_go_out_in_groups_that_each_take_the_ordering_lock_once(
    db, in_app_provider, make_user, settings, django_capture_on_commit_callbacks
):
    """Each group holds the platform's event-ordering lock for its insert: groups of
    NP_INAPP_PUBLISH_GROUP keep that hold short for every other publish."""
    from django.test.utils import CaptureQueriesContext

    settings.NP_INAPP_PUBLISH_GROUP = 2
    users = [make_user() for _ in range(5)]
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        results = _fan_out(users)
    locks = [q for q in queries if "pg_advisory_xact_lock" in q["sql"]]
    assert len(locks) == 3  # 2 + 2 + 1
    ids = [r.notification.pk for r in results]
    assert _events(ids) == Counter({str(pk): 1 for pk in ids})
    # and in one sequence, in the order of the fan-out
    seqs = [
        RealTimeEvent.objects.get(correlation_id=str(pk)).sequence_number for pk in ids
    ]
    assert seqs == sorted(seqs)
