"""The inbox flag: ``notifications.in_inbox`` follows the in-app delivery, whatever path sends
or edits it (the trigger of migration 0004), and the inbox reads only that flag."""

from __future__ import annotations

import pytest
from django.db import connection

from deliveries.models import Notification, NotificationDelivery
from deliveries.selectors import inbox_list, inbox_unread_count
from deliveries.services import delivery_send, notify, notify_many
from deliveries.services.sending import deliveries_send

pytestmark = pytest.mark.usefixtures("catalogue")


def _in_app(result):
    return next(d for d in result.deliveries if d.delivery_type == "in_app")


def test_in_app_delivery_sent_puts_the_notification_in_the_inbox(
    user, pipeline_providers, settings
):
    settings.NP_INAPP_FAST_PATH = False  # a pending row for the single sender
    result = notify(user, title="Hi", message="You have mail", channels=["in_app"])
    assert (inbox_unread_count(user), list(inbox_list(user))) == (0, [])  # pending: not yet

    assert delivery_send(_in_app(result).pk).outcome == "sent"

    result.notification.refresh_from_db()
    assert result.notification.in_inbox is True
    assert list(inbox_list(user)) == [result.notification]
    assert inbox_unread_count(user) == 1

    Notification.objects.filter(pk=result.notification.pk).update(is_read=True)
    assert inbox_unread_count(user) == 0
    assert list(inbox_list(user)) == [result.notification]  # read, still listed
    Notification.objects.filter(pk=result.notification.pk).update(is_archived=True)
    assert list(inbox_list(user)) == []
    assert list(inbox_list(user, include_archived=True)) == [result.notification]


def test_batch_sender_fills_each_recipients_inbox(make_user, pipeline_providers, settings):
    settings.NP_INAPP_FAST_PATH = False  # pending rows for the batch sender
    users = [make_user() for i in range(3)]
    results = notify_many(users, title="Hi", message="All of you", channels=["in_app"])
    ids = [_in_app(r).pk for r in results]
    assert [inbox_unread_count(u) for u in users] == [0, 0, 0]

    assert sorted(s.outcome for s in deliveries_send(ids)) == ["sent"] * 3

    assert [inbox_unread_count(u) for u in users] == [1, 1, 1]
    assert Notification.objects.filter(in_inbox=True).count() == 3


def test_fan_out_fast_path_fills_each_recipients_inbox_at_once(make_user, pipeline_providers):
    users = [make_user() for i in range(3)]
    notify_many(users, title="Hi", message="All of you", channels=["in_app"])
    assert [inbox_unread_count(u) for u in users] == [1, 1, 1]
    assert Notification.objects.filter(in_inbox=True).count() == 3


def test_notify_puts_a_due_in_app_notification_in_the_inbox_at_once(user, pipeline_providers):
    result = notify(user, title="Hi", message="Now", channels=["in_app"])
    assert list(inbox_list(user)) == [result.notification]
    assert inbox_unread_count(user) == 1
    assert Notification.objects.get(pk=result.notification.pk).in_inbox is True


def test_other_channels_never_reach_the_inbox(user, pipeline_providers, webhook_receiver):
    result = notify(
        user, title="Hook", message="x", channels=["webhook"], webhook_url=webhook_receiver.url
    )
    assert delivery_send(result.deliveries[0].pk).outcome == "sent"
    result.notification.refresh_from_db()
    assert result.notification.status == "sent" and result.notification.in_inbox is False
    assert inbox_unread_count(user) == 0


def test_flag_follows_status_edits_and_raw_inserts(user, pipeline_providers):
    """An operator edit (admin, SQL) that takes the delivery back out of sent/delivered takes
    the notification out of the inbox; a delivery inserted as delivered puts it in."""
    result = notify(user, title="Hi", message="x", channels=["in_app"])
    delivery = _in_app(result)
    delivery_send(delivery.pk)
    NotificationDelivery.objects.filter(pk=delivery.pk).update(status="delivered")
    assert inbox_unread_count(user) == 1  # sent → delivered: still in
    NotificationDelivery.objects.filter(pk=delivery.pk).update(status="failed")
    assert inbox_unread_count(user) == 0

    other = notify(user, title="Imported", message="y", channels=["email"]).notification
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO notification_deliveries (notification_id, delivery_type, provider_type,"
            " provider_name, provider_priority, recipient, recipient_type, status, retry_count,"
            " max_retries, created_at, updated_at) VALUES (%s, 'in_app', 'in_app', 'import', 0,"
            " %s, 'user', 'delivered', 0, 3, now(), now())",
            [other.pk, str(user.pk)],
        )
    assert list(inbox_list(user)) == [other]


def test_trigger_steps_aside_only_where_the_transaction_keeps_the_flag(
    user, pipeline_providers, settings
):
    """The batch sender sets ``in_inbox`` in its own notification UPDATE and says so with a
    transaction-local setting; anywhere else the trigger still keeps the flag."""
    from django.db import transaction

    settings.NP_INAPP_FAST_PATH = False  # a pending row, sent by hand below
    result = notify(user, title="Hi", message="x", channels=["in_app"])
    delivery = _in_app(result)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL notifyplatform.inbox_synced = 'on'")
        NotificationDelivery.objects.filter(pk=delivery.pk).update(status="sent")
        assert inbox_unread_count(user) == 0  # left to the transaction
        cursor.execute("SET LOCAL notifyplatform.inbox_synced = 'off'")  # as the sender does
    NotificationDelivery.objects.filter(pk=delivery.pk).update(status="failed")
    NotificationDelivery.objects.filter(pk=delivery.pk).update(status="sent")
    assert inbox_unread_count(user) == 1  # the trigger is back


def test_batch_record_inside_a_callers_transaction_leaves_the_trigger_on(
    user, pipeline_providers, settings
):
    """pytest-django runs each test in a transaction, so the batch path below runs nested,
    as it would under a caller's atomic block: the trigger must work again afterwards."""
    settings.NP_INAPP_FAST_PATH = False  # pending rows for the batch sender
    first = notify(user, title="A", message="x", channels=["in_app"])
    assert [s.outcome for s in deliveries_send([_in_app(first).pk])] == ["sent"]
    assert inbox_unread_count(user) == 1
    second = notify(user, title="B", message="y", channels=["in_app"])
    NotificationDelivery.objects.filter(pk=_in_app(second).pk).update(status="sent")
    assert inbox_unread_count(user) == 2
