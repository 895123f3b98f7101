"""notify()'s due in-app delivery is written as sent in its own transaction and published
after commit (notify/inapp_sent.py): no worker round trip before the user sees it, and the
same rows the send path records — exactly once, preferences and routing honoured."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import Notification, NotificationDelivery, UserNotificationPreference
from deliveries.services import delivery_send, notify
from providers.models import Provider
from realtime.models import RealTimeEvent

from .conftest import in_app_record_shape

pytestmark = pytest.mark.usefixtures("catalogue")


@pytest.fixture
def in_app_provider(db) -> Provider:
    return Provider.objects.create(
        provider_name="now-in-app", provider_type="in_app", provider_class="in_app"
    )


def _events(*notifications) -> Counter:
    return Counter(
        RealTimeEvent.objects.filter(
            correlation_id__in=[str(n.pk) for n in notifications],
            event_type="notification.created",
        ).values_list("correlation_id", flat=True)
    )


def _in_app(notification) -> NotificationDelivery:
    return NotificationDelivery.objects.get(notification=notification, delivery_type="in_app")


def test_the_in_app_delivery_is_sent_at_once_and_published_once_after_commit(
    db, in_app_provider, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = notify(user, title="Now", message="in the inbox", channels=["in_app", "email"])
        # nothing is published before the commit
        assert RealTimeEvent.objects.count() == 0
    assert callbacks  # the in-app event and the email's enqueue run on commit

    notification = Notification.objects.get(pk=result.notification.pk)
    in_app = _in_app(notification)
    assert (in_app.status, in_app.provider_name, in_app.provider_type) == (
        "sent",
        "now-in-app",
        "in_app",
    )
    assert in_app.provider_message_id == str(in_app.pk)
    [attempt] = in_app.provider_response["attempts"]
    assert (attempt["provider_name"], attempt["ok"], attempt["provider_message_id"]) == (
        "now-in-app",
        True,
        str(in_app.pk),
    )
    assert in_app.sent_at is not None
    # the email goes the ordinary way
    email = NotificationDelivery.objects.get(notification=notification, delivery_type="email")
    assert email.status == "pending"
    # the notification: in the inbox, one attempt, sent
    assert (notification.status, notification.in_inbox, notification.delivery_attempts) == (
        "sent",
        True,
        1,
    )
    assert notification.sent_at is not None
    # the result handed back says the same as the rows
    returned = {d.delivery_type: d for d in result.deliveries}
    assert (returned["in_app"].pk, returned["in_app"].status) == (in_app.pk, "sent")
    assert (result.notification.status, result.notification.in_inbox) == ("sent", True)
    # one event, naming the delivery
    assert _events(notification) == Counter({str(notification.pk): 1})
    event = RealTimeEvent.objects.get(correlation_id=str(notification.pk))
    assert (event.visibility, event.user_id) == ("private", user.pk)
    assert event.event_metadata["delivery_id"] == in_app.pk
    # and a sender that finds the row (a stray task) leaves it alone
    assert delivery_send(in_app.pk).outcome == "not_pending"


def test_the_rows_are_those_the_send_path_records(
    db, in_app_provider, make_user, settings, django_capture_on_commit_callbacks
):
    now_user, later_user = make_user(), make_user()
    with django_capture_on_commit_callbacks(execute=True):
        fast = notify(now_user, title="T", message="M", channels=["in_app"])
    settings.NP_INAPP_FAST_PATH = False
    with django_capture_on_commit_callbacks(execute=True):
        slow = notify(later_user, title="T", message="M", channels=["in_app"])
        assert _in_app(slow.notification).status == "pending"
        assert delivery_send(slow.deliveries[0].pk).outcome == "sent"

    def shape(result):
        return in_app_record_shape(result.notification.pk)

    assert shape(fast) == shape(slow)
    assert shape(fast)[0] == ("sent", True, 1, True)
    assert _events(fast.notification, slow.notification) == Counter(
        {str(fast.notification.pk): 1, str(slow.notification.pk): 1}
    )


def test_a_repeated_idempotency_key_publishes_nothing_more(
    db, in_app_provider, user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        first = notify(user, title="Once", message="M", channels=["in_app"], idempotency_key="k1")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        again = notify(user, title="Once", message="M", channels=["in_app"], idempotency_key="k1")
    assert (again.created, again.notification.pk) == (False, first.notification.pk)
    assert callbacks == []
    assert _events(first.notification) == Counter({str(first.notification.pk): 1})
    assert NotificationDelivery.objects.filter(notification=first.notification).count() == 1


@pytest.mark.parametrize(
    "case", ["scheduled", "turned_off", "rate_limited", "unhealthy", "expired", "switched_off"]
)
def test_anything_the_send_path_would_decide_keeps_the_ordinary_way(
    case, db, in_app_provider, user, settings, django_capture_on_commit_callbacks
):
    extra = {}
    now = timezone.now()
    if case == "scheduled":
        extra["scheduled_at"] = now + timedelta(hours=1)
    elif case == "turned_off":
        UserNotificationPreference.objects.create(
            user=user, invitation_type="*", delivery_method="in_app", is_enabled=False
        )
    elif case == "rate_limited":
        Provider.objects.filter(pk=in_app_provider.pk).update(rate_limit_per_minute=1000)
    elif case == "unhealthy":
        Provider.objects.filter(pk=in_app_provider.pk).update(is_healthy=False)
    elif case == "expired":
        extra["expires_at"] = now - timedelta(seconds=1)
    elif case == "switched_off":
        settings.NP_INAPP_FAST_PATH = False
    with django_capture_on_commit_callbacks(execute=True):
        result = notify(user, title="Later", message="M", channels=["in_app"], **extra)
    delivery = _in_app(result.notification)
    expected = "skipped" if case == "turned_off" else "pending"
    assert (delivery.status, delivery.provider_name) == (expected, "")
    assert Notification.objects.get(pk=result.notification.pk).in_inbox is False
    assert _events(result.notification) == Counter()
