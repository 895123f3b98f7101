"""The bulk paths: notify_many() writes exactly what notify() writes (COPY, preferences in
bulk, idempotency), and the batch sender sends each delivery once with concurrent claimers."""

from __future__ import annotations

import threading
from datetime import time
from typing import Any

import pytest
from django.db import connection, connections

from deliveries.models import Notification, NotificationDelivery, UserNotificationPreference
from deliveries.services import notify, notify_many
from deliveries.services.sending import deliveries_send, deliveries_send_batch
from users.models import User

pytestmark = pytest.mark.usefixtures("catalogue")

CONTEXT = {
    "inviter_name": "Alice",
    "article_title": "City opens new library",
    "invitation_url": "https://example.test/i/def456",
}
N_SKIP = {"id", "idempotency_key", "created_at", "updated_at"}
D_SKIP = {"id", "notification_id", "created_at", "updated_at", "scheduled_at"}


def _values(obj: Any, skip: set[str]) -> dict[str, Any]:
    return {
        f.attname: getattr(obj, f.attname)
        for f in type(obj)._meta.concrete_fields
        if f.attname not in skip
    }


def _rows(notification: Notification) -> tuple[dict, list[dict]]:
    notification.refresh_from_db()
    deliveries = list(NotificationDelivery.objects.filter(notification=notification).order_by("id"))
    shown = []
    for d in deliveries:
        values = _values(d, D_SKIP)
        deferred = (d.delivery_metadata or {}).get("decision", {}).get("rule") == "quiet_hours"
        values["scheduled_at"] = d.scheduled_at if deferred else "now"
        shown.append(values)
    return _values(notification, N_SKIP), shown


@pytest.fixture
def mixed_users(make_user) -> list[User]:
    """A plain user, an email opt-out, all-day in-app quiet hours, an unusable email, and a
    user in another locale and region."""
    plain = make_user()
    opted_out = make_user()
    quiet = make_user(timezone="Europe/Berlin")
    no_email = make_user(email="not-an-email")
    other = make_user(locale="pt-BR", region="eu")
    UserNotificationPreference.objects.create(
        user=opted_out, invitation_type="news_feed", delivery_method="email", is_enabled=False
    )
    UserNotificationPreference.objects.create(
        user=quiet,
        invitation_type="*",
        delivery_method="in_app",
        quiet_hours_start=time(0, 0),
        quiet_hours_end=time(23, 59),
        preferred_providers=["p1"],
    )
    return [plain, opted_out, quiet, no_email, other]


def test_bulk_rows_are_the_rows_notify_writes(mixed_users):
    # given the same input through notify() one by one and through notify_many()
    kwargs = {"template_key": "news_feed", "context": CONTEXT, "channels": ["in_app", "email"]}
    singles = [notify(u, idempotency_key=f"single:{u.pk}", **kwargs) for u in mixed_users]
    bulk = notify_many(mixed_users, idempotency_prefix="bulk", **kwargs)

    # then every notification and delivery row is the same, field by field
    assert [r.created for r in bulk] == [True] * 5
    for single, many, user in zip(singles, bulk, mixed_users, strict=True):
        assert many.notification.idempotency_key == f"bulk:{user.pk}"
        assert _rows(many.notification) == _rows(single.notification)
    # and the skips and deferrals record their rules
    statuses = [[d.status for d in r.deliveries] for r in bulk]
    assert statuses == [
        ["pending", "pending"],
        ["pending", "skipped"],
        ["pending", "pending"],
        ["pending", "skipped"],
        ["pending", "pending"],
    ]
    assert bulk[1].deliveries[1].delivery_metadata["decision"]["rule"] == "opt_out"
    assert bulk[2].deliveries[0].delivery_metadata["decision"]["rule"] == "quiet_hours"
    assert bulk[2].deliveries[0].delivery_metadata["preferred_providers"] == ["p1"]
    assert bulk[3].deliveries[1].delivery_metadata["decision"]["rule"] == "no_address"


def test_bulk_push_rows_keep_the_subscription_notify_keeps(make_user):
    # given a web-push subscription passed in the call's metadata, and users with no push row
    users = [make_user(), make_user()]
    subscription = {"endpoint": "https://push.example.test/s/1", "keys": {"p256dh": "k"}}
    kwargs = {
        "title": "Hi",
        "message": "Hello",
        "channels": ["push"],
        "metadata": {"push_subscription": subscription},
    }
    singles = [notify(u, idempotency_key=f"single:{u.pk}", **kwargs) for u in users]
    bulk = notify_many(users, idempotency_prefix="bulk", **kwargs)

    # then the bulk rows are the rows notify() writes, the subscription included
    for single, many in zip(singles, bulk, strict=True):
        assert _rows(many.notification) == _rows(single.notification)
        assert many.deliveries[0].delivery_metadata["subscription"] == subscription
        stored = NotificationDelivery.objects.get(pk=many.deliveries[0].pk)
        assert stored.delivery_metadata["subscription"] == subscription


def test_returned_objects_are_the_stored_rows(mixed_users):
    results = notify_many(mixed_users, title="Hi", message="Hello", channels=["in_app", "email"])

    for result in results:
        stored = Notification.objects.get(pk=result.notification.pk)
        assert _values(result.notification, {"created_at", "updated_at"}) == _values(
            stored, {"created_at", "updated_at"}
        )
        for delivery in result.deliveries:
            row = NotificationDelivery.objects.get(pk=delivery.pk)
            assert _values(delivery, {"created_at", "updated_at"}) == _values(
                row, {"created_at", "updated_at"}
            )
        assert result.notification.user == result.notification.user  # cached, no query


def test_rerunning_the_same_prefix_creates_nothing(mixed_users):
    first = notify_many(mixed_users, idempotency_prefix="job-7", title="T", message="M")
    counts = (Notification.objects.count(), NotificationDelivery.objects.count())

    again = notify_many(
        mixed_users + mixed_users[:2], idempotency_prefix="job-7", title="T", message="M"
    )

    assert (Notification.objects.count(), NotificationDelivery.objects.count()) == counts
    assert [r.created for r in again] == [False] * 7
    assert [r.notification.pk for r in again] == [r.notification.pk for r in first] + [
        first[0].notification.pk,
        first[1].notification.pk,
    ]
    assert [[d.pk for d in r.deliveries] for r in again[:5]] == [
        [d.pk for d in r.deliveries] for r in first
    ]


def test_a_repeated_recipient_in_one_call_gets_one_notification(make_user):
    user = make_user()

    results = notify_many([user, user], idempotency_prefix="dup", title="T", message="M")

    assert [r.created for r in results] == [True, False]
    assert results[0].notification.pk == results[1].notification.pk
    assert Notification.objects.filter(user=user).count() == 1


def test_frequency_capped_recipients_follow_notify(make_user):
    # given a user allowed one email a day (over the cap: skip) and one without a cap
    capped, free = make_user(), make_user()
    UserNotificationPreference.objects.create(
        user=capped, invitation_type="*", delivery_method="email", frequency_limit=1
    )

    results = notify_many([capped, free, capped], title="T", message="M", channels=["email"])

    assert [r.deliveries[0].status for r in results] == ["pending", "pending", "skipped"]
    assert results[2].deliveries[0].delivery_metadata["decision"]["rule"] == "frequency_cap"


def test_query_count_is_constant(make_user, django_assert_max_num_queries):
    users = [User(email=f"bulk{n}@example.test") for n in range(1000)]
    User.objects.bulk_create(users)
    kwargs = {"template_key": "news_feed", "context": CONTEXT, "channels": ["in_app", "email"]}

    # 11th: the chunk's suppression lookup; 12th: the in-app provider (the fast path);
    # 13th and 14th: the inbox trigger set aside around the deliveries' COPY
    with django_assert_max_num_queries(14):
        results = notify_many(users, idempotency_prefix="q", **kwargs)

    assert len(results) == 1000
    assert NotificationDelivery.objects.count() == 2000


def test_address_only_recipients_and_bad_input(make_user):
    from deliveries.errors import NotifyError
    from deliveries.types import Recipient

    user = make_user()
    results = notify_many(
        [user, Recipient(email="guest@example.test")], title="T", message="M", channels=["email"]
    )
    assert results[0].notification is not None
    assert results[1].notification is None
    assert results[1].deliveries[0].recipient == "guest@example.test"

    with pytest.raises(NotifyError) as caught:
        notify_many([user], title="T", message="M", channels=["fax"])
    assert caught.value.field == "channels"
    assert Notification.objects.count() == 1


# --------------------------------------------------------------------------------------------
# Batch sender
# --------------------------------------------------------------------------------------------


@pytest.fixture
def committed(transactional_db):
    """Rows must be committed for the second claimer's connection to see them."""


def test_batch_sender_sends_each_delivery_once_with_two_claimers(
    committed, make_user, pipeline_providers, webhook_receiver
):
    # given 300 due webhook deliveries
    users = [make_user() for _ in range(3)]
    results = notify_many(
        users * 100, title="T", message="M", channels=["webhook"], webhook_url=webhook_receiver.url
    )
    ids = [r.deliveries[0].pk for r in results]

    # when two threads (two connections) claim and send batches of 25 until nothing is due
    outcomes: list[list] = [[], []]

    def claimer(n: int) -> None:
        try:
            for _ in range(200):  # bounded: 300 rows need 12 rounds of 25
                outcomes[n] += deliveries_send_batch(None, limit=25)
                if not NotificationDelivery.objects.filter(status="pending").exists():
                    break
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)

    # then each delivery was sent once, arrived once, and both claimers did work
    assert {(s.outcome, s.detail) for part in outcomes for s in part} == {("sent", "test-webhook")}
    sent = [s.delivery_id for part in outcomes for s in part]
    assert sorted(sent) == sorted(ids)
    assert all(outcomes)
    assert webhook_receiver.by_delivery() == {delivery_id: 1 for delivery_id in ids}
    assert set(
        NotificationDelivery.objects.filter(pk__in=ids).values_list("status", flat=True)
    ) == {"sent"}
    assert set(Notification.objects.values_list("status", flat=True)) == {"sent"}
    assert set(Notification.objects.values_list("delivery_attempts", flat=True)) == {1}


def test_batch_send_records_failures_and_skips_what_is_not_due(
    committed, make_user, pipeline_providers, webhook_receiver
):
    from datetime import timedelta

    from django.utils import timezone

    user = make_user()
    ok = notify(
        user, title="T", message="M", channels=["webhook"], webhook_url=webhook_receiver.url
    )
    gone = notify(
        user,
        title="T",
        message="M",
        channels=["webhook"],
        webhook_url=webhook_receiver.url + "/gone",
    )
    later = notify(
        user,
        title="T",
        message="M",
        channels=["webhook"],
        webhook_url=webhook_receiver.url,
        scheduled_at=timezone.now() + timedelta(hours=1),
    )
    ids = [r.deliveries[0].pk for r in (ok, gone, later)]

    summaries = {s.delivery_id: s.outcome for s in deliveries_send(ids)}

    assert summaries == {ids[0]: "sent", ids[1]: "failed"}
    rows = {d.pk: d for d in NotificationDelivery.objects.filter(pk__in=ids)}
    assert rows[ids[0]].status == "sent"
    assert rows[ids[0]].provider_name == "test-webhook"
    assert "lease" not in rows[ids[0]].delivery_metadata
    assert rows[ids[1]].status == "failed"
    assert rows[ids[1]].error_code == "INVALID_RECIPIENT"
    assert rows[ids[2]].status == "pending"
    assert webhook_receiver.by_delivery() == {ids[0]: 1}
    assert connection.connection is not None


def test_batch_sender_publishes_one_in_app_event_per_sent_delivery(
    committed, make_user, pipeline_providers, settings
):
    # given 40 due in-app deliveries (sent in one claim, published as one group), left
    # pending for the sender (notify_many's in-app fast path off)
    from realtime.models import RealTimeEvent

    settings.NP_INAPP_FAST_PATH = False
    users = [make_user() for _ in range(4)]
    results = notify_many(users * 10, title="T", message="M", channels=["in_app"])
    ids = [d.pk for r in results for d in r.deliveries if d.status == "pending"]
    assert len(ids) == 40
    RealTimeEvent.objects.all().delete()

    # when the batch sender sends them
    summaries = deliveries_send(ids)

    # then each was sent and has exactly one private event for its own user
    assert {s.outcome for s in summaries} == {"sent"}
    events = list(RealTimeEvent.objects.filter(event_type="notification.created"))
    assert sorted(e.event_metadata["delivery_id"] for e in events) == sorted(ids)
    owners = dict(
        NotificationDelivery.objects.filter(pk__in=ids).values_list("id", "notification__user_id")
    )
    assert all(e.user_id == owners[e.event_metadata["delivery_id"]] for e in events)
    assert all(e.visibility == "private" for e in events)


@pytest.mark.django_db(transaction=True)
def test_a_fan_out_racing_another_for_the_same_keys_writes_each_user_once(make_user, caplog):
    """Two notify_many() calls with the same prefix, the second planned while the first's
    rows are still uncommitted: the second's COPY meets the first's keys, falls back to
    INSERT ... ON CONFLICT DO NOTHING and reports those users as already notified."""
    caplog.set_level("INFO", logger="deliveries")
    users = [make_user() for _ in range(30)]
    first_written = threading.Event()
    release_first = threading.Event()
    outcomes: dict[str, list] = {}

    def first() -> None:
        try:
            from django.db import transaction

            with transaction.atomic():
                outcomes["first"] = notify_many(
                    users, idempotency_prefix="race", template_key="news_feed",
                    context=CONTEXT, channels=["in_app", "email"],
                )
                first_written.set()
                assert release_first.wait(30)
        finally:
            connections.close_all()

    def second() -> None:
        try:
            assert first_written.wait(30)
            outcomes["second"] = notify_many(
                users, idempotency_prefix="race", template_key="news_feed",
                context=CONTEXT, channels=["in_app", "email"],
            )
        finally:
            connections.close_all()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    # the second's COPY waits on the first's uncommitted keys; then the first commits
    assert first_written.wait(30)
    for _ in range(300):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                break
        threading.Event().wait(0.05)
    else:
        pytest.fail("the second fan-out never waited on the first's keys")
    release_first.set()
    for thread in threads:
        thread.join(60)

    assert "using ON CONFLICT" in caplog.text  # the fallback path ran
    assert [r.created for r in outcomes["first"]] == [True] * 30
    assert [r.created for r in outcomes["second"]] == [False] * 30
    # the second's results name the rows the first wrote
    assert [r.notification.pk for r in outcomes["second"]] == [
        r.notification.pk for r in outcomes["first"]
    ]
    assert Notification.objects.filter(idempotency_key__startswith="race:").count() == 30
    assert NotificationDelivery.objects.filter(
        notification__idempotency_key__startswith="race:"
    ).count() == sum(len(r.deliveries) for r in outcomes["first"])
