"""ESP engagement receipts (opened, clicked, unsubscribed) from Mailgun, SendGrid and
Postmark, signed and posted to the real receipt endpoint: they update the same fields as our
own tracked links, each event counts once, and forged ones change nothing."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid

import pytest

from deliveries.models import (
    Notification,
    NotificationDelivery,
    Suppression,
    UserNotificationPreference,
)
from deliveries.services import notify
from deliveries.types import Recipient
from providers.models import Provider
from sandbox import DEFAULT_CREDENTIALS
from sandbox.signing import (
    mailgun_signature,
    sendgrid_private_key,
    sendgrid_public_key_b64,
    sendgrid_signature,
)

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalogue")]

SIGNING_KEY = DEFAULT_CREDENTIALS["mailgun"]["webhook_signing_key"]
_CONTEXT = {"auction_title": "Clocks", "winner": "Bob"}


@pytest.fixture
def esps(monkeypatch):
    monkeypatch.setenv("MAILGUN_WEBHOOK_SIGNING_KEY", SIGNING_KEY)
    monkeypatch.setenv(
        "SENDGRID_WEBHOOK_PUBLIC_KEY", sendgrid_public_key_b64(sendgrid_private_key())
    )
    monkeypatch.setenv("POSTMARK_WEBHOOK_USERNAME", "pm-user")
    monkeypatch.setenv("POSTMARK_WEBHOOK_PASSWORD", "pm-pass")
    for kind in ("mailgun", "sendgrid", "postmark"):
        Provider.objects.create(provider_name=kind, provider_type="email", provider_class=kind)


def _sent(recipient, provider: str = "mailgun") -> tuple[Notification | None, NotificationDelivery]:
    """An email notification sent through ``provider`` (message id ``<pk>@esp``)."""
    result = notify(
        recipient,
        template_key="auction_ended",
        context=_CONTEXT,
        channels=["email"],
        category="marketing",
    )
    [email] = result.deliveries
    NotificationDelivery.objects.filter(pk=email.pk).update(
        status="sent", provider_name=provider, provider_message_id=f"{email.pk}@esp"
    )
    if result.notification is not None:
        Notification.objects.filter(pk=result.notification.pk).update(status="sent")
    email.refresh_from_db()
    return result.notification, email


def _mailgun(client, email, event: str, *, event_id: str | None = None, **extra):
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    body = {
        "signature": {
            "timestamp": timestamp,
            "token": token,
            "signature": mailgun_signature(SIGNING_KEY, timestamp, token),
        },
        "event-data": {
            "id": event_id or uuid.uuid4().hex,
            "event": event,
            "timestamp": time.time(),
            "recipient": email.recipient,
            "message": {"headers": {"message-id": f"<{email.provider_message_id}>"}},
            **extra,
        },
    }
    return client.post(
        "/api/v1/providers/mailgun/events/", json.dumps(body), content_type="application/json"
    )


def test_an_esp_open_marks_the_notification_read_and_counts_opens(client, user, esps):
    notification, email = _sent(user)

    assert _mailgun(client, email, "opened").json() == {"received": 1, "updated": 1}

    notification.refresh_from_db()
    email.refresh_from_db()
    assert (notification.status, notification.is_read) == ("read", True)
    first_read = notification.read_at
    assert first_read is not None
    assert email.status == "delivered"  # an open proves delivery
    assert email.delivery_metadata["opens"] == 1

    _mailgun(client, email, "opened")  # a second open: counted, read_at kept
    notification.refresh_from_db()
    email.refresh_from_db()
    assert email.delivery_metadata["opens"] == 2
    assert notification.read_at == first_read


def test_an_esp_click_is_recorded_like_our_tracked_link(client, user, esps):
    notification, email = _sent(user)

    response = _mailgun(client, email, "clicked", url="https://example.test/lot/1")

    assert response.json() == {"received": 1, "updated": 1}
    notification.refresh_from_db()
    email.refresh_from_db()
    assert notification.status == "clicked" and notification.clicked_at is not None
    assert email.delivery_metadata["clicks"] == 1
    assert email.delivery_metadata["receipts"][-1]["url"] == "https://example.test/lot/1"
    clicked_at = notification.clicked_at

    # clicked > read > delivered: a later open or delivered receipt does not lower it
    _mailgun(client, email, "opened")
    _mailgun(client, email, "delivered")
    _mailgun(client, email, "clicked")
    notification.refresh_from_db()
    email.refresh_from_db()
    assert notification.status == "clicked"
    assert notification.clicked_at == clicked_at  # the first click's time
    assert email.delivery_metadata["clicks"] == 2


def test_the_same_esp_event_twice_counts_once(client, user, esps):
    notification, email = _sent(user)

    first = _mailgun(client, email, "clicked", event_id="evt-1")
    again = _mailgun(client, email, "clicked", event_id="evt-1")  # a retry, new token

    assert first.json()["updated"] == 1
    assert again.status_code == 200 and again.json()["updated"] == 0
    email.refresh_from_db()
    assert email.delivery_metadata["clicks"] == 1


def test_a_forged_engagement_receipt_changes_nothing(client, user, esps):
    notification, email = _sent(user)
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    body = {
        "signature": {"timestamp": timestamp, "token": token, "signature": "0" * 64},
        "event-data": {
            "event": "clicked",
            "message": {"headers": {"message-id": f"<{email.provider_message_id}>"}},
        },
    }

    response = client.post(
        "/api/v1/providers/mailgun/events/", json.dumps(body), content_type="application/json"
    )

    assert response.status_code == 403
    notification.refresh_from_db()
    assert notification.status == "sent" and notification.clicked_at is None


def test_an_esp_unsubscribe_suppresses_and_opts_the_user_out(client, user, esps):
    notification, email = _sent(user)

    assert _mailgun(client, email, "unsubscribed").json()["updated"] == 1

    suppression = Suppression.objects.get(channel="email", address=user.email.lower())
    assert (suppression.reason, suppression.category) == ("unsubscribe", "marketing")
    assert suppression.delivery_id == email.pk
    assert suppression.receipt["provider"] == "mailgun"
    assert suppression.receipt["event"] == "unsubscribed"
    pref = UserNotificationPreference.objects.get(user=user)
    assert (pref.invitation_type, pref.delivery_method, pref.is_enabled) == (
        "auction_ended",
        "email",
        False,
    )
    assert pref.delivery_preferences["unsubscribed"]["via"] == "esp:mailgun"

    again = notify(user, template_key="auction_ended", context=_CONTEXT, channels=["email"])
    [next_email] = again.deliveries
    assert next_email.status == "skipped"
    assert next_email.delivery_metadata["decision"]["rule"] == "unsubscribed"


def test_an_address_only_delivery_counts_an_esp_click(client, esps):
    notification, email = _sent(Recipient(email="guest@example.test"))
    assert notification is None

    _mailgun(client, email, "clicked")

    email.refresh_from_db()
    assert email.delivery_metadata["clicks"] == 1
    assert email.status == "delivered"


def _sendgrid(client, events: list[dict], *, forge: bool = False):
    body = json.dumps(events).encode()
    timestamp = str(int(time.time()))
    signature = sendgrid_signature(sendgrid_private_key(), timestamp, body)
    if forge:
        signature = sendgrid_signature(sendgrid_private_key(seed="attacker"), timestamp, body)
    return client.post(
        "/api/v1/providers/sendgrid/events/",
        body,
        content_type="application/json",
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE=signature,
        HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP=timestamp,
    )


def test_sendgrid_open_and_click_events(client, user, esps):
    notification, email = _sent(user, "sendgrid")
    sg_id = f"{email.provider_message_id}.filter0001"
    events = [
        {"event": "open", "sg_message_id": sg_id, "sg_event_id": "o-1", "timestamp": time.time()},
        {
            "event": "click",
            "sg_message_id": sg_id,
            "sg_event_id": "c-1",
            "timestamp": time.time(),
            "url": "https://example.test/lot/1",
        },
    ]

    assert _sendgrid(client, events, forge=True).status_code == 403
    notification.refresh_from_db()
    assert notification.status == "sent"

    response = _sendgrid(client, events)
    assert response.json() == {"received": 2, "updated": 2}
    assert _sendgrid(client, events).json()["updated"] == 0  # the same events again
    notification.refresh_from_db()
    email.refresh_from_db()
    assert notification.status == "clicked" and notification.read_at is not None
    assert (email.delivery_metadata["opens"], email.delivery_metadata["clicks"]) == (1, 1)


def _postmark(client, payload: dict, auth: str = "pm-user:pm-pass"):
    return client.post(
        "/api/v1/providers/postmark/events/",
        json.dumps(payload),
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(auth.encode()).decode(),
    )


def test_postmark_open_click_and_unsubscribe_records(client, user, esps):
    notification, email = _sent(user, "postmark")
    now = "2026-12-02T00:00:00Z"
    opened = {"RecordType": "Open", "MessageID": email.provider_message_id, "ReceivedAt": now}

    assert _postmark(client, opened, auth="pm-user:wrong").status_code == 403
    assert _postmark(client, opened).json()["updated"] == 1
    assert _postmark(client, opened).json()["updated"] == 0  # replayed: counted once
    notification.refresh_from_db()
    assert notification.status == "read"

    click = {
        "RecordType": "Click",
        "MessageID": email.provider_message_id,
        "ReceivedAt": now,
        "OriginalLink": "https://example.test/lot/1",
    }
    assert _postmark(client, click).json()["updated"] == 1
    notification.refresh_from_db()
    assert notification.status == "clicked"

    change = {
        "RecordType": "SubscriptionChange",
        "MessageID": email.provider_message_id,
        "ChangedAt": now,
        "Recipient": email.recipient,
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
    }
    assert _postmark(client, change).json()["updated"] == 1
    assert Suppression.objects.get(address=email.recipient.lower()).reason == "unsubscribe"
