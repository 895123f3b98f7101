"""Signed receipts cannot be replayed: a validly signed callback whose signed timestamp is
400 days old is refused (Mailgun, SendGrid, Vonage), a Mailgun token is accepted once, and
where a scheme signs no timestamp (Twilio, Postmark) a replay changes nothing.

Each receipt is signed the way the provider signs it (``sandbox.signing``) and
posted to the real endpoint; the delivery rows are real PostgreSQL rows, the token store the
test run's Redis."""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid

import pytest

from sandbox import DEFAULT_CREDENTIALS
from sandbox.signing import (
    mailgun_signature,
    sendgrid_private_key,
    sendgrid_public_key_b64,
    sendgrid_signature,
    twilio_signature,
    vonage_signature,
)

pytestmark = pytest.mark.django_db

URL = "/api/v1/providers/{}/events/"
OLD = 400 * 86400  # seconds: the age of the captured receipts in the report


@pytest.fixture
def receipts_env(monkeypatch):
    monkeypatch.setenv(
        "MAILGUN_WEBHOOK_SIGNING_KEY", DEFAULT_CREDENTIALS["mailgun"]["webhook_signing_key"]
    )
    monkeypatch.setenv("VONAGE_SIGNATURE_SECRET", DEFAULT_CREDENTIALS["vonage"]["signature_secret"])
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", DEFAULT_CREDENTIALS["twilio"]["auth_token"])
    monkeypatch.setenv("POSTMARK_WEBHOOK_USERNAME", "postmark")
    monkeypatch.setenv("POSTMARK_WEBHOOK_PASSWORD", "hook-password")
    monkeypatch.setenv(
        "SENDGRID_WEBHOOK_PUBLIC_KEY", sendgrid_public_key_b64(sendgrid_private_key())
    )


def _sent_delivery(provider_name: str, message_id: str, channel: str = "email"):
    from deliveries.models import NotificationDelivery

    return NotificationDelivery.objects.create(
        delivery_type=channel,
        provider_type=channel,
        provider_name=provider_name,
        provider_priority=1,
        provider_message_id=message_id,
        recipient="alice@example.test" if channel == "email" else "+14155550100",
        recipient_type="email" if channel == "email" else "phone",
        status="sent",
    )


def _mailgun(message_id: str, *, timestamp: int, token: str, event: str = "delivered"):
    key = DEFAULT_CREDENTIALS["mailgun"]["webhook_signing_key"]
    body = {
        "signature": {
            "timestamp": str(timestamp),
            "token": token,
            "signature": mailgun_signature(key, str(timestamp), token),
        },
        "event-data": {
            "event": event,
            "severity": "permanent",
            "timestamp": timestamp,
            "message": {"headers": {"message-id": message_id}},
        },
    }
    return json.dumps(body), {}


def _sendgrid(message_id: str, *, timestamp: int):
    body = json.dumps(
        [{"event": "delivered", "sg_message_id": f"{message_id}.filter0", "timestamp": timestamp}]
    )
    signature = sendgrid_signature(sendgrid_private_key(), str(timestamp), body.encode())
    return body, {
        "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE": signature,
        "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP": str(timestamp),
    }


def _vonage(message_id: str, *, timestamp: int | None, nonce: str | None = None):
    params = {"messageId": message_id, "status": "delivered", "msisdn": "14155550100"}
    if timestamp is not None:
        params["timestamp"] = str(timestamp)
    if nonce is not None:
        params["nonce"] = nonce
    params["sig"] = vonage_signature(DEFAULT_CREDENTIALS["vonage"]["signature_secret"], params)
    return json.dumps(params), {}


def _post(client, kind: str, body: str, headers: dict[str, str]):
    return client.post(URL.format(kind), body, content_type="application/json", **headers)


@pytest.mark.parametrize(
    ("kind", "channel", "build"),
    [
        (
            "mailgun",
            "email",
            lambda mid, ts: _mailgun(mid, timestamp=ts, token=secrets.token_hex(25)),
        ),
        ("sendgrid", "email", lambda mid, ts: _sendgrid(mid, timestamp=ts)),
        ("vonage", "sms", lambda mid, ts: _vonage(mid, timestamp=ts, nonce=str(uuid.uuid4()))),
    ],
)
def test_validly_signed_receipt_with_an_old_timestamp_is_refused(
    kind, channel, build, client, make_provider, receipts_env
):
    # Given a sent delivery and a validly signed receipt for it, signed 400 days ago
    make_provider(provider_name=kind, provider_type=channel, provider_class=kind)
    delivery = _sent_delivery(kind, "m-old", channel)
    body, headers = build("m-old", int(time.time()) - OLD)

    # When it is posted (a replay of a captured callback)
    response = _post(client, kind, body, headers)

    # Then it is refused and the delivery is untouched
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "SIGNATURE_EXPIRED"
    delivery.refresh_from_db()
    assert delivery.status == "sent"

    # while the same receipt signed now is applied
    fresh_body, fresh_headers = build("m-old", int(time.time()))
    response = _post(client, kind, fresh_body, fresh_headers)
    assert response.status_code == 200, response.content
    assert response.json() == {"received": 1, "updated": 1}
    delivery.refresh_from_db()
    assert delivery.status == "delivered"


def test_timestamp_tolerance_is_configurable(client, make_provider, receipts_env, settings):
    settings.NP_RECEIPT_TOLERANCE_SECONDS = 30
    make_provider(provider_name="sendgrid", provider_type="email", provider_class="sendgrid")
    _sent_delivery("sendgrid", "m-tol")

    late = _post(client, "sendgrid", *_sendgrid("m-tol", timestamp=int(time.time()) - 120))
    future = _post(client, "sendgrid", *_sendgrid("m-tol", timestamp=int(time.time()) + 120))
    inside = _post(client, "sendgrid", *_sendgrid("m-tol", timestamp=int(time.time()) - 10))

    assert (late.status_code, future.status_code, inside.status_code) == (403, 403, 200)


def test_vonage_receipt_without_a_signed_timestamp_is_refused(client, make_provider, receipts_env):
    make_provider(provider_name="vonage", provider_type="sms", provider_class="vonage")
    delivery = _sent_delivery("vonage", "m-nots", "sms")

    response = _post(client, "vonage", *_vonage("m-nots", timestamp=None))

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "SIGNATURE_EXPIRED"
    delivery.refresh_from_db()
    assert delivery.status == "sent"


@pytest.mark.parametrize("kind", ["mailgun", "vonage"])
def test_the_same_fresh_token_twice_is_refused_the_second_time(
    kind, client, make_provider, receipts_env
):
    # Given a delivery that bounced after a first "delivered" receipt was captured
    channel = "sms" if kind == "vonage" else "email"
    make_provider(provider_name=kind, provider_type=channel, provider_class=kind)
    delivery = _sent_delivery(kind, "m-twice", channel)
    now = int(time.time())
    if kind == "mailgun":
        body, headers = _mailgun("m-twice", timestamp=now, token=secrets.token_hex(25))
    else:
        body, headers = _vonage("m-twice", timestamp=now, nonce=str(uuid.uuid4()))

    # When the captured receipt is posted twice within the tolerance
    first = _post(client, kind, body, headers)
    second = _post(client, kind, body, headers)

    # Then only the first is accepted
    assert first.status_code == 200, first.content
    assert first.json() == {"received": 1, "updated": 1}
    assert second.status_code == 403
    assert second.json()["error"]["code"] == "RECEIPT_REPLAYED"
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert len(delivery.delivery_metadata["receipts"]) == 1
    # remembered for twice the tolerance (any timestamp still inside it), then forgotten
    from providers import kv

    (key,) = kv.client().scan_iter(f"{kv.prefix()}:receipt-nonce:{kind}:*")
    assert 590 <= kv.client().ttl(key) <= 600


def _twilio(client, message_id: str, status: str, error_code: str = ""):
    params = {"MessageSid": message_id, "MessageStatus": status}
    if error_code:
        params["ErrorCode"] = error_code
    url = "http://testserver" + URL.format("twilio")
    signature = twilio_signature(DEFAULT_CREDENTIALS["twilio"]["auth_token"], url, params)
    return client.post(URL.format("twilio"), params, HTTP_X_TWILIO_SIGNATURE=signature)


def _postmark(client, message_id: str, record: dict):
    auth = base64.b64encode(b"postmark:hook-password").decode()
    return client.post(
        URL.format("postmark"),
        json.dumps({"MessageID": message_id, **record}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Basic {auth}",
    )


@pytest.mark.parametrize("kind", ["twilio", "postmark"])
def test_replay_without_a_signed_timestamp_changes_nothing(
    kind, client, make_provider, receipts_env
):
    """Twilio and Postmark sign no timestamp; replay is bounded by idempotent application:
    a receipt only moves its delivery forward, so replaying a captured one is a no-op."""
    channel = "sms" if kind == "twilio" else "email"
    make_provider(provider_name=kind, provider_type=channel, provider_class=kind)
    delivery = _sent_delivery(kind, "m-idem", channel)

    def delivered():
        if kind == "twilio":
            return _twilio(client, "m-idem", "delivered")
        return _postmark(client, "m-idem", {"RecordType": "Delivery"})

    def bounced():
        if kind == "twilio":
            return _twilio(client, "m-idem", "undelivered", "30003")
        return _postmark(client, "m-idem", {"RecordType": "Bounce", "Type": "HardBounce"})

    # Given a captured "delivered" receipt, applied once, then a real bounce
    assert delivered().json() == {"received": 1, "updated": 1}
    assert bounced().json() == {"received": 1, "updated": 1}

    # When both are replayed
    replayed = [delivered(), bounced()]

    # Then they verify but change nothing: the delivery keeps its latest outcome
    assert [r.json()["updated"] for r in replayed] == [0, 0]
    delivery.refresh_from_db()
    assert delivery.status == "bounced"
    assert [r["status"] for r in delivery.delivery_metadata["receipts"]] == [
        "delivered",
        "bounced",
    ]


def test_mailgun_receipt_waits_when_the_token_store_is_down(
    client, make_provider, receipts_env, settings
):
    from notifyplatform.testing import free_port

    # Given Redis (the token store) unreachable: nothing listens on its port
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port()}/0"
    make_provider(provider_name="mailgun", provider_type="email", provider_class="mailgun")
    delivery = _sent_delivery("mailgun", "m-down")

    body, headers = _mailgun("m-down", timestamp=int(time.time()), token=secrets.token_hex(25))
    response = _post(client, "mailgun", body, headers)

    # Then the provider is told to retry later, and nothing was applied unchecked
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert response["Retry-After"] == "30"
    delivery.refresh_from_db()
    assert delivery.status == "sent"
