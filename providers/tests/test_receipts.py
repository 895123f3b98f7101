"""Receipts: the sandbox posts signed status callbacks to a live server running the
real endpoint; they are verified, normalised and applied to the delivery."""

from __future__ import annotations

import base64
import json
import time

import pytest

from providers.registry import get_adapter

RECEIPT_PATH = "/api/v1/providers/{}/events/"


def _delivery(name: str, recipient: str, channel: str):
    from deliveries.models import NotificationDelivery

    return NotificationDelivery.objects.create(
        delivery_type=channel,
        provider_type=channel,
        provider_name=name,
        provider_priority=1,
        recipient=recipient,
        recipient_type="phone" if channel == "sms" else "email",
        status="sending",
    )


def _wait_for_status(delivery, statuses, deadline_s=15.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        delivery.refresh_from_db()
        if delivery.status in statuses:
            return delivery
        time.sleep(0.05)
    return delivery


CASES = [
    # kind, channel, recipient, sandbox receipt status, expected delivery status
    ("twilio", "sms", "+14155550100", "delivered", "delivered"),
    ("twilio", "sms", "+14155550100", "bounced", "bounced"),
    ("vonage", "sms", "+14155550100", "delivered", "delivered"),
    ("vonage", "sms", "+14155550100", "failed", "failed"),
    ("mailgun", "email", "alice@example.test", "delivered", "delivered"),
    ("mailgun", "email", "alice@example.test", "bounced", "bounced"),
    ("sendgrid", "email", "alice@example.test", "delivered", "delivered"),
    ("sendgrid", "email", "alice@example.test", "complained", "complained"),
    ("postmark", "email", "alice@example.test", "delivered", "delivered"),
    ("postmark", "email", "alice@example.test", "bounced", "bounced"),
]


@pytest.mark.parametrize(("kind", "channel", "recipient", "outcome", "expected"), CASES)
def test_signed_receipt_updates_delivery(
    kind,
    channel,
    recipient,
    outcome,
    expected,
    live_server,
    sandbox,
    make_provider,
    outbound,
    monkeypatch,
    transactional_db,
):
    from sandbox.signing import sendgrid_private_key, sendgrid_public_key_b64

    monkeypatch.setenv(
        "SENDGRID_WEBHOOK_PUBLIC_KEY", sendgrid_public_key_b64(sendgrid_private_key())
    )
    # Given a provider named as the sandbox names it, whose receipts go to the live server
    callback = live_server.url + RECEIPT_PATH.format(kind)
    provider = make_provider(
        provider_name=kind,
        provider_type=channel,
        provider_class=kind,
        configuration={
            "api_base_url": sandbox.url,
            "receipt_url": callback,
            "from_email": "noreply@notify.test",
            "from_number": "+15005550006",
        },
    )
    sandbox.configure(
        kind, receipt_url=live_server.url, receipt_status=outcome, receipt_delay_ms=400
    )
    delivery = _delivery(kind, recipient, channel)

    # When the message is sent and the pipeline records the provider's message id
    result = get_adapter(provider).send(
        outbound(channel=channel, recipient=recipient, delivery_id=delivery.pk)
    )
    type(delivery).objects.filter(pk=delivery.pk).update(
        status="sent", provider_message_id=result.provider_message_id
    )

    # Then the signed receipt arrives and moves the delivery to its outcome
    delivery = _wait_for_status(delivery, {expected})
    assert delivery.status == expected
    assert delivery.delivery_metadata["receipts"][-1]["status"] == expected
    if expected == "delivered":
        assert delivery.delivered_at is not None
    elif expected in ("bounced", "failed"):
        assert delivery.failed_at is not None
        assert delivery.error_code is not None
    assert all(r["outcome"] == "accepted" for r in sandbox.messages(kind))


@pytest.mark.parametrize("kind", ["twilio", "vonage", "mailgun", "sendgrid", "postmark"])
def test_forged_receipt_is_403_and_changes_nothing(
    kind, client, make_provider, sandbox, monkeypatch
):
    from sandbox.signing import sendgrid_private_key, sendgrid_public_key_b64

    monkeypatch.setenv(
        "SENDGRID_WEBHOOK_PUBLIC_KEY", sendgrid_public_key_b64(sendgrid_private_key())
    )
    make_provider(provider_name=kind, provider_type="email", provider_class=kind)
    delivery = _delivery(kind, "alice@example.test", "email")
    type(delivery).objects.filter(pk=delivery.pk).update(status="sent", provider_message_id="m-1")
    bodies = {
        "twilio": (
            {"MessageSid": "m-1", "MessageStatus": "delivered"},
            {"HTTP_X_TWILIO_SIGNATURE": "Zm9yZ2Vk"},
        ),
        "vonage": ({"messageId": "m-1", "status": "delivered", "sig": "00ff"}, {}),
        "mailgun": (
            {
                "signature": {"timestamp": "1", "token": "t", "signature": "00"},
                "event-data": {"event": "delivered", "message": {"headers": {"message-id": "m-1"}}},
            },
            {},
        ),
        "sendgrid": (
            [{"event": "delivered", "sg_message_id": "m-1.x"}],
            {
                "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": base64.b64encode(b"forged").decode(),
                "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": "1",
            },
        ),
        "postmark": (
            {"RecordType": "Delivery", "MessageID": "m-1"},
            {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"postmark:wrong").decode()},
        ),
    }
    body, headers = bodies[kind]
    url = RECEIPT_PATH.format(kind)
    if kind == "twilio":
        response = client.post(url, body, **headers)
    else:
        response = client.post(url, json.dumps(body), content_type="application/json", **headers)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "SIGNATURE_INVALID"
    delivery.refresh_from_db()
    assert delivery.status == "sent"


def test_unknown_provider_is_404(client, db):
    response = client.post(RECEIPT_PATH.format("nope"), "{}", content_type="application/json")

    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
