"""delivery_send and the sweeper, in-process, against real loopback SMTP and HTTP servers."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from deliveries.models import NotificationDelivery
from deliveries.selectors import inbox_list
from deliveries.services import deliveries_sweep, delivery_send, notify
from notifyplatform.testing import free_port

pytestmark = pytest.mark.usefixtures("catalogue")


def _reload(delivery):
    return NotificationDelivery.objects.get(pk=delivery.pk)


def test_email_webhook_and_in_app_are_sent_and_recorded(
    user, pipeline_providers, smtp_server, webhook_receiver, settings
):
    # the sender's own in-app send (a scheduled or rate-limited one takes it); a plain due
    # one notify() writes sent itself (test_inapp_sent_notify.py)
    settings.NP_INAPP_FAST_PATH = False
    sink, _port = smtp_server
    result = notify(
        user,
        template_key="auction_ended",
        context={"auction_title": "Clocks", "winner": "Bob"},
        channels=["email", "webhook", "in_app"],
        webhook_url=webhook_receiver.url,
    )
    outcomes = [delivery_send(d.pk).outcome for d in result.deliveries]
    assert outcomes == ["sent", "sent", "sent"]

    email, webhook, in_app = (_reload(d) for d in result.deliveries)
    assert (email.status, email.provider_name, email.provider_type) == (
        "sent",
        "test-smtp",
        "email",
    )
    assert email.sent_at is not None and email.provider_message_id
    assert email.provider_response["attempts"][0]["ok"] is True
    assert "lease" not in email.delivery_metadata
    [mail] = sink.messages
    assert mail["Subject"] == "Auction completed"
    assert mail["To"] == "alice@example.test"
    assert int(mail["X-Notifyplatform-Delivery"]) == email.pk

    assert (webhook.status, webhook.provider_name) == ("sent", "test-webhook")
    [arrival] = webhook_receiver.arrivals
    assert webhook_receiver.bad_signatures == 0
    assert arrival["webhook_id"] == f"delivery-{webhook.pk}"
    assert arrival["payload"]["data"]["text"] == "Clocks ended. Winner: Bob"
    assert arrival["payload"]["data"]["data"]["context"] == {
        "auction_title": "Clocks",
        "winner": "Bob",
    }

    assert (in_app.status, in_app.provider_name) == ("sent", "test-in-app")
    notification = result.notification
    notification.refresh_from_db()
    assert notification.status == "sent" and notification.sent_at is not None
    assert notification.delivery_attempts == 3
    assert list(inbox_list(user)) == [notification]


def test_running_twice_sends_once(user, pipeline_providers, webhook_receiver):
    result = notify(
        user, title="Hi", message="Once", channels=["webhook"], webhook_url=webhook_receiver.url
    )
    delivery = result.deliveries[0]
    assert delivery_send(delivery.pk).outcome == "sent"
    assert delivery_send(delivery.pk).outcome == "not_pending"
    assert webhook_receiver.by_delivery() == {delivery.pk: 1}


def test_retryable_failure_is_rescheduled_with_backoff_then_fails(
    user, pipeline_providers, settings
):
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.NP_DELIVERY_RETRY_BASE_SECONDS = 10
    settings.NP_DELIVERY_RETRY_CAP_SECONDS = 100
    closed = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: connection refused
    result = notify(user, title="Hi", message="Retry me", channels=["webhook"], webhook_url=closed)
    delivery = result.deliveries[0]
    assert delivery.max_retries == 3

    before = timezone.now()
    assert delivery_send(delivery.pk).outcome == "retry"
    row = _reload(delivery)
    assert (row.status, row.retry_count, row.error_code) == ("pending", 1, "PROVIDER_UNAVAILABLE")
    assert before <= row.scheduled_at <= before + timedelta(seconds=10) + timedelta(seconds=5)
    assert row.delivery_metadata["decision"]["rule"] == "retry"
    # not due yet: a second run does nothing
    if row.scheduled_at > timezone.now():
        assert delivery_send(delivery.pk).outcome == "not_due"

    for expected_retry in (2, 3):
        NotificationDelivery.objects.filter(pk=delivery.pk).update(scheduled_at=timezone.now())
        assert delivery_send(delivery.pk).outcome == "retry"
        assert _reload(delivery).retry_count == expected_retry
    NotificationDelivery.objects.filter(pk=delivery.pk).update(scheduled_at=timezone.now())
    assert delivery_send(delivery.pk).outcome == "failed"
    row = _reload(delivery)
    assert (row.status, row.retry_count, row.error_code) == ("failed", 3, "PROVIDER_UNAVAILABLE")
    assert row.failed_at is not None
    assert row.delivery_metadata["decision"] == {"rule": "max_retries", "max_retries": 3}
    result.notification.refresh_from_db()
    assert result.notification.status == "failed"


def test_permanent_failure_fails_at_once(user, pipeline_providers, webhook_receiver):
    gone = webhook_receiver.url.replace("/hook", "/gone")
    result = notify(user, title="Hi", message="x", channels=["webhook"], webhook_url=gone)
    assert delivery_send(result.deliveries[0].pk).outcome == "failed"
    row = _reload(result.deliveries[0])
    assert (row.status, row.retry_count, row.error_code) == ("failed", 0, "INVALID_RECIPIENT")
    assert row.provider_name == "test-webhook"


def test_no_provider_is_retried_with_the_reason(user, db):
    result = notify(user, title="Hi", message="x", channels=["in_app"])
    assert delivery_send(result.deliveries[0].pk).outcome == "retry"
    assert _reload(result.deliveries[0]).error_code == "NO_PROVIDER"


def test_past_expiry_is_expired_not_sent(user, pipeline_providers, webhook_receiver):
    result = notify(
        user,
        title="Hi",
        message="x",
        channels=["webhook"],
        webhook_url=webhook_receiver.url,
        expires_at=timezone.now() + timedelta(seconds=30),
    )
    delivery = result.deliveries[0]
    NotificationDelivery.objects.filter(pk=delivery.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert delivery_send(delivery.pk).outcome == "expired"
    row = _reload(delivery)
    assert row.status == "expired"
    assert row.delivery_metadata["decision"]["rule"] == "expired"
    assert webhook_receiver.arrivals == []


def test_sweeper_expires_and_releases_dead_leases(
    user, pipeline_providers, webhook_receiver, settings, purge_queue
):
    settings.NP_SWEEP_GRACE_SECONDS = 0
    stale = notify(
        user, title="a", message="b", channels=["webhook"], webhook_url=webhook_receiver.url
    ).deliveries[0]
    old = notify(
        user, title="c", message="d", channels=["webhook"], webhook_url=webhook_receiver.url
    ).deliveries[0]
    # given a delivery whose worker died mid-send (lease ran out) and one past its expiry
    meta = {**stale.delivery_metadata, "lease": {"token": "dead", "until": 0, "worker": "x"}}
    NotificationDelivery.objects.filter(pk=stale.pk).update(
        status="sending", delivery_metadata=meta
    )
    NotificationDelivery.objects.filter(pk=old.pk).update(
        expires_at=timezone.now() - timedelta(minutes=1)
    )
    # when the sweeper runs
    report = deliveries_sweep()
    # then the dead lease is pending again (an attempt counted) and re-enqueued
    assert report == {"released": 1, "expired": 1, "due": 1, "enqueued": 1}
    row = _reload(stale)
    assert (row.status, row.retry_count) == ("pending", 1)
    assert row.delivery_metadata["lease_expired"]["token"] == "dead"
    assert _reload(old).status == "expired"
    # and the re-send carries the same idempotency key as the first try
    assert delivery_send(stale.pk).outcome == "sent"
    assert webhook_receiver.arrivals[0]["webhook_id"] == f"delivery-{stale.pk}"
    assert json.loads(json.dumps(webhook_receiver.by_delivery())) == {str(stale.pk): 1}
