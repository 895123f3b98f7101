"""Status truth: a receipt moves its delivery, and the notification follows its deliveries
by the pipeline's one rule (``notification_status_from``): a bounced or complained email
does not leave its notification ``sent``.

Signed Mailgun callbacks are posted to the real receipt endpoint; the rows are real."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from deliveries.models import Notification, NotificationDelivery
from deliveries.services import notify
from deliveries.services.status import notification_status_from
from providers.models import Provider
from sandbox import DEFAULT_CREDENTIALS
from sandbox.signing import mailgun_signature

pytestmark = pytest.mark.django_db

SIGNING_KEY = DEFAULT_CREDENTIALS["mailgun"]["webhook_signing_key"]

# Mailgun event → (delivery status it becomes, notification status of an email-only one)
CASES = {
    "delivered": ("delivered", "delivered"),
    "failed": ("bounced", "failed"),  # a permanent failure is a bounce
    "complained": ("complained", "failed"),
    "rejected": ("failed", "failed"),
}


@pytest.fixture
def mailgun(monkeypatch):
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", SIGNING_KEY)
    return Provider.objects.create(
        provider_name="mailgun", provider_type="email", provider_class="mailgun"
    )


def _sent_notification(user, channels: list[str]) -> tuple[Notification, NotificationDelivery]:
    """A notification whose email went out through Mailgun (message id ``<pk>@mg``); its
    other channels are sent too."""
    result = notify(user, title="Your order shipped", message="It is on its way", channels=channels)
    for delivery in result.deliveries:
        NotificationDelivery.objects.filter(pk=delivery.pk).update(
            status="sent",
            provider_name="mailgun" if delivery.delivery_type == "email" else "in-app",
            provider_message_id=f"{delivery.pk}@mg",
        )
    Notification.objects.filter(pk=result.notification.pk).update(status="sent")
    email = next(d for d in result.deliveries if d.delivery_type == "email")
    return result.notification, email


def _post_receipt(client, message_id: str, event: str):
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    body = {
        "signature": {
            "timestamp": timestamp,
            "token": token,
            "signature": mailgun_signature(SIGNING_KEY, timestamp, token),
        },
        "event-data": {
            "event": event,
            "severity": "permanent",
            "message": {"headers": {"message-id": f"<{message_id}>"}},
        },
    }
    return client.post(
        "/api/v1/providers/mailgun/events/", json.dumps(body), content_type="application/json"
    )


@pytest.mark.parametrize("event", sorted(CASES))
def test_an_email_only_notification_follows_its_receipt(event, client, user, mailgun):
    delivery_status, notification_status = CASES[event]
    # Given an email-only notification, sent
    notification, email = _sent_notification(user, ["email"])

    # When Mailgun reports the outcome
    response = _post_receipt(client, f"{email.pk}@mg", event)

    # Then the delivery and the notification both show it
    assert response.status_code == 200, response.content
    assert response.json() == {"received": 1, "updated": 1}
    email.refresh_from_db()
    notification.refresh_from_db()
    assert email.status == delivery_status
    assert notification.status == notification_status
    assert notification.status == notification_status_from([email.status])
    if event == "delivered":
        assert notification.delivered_at is not None
    else:
        assert notification.delivered_at is None


def test_a_bounce_after_delivered_moves_the_notification_too(client, user, mailgun):
    notification, email = _sent_notification(user, ["email"])
    _post_receipt(client, f"{email.pk}@mg", "delivered")
    notification.refresh_from_db()
    assert notification.status == "delivered"

    _post_receipt(client, f"{email.pk}@mg", "failed")

    email.refresh_from_db()
    notification.refresh_from_db()
    assert (email.status, notification.status) == ("bounced", "failed")


@pytest.mark.parametrize("event", ["failed", "complained"])
def test_a_bounced_email_beside_a_sent_in_app_leaves_the_notification_sent(
    event, client, user, mailgun
):
    # Given a notification sent in-app and by email: the user has it in the app
    notification, email = _sent_notification(user, ["in_app", "email"])

    _post_receipt(client, f"{email.pk}@mg", event)

    # Then by the one rule (any channel sent → sent) it stays sent
    notification.refresh_from_db()
    email.refresh_from_db()
    assert email.status in ("bounced", "complained")
    assert notification.status == "sent"


def test_a_read_notification_keeps_its_user_status(client, user, mailgun):
    notification, email = _sent_notification(user, ["email"])
    Notification.objects.filter(pk=notification.pk).update(status="read", is_read=True)

    _post_receipt(client, f"{email.pk}@mg", "failed")

    notification.refresh_from_db()
    assert notification.status == "read"
