"""Retention (issue 14, point 9): beat deletes old finished notifications, deliveries and
websocket connections in batches, never an undelivered row, and the admin shows each run;
``/metrics`` reads a bounded window of deliveries instead of grouping the whole table."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from deliveries.models import Notification, NotificationDelivery, RetentionRun
from notifyplatform.tests import api_factories as f

from .conftest import wait_for
from .rows import insert_deliveries


def _old_rows(user):
    """Rows on both sides of every rule: 100 days old (past the 90-day default) or new."""
    now = timezone.now()
    old = now - timedelta(days=100)
    rows = {
        "old_done": insert_deliveries(
            user_id=user.pk, count=30, status="delivered", created_at=old, provider_name="p"
        ),
        "old_failed": insert_deliveries(
            user_id=user.pk, count=5, status="failed", created_at=old, provider_name="p"
        ),
        # a scheduled send (quiet hours, a retry's backoff) made long ago: still owed
        "old_scheduled": insert_deliveries(
            user_id=user.pk,
            count=4,
            status="pending",
            created_at=old,
            scheduled_at=now + timedelta(hours=1),
        ),
        "old_sending": insert_deliveries(
            user_id=user.pk, count=2, status="sending", created_at=old
        ),
        "new_done": insert_deliveries(user_id=user.pk, count=6, status="delivered"),
    }
    # a finished delivery whose notification is still owed another delivery
    mixed = insert_deliveries(user_id=user.pk, count=1, status="delivered", created_at=old)
    notification_id = NotificationDelivery.objects.get(pk=mixed[0]).notification_id
    owed = NotificationDelivery.objects.create(
        notification_id=notification_id,
        delivery_type="sms",
        provider_type="sms",
        provider_name="",
        provider_priority=0,
        recipient="+15550100",
        recipient_type="phone",
        status="pending",
        scheduled_at=now + timedelta(hours=2),
    )
    NotificationDelivery.objects.filter(pk=owed.pk).update(created_at=old)
    rows["old_mixed"] = [*mixed, owed.pk]
    # an invitation-style delivery without a notification, finished and long gone
    loose = insert_deliveries(user_id=user.pk, count=3, status="sent", created_at=old)
    NotificationDelivery.objects.filter(pk__in=loose).update(notification=None)
    rows["old_loose"] = loose
    return rows


def _connections(user):
    old = timezone.now() - timedelta(days=40)
    return {
        "old_closed": [
            f.connection(
                user,
                connection_status="disconnected",
                connected_at=old,
                disconnected_at=old + timedelta(minutes=5),
            ).pk
            for _ in range(3)
        ],
        "old_open": [f.connection(user, connection_status="connected", connected_at=old).pk],
        "new_closed": [
            f.connection(user, connection_status="disconnected", disconnected_at=timezone.now()).pk
        ],
    }


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("purge_queue")
def test_beat_deletes_old_finished_rows_in_batches_and_keeps_the_undelivered(
    user, start_worker, client, make_user
):
    from realtime.models import WebsocketConnection

    rows = _old_rows(user)
    sockets = _connections(user)
    kept_notifications = set(
        NotificationDelivery.objects.filter(
            pk__in=rows["old_scheduled"] + rows["old_sending"] + rows["new_done"]
        ).values_list("notification_id", flat=True)
    )

    # when beat runs the retention task (every second here, 8 rows per transaction)
    start_worker(
        queues="control",
        beat=True,
        NP_RETENTION_INTERVAL_SECONDS="1",
        NP_RETENTION_BATCH_SIZE="8",
        NP_SWEEP_INTERVAL_SECONDS="3600",
    )
    wait_for(lambda: RetentionRun.objects.values("table_name").distinct().count() == 3, timeout=60)

    # then old finished rows are gone, batch by batch ...
    def deleted(table: str) -> int:
        return sum(RetentionRun.objects.filter(table_name=table).values_list("deleted", flat=True))

    # 35 finished notifications + 3 whose only deliveries were detached, 8 a transaction
    wait_for(lambda: deleted("notifications") == 38, timeout=30)
    assert deleted("notification_deliveries") == 3  # the detached ones
    assert deleted("websocket_connections") == 3
    assert RetentionRun.objects.filter(table_name="notifications", batches__gte=5).exists()
    assert set(RetentionRun.objects.values_list("days", flat=True)) == {90, 30}
    assert list(RetentionRun.objects.exclude(error="").values_list("error", flat=True)) == []
    assert not NotificationDelivery.objects.filter(
        pk__in=rows["old_done"] + rows["old_failed"] + rows["old_loose"]
    ).exists()
    # ... and nothing undelivered, nor anything recent, was touched
    for name in ("old_scheduled", "old_sending", "old_mixed", "new_done"):
        assert NotificationDelivery.objects.filter(pk__in=rows[name]).count() == len(rows[name])
    assert kept_notifications <= set(Notification.objects.values_list("pk", flat=True))
    assert set(WebsocketConnection.objects.values_list("pk", flat=True)) == set(
        sockets["old_open"] + sockets["new_closed"]
    )

    # and the admin shows the runs: the days kept and what each deleted
    client.force_login(make_user(email="admin@example.test", is_staff=True, is_superuser=True))
    page = client.get("/admin/deliveries/retentionrun/").content.decode()
    for table in ("notifications", "notification_deliveries", "websocket_connections"):
        assert table in page


@pytest.mark.django_db
def test_a_table_with_zero_days_is_kept(user, settings):
    from deliveries.retention import retention_apply

    settings.NP_RETENTION_NOTIFICATIONS_DAYS = 0
    settings.NP_RETENTION_DELIVERIES_DAYS = 0
    ids = insert_deliveries(
        user_id=user.pk,
        count=3,
        status="delivered",
        created_at=timezone.now() - timedelta(days=1000),
    )

    runs = {run.table_name: run for run in retention_apply()}

    assert (runs["notifications"].deleted, runs["notifications"].cutoff) == (0, None)
    assert NotificationDelivery.objects.filter(pk__in=ids).count() == 3


@pytest.mark.django_db
def test_metrics_count_a_window_of_deliveries_through_an_index(user, client, staff_user):
    old = timezone.now() - timedelta(days=2)
    insert_deliveries(
        user_id=user.pk, count=40, status="delivered", created_at=old, provider_name="pm"
    )
    recent = insert_deliveries(user_id=user.pk, count=3, status="sent", provider_name="pm")
    NotificationDelivery.objects.filter(pk__in=recent).update(
        sent_at=timezone.now() + timedelta(seconds=1)
    )
    client.force_login(staff_user)

    with CaptureQueriesContext(connection) as queries:
        body = client.get("/metrics").content.decode()

    # the recent deliveries are counted; the old ones, outside the window, are not
    assert 'np_deliveries{channel="email",provider="pm",status="sent"} 3.0' in body
    assert 'status="delivered"' not in body
    assert 'np_delivery_send_latency_seconds_count{channel="email"} 3.0' in body
    # and no scrape query reads the whole deliveries table: with sequential scans made
    # prohibitively expensive, each one still plans an index scan
    scans = [q["sql"] for q in queries if '"notification_deliveries"' in q["sql"]]
    assert len(scans) == 2
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        for sql in scans:
            cursor.execute("EXPLAIN " + sql)
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan on notification_deliveries" not in plan, plan
