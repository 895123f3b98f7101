"""The ``anymail`` provider kind end to end: sending through anymail's Resend backend to a
fake ESP API on loopback (the request it receives is asserted), and anymail tracking
webhooks (Mailgun's signature, Postmark's basic auth) normalised to receipts that move the
delivery — forged, stale and replayed ones refused."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import uuid

import pytest
from django.core.exceptions import ValidationError

from deliveries.models import Notification, NotificationDelivery
from deliveries.services import delivery_send, notify
from deliveries.services.sending import deliveries_send_batch
from providers.adapters.email.anymail_esp import AnymailAdapter
from providers.errors import ProviderError
from providers.models import Provider
from providers.registry import get_adapter
from providers.tests.conftest import LoopbackHTTPServer, Reply
from providers.types import OutboundMessage
from sandbox.signing import mailgun_signature

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("catalogue")]

_CONTEXT = {"auction_title": "Clocks", "winner": "Bob"}
SIGNING_KEY = "anymail-mailgun-signing-key"


@pytest.fixture
def fake_esp():
    server = LoopbackHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def resend(fake_esp, monkeypatch):
    monkeypatch.setenv("ANYMAIL_RESEND_API_KEY", "re_test_key")
    fake_esp.reply("/emails", Reply(body={"id": "re-msg-1"}))
    provider = Provider(
        provider_name="resend-any",
        provider_type="email",
        provider_class="anymail",
        priority=1,
        configuration={
            "esp": "resend",
            "from_email": "Auctions <news@notify.test>",
            "credential_env": {"api_key": "ANYMAIL_RESEND_API_KEY"},
            "options": {"api_url": f"{fake_esp.url}/"},
        },
    )
    provider.full_clean()  # the credential policy accepts the row
    provider.save()
    return provider


def _marketing_email(user) -> NotificationDelivery:
    result = notify(
        user,
        template_key="auction_ended",
        context=_CONTEXT,
        channels=["email"],
        category="marketing",
    )
    [email] = result.deliveries
    return email


def test_sending_goes_through_anymails_backend_to_the_esp_api(user, resend, fake_esp):
    email = _marketing_email(user)

    assert delivery_send(email.pk).outcome == "sent"

    [request] = fake_esp.requests
    assert (request.method, request.path) == ("POST", "/emails")
    assert request.headers["authorization"] == "Bearer re_test_key"
    body = request.json()
    assert body["to"] == [user.email]
    assert body["from"] == "Auctions <news@notify.test>"
    assert body["subject"] and body["text"]
    # the RFC 8058 headers and our delivery header reach the ESP in its API's shape
    assert body["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "/u/" in body["headers"]["List-Unsubscribe"]
    assert body["headers"]["X-Notifyplatform-Delivery"] == str(email.pk)
    email.refresh_from_db()
    assert (email.status, email.provider_name, email.provider_message_id) == (
        "sent",
        "resend-any",
        "re-msg-1",
    )


def test_the_batch_sender_runs_anymail_in_its_thread_pool(user, resend, fake_esp, monkeypatch):
    email = _marketing_email(user)
    seen: list[str] = []
    original = AnymailAdapter.send

    def send_noting_the_thread(self, message):
        seen.append(threading.current_thread().name)
        return original(self, message)

    monkeypatch.setattr(AnymailAdapter, "send", send_noting_the_thread)
    [summary] = deliveries_send_batch([email.pk])

    assert summary.outcome == "sent"
    assert seen and seen[0].startswith("np-send")  # providers.aio's blocking executor
    assert len(fake_esp.requests) == 1


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(500, "PROVIDER_UNAVAILABLE", True), (401, "AUTH_FAILED", False), (422, "REJECTED", False)],
)
def test_esp_errors_map_to_our_codes(resend, fake_esp, status, code, retryable):
    fake_esp.reply("/emails", Reply(status=status, body={"message": "no"}))
    message = OutboundMessage(
        delivery_id=1,
        channel="email",
        recipient="alice@example.test",
        recipient_type="email",
        subject="S",
        text="T",
        html=None,
        data={},
        idempotency_key="delivery-1",
    )

    with pytest.raises(ProviderError) as caught:
        get_adapter(resend).send(message)

    assert (caught.value.error_code, caught.value.retryable) == (code, retryable)


def test_a_missing_api_key_is_unconfigured(resend, monkeypatch):
    monkeypatch.delenv("ANYMAIL_RESEND_API_KEY")
    assert get_adapter(resend).missing_credentials() == ["ANYMAIL_RESEND_API_KEY"]


@pytest.mark.parametrize(
    ("configuration", "says"),
    [
        ({"esp": "nosuch"}, "is not one of"),
        ({"esp": "resend", "options": {"api_key": "inline-secret"}}, "looks like a secret"),
        ({"esp": "resend", "options": {"api_url": "https://evil.example/"}}, "evil.example"),
        ({"esp": "resend", "credential_env": {"api_key": "SECRET_KEY"}}, "SECRET_KEY"),
        (
            {"esp": "mailgun", "webhook_credential_env": {"webhook_signing_key": "DATABASE_URL"}},
            "DATABASE_URL",
        ),
    ],
)
def test_the_credential_policy_refuses_bad_rows(configuration, says):
    row = Provider(
        provider_name="bad",
        provider_type="email",
        provider_class="anymail",
        configuration=configuration,
    )
    with pytest.raises(ValidationError) as caught:
        row.full_clean()
    assert says in str(caught.value.message_dict["configuration"])


# -- tracking webhooks -------------------------------------------------------------------


@pytest.fixture
def mailgun_any(monkeypatch):
    monkeypatch.setenv("ANYMAIL_MAILGUN_API_KEY", "key-test")
    monkeypatch.setenv("ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY", SIGNING_KEY)
    return Provider.objects.create(
        provider_name="mailgun-any",
        provider_type="email",
        provider_class="anymail",
        configuration={
            "esp": "mailgun",
            "credential_env": {"api_key": "ANYMAIL_MAILGUN_API_KEY"},
            "webhook_credential_env": {
                "webhook_signing_key": "ANYMAIL_MAILGUN_WEBHOOK_SIGNING_KEY"
            },
        },
    )


def _sent_by(user, provider_name: str) -> tuple[Notification, NotificationDelivery]:
    email = _marketing_email(user)
    NotificationDelivery.objects.filter(pk=email.pk).update(
        status="sent", provider_name=provider_name, provider_message_id=f"{email.pk}@any"
    )
    Notification.objects.filter(pk=email.notification_id).update(status="sent")
    email.refresh_from_db()
    return email.notification, email


def _mailgun_event(client, email, event: str, *, key=SIGNING_KEY, token=None, at=None):
    timestamp, token = str(int(time.time())), token or secrets.token_hex(25)
    body = {
        "signature": {
            "timestamp": timestamp,
            "token": token,
            "signature": mailgun_signature(key, timestamp, token),
        },
        "event-data": {
            "id": uuid.uuid4().hex,
            "event": event,
            "timestamp": at or time.time(),
            "recipient": email.recipient,
            "message": {"headers": {"message-id": email.provider_message_id}},
            "url": "https://example.test/lot/1",
        },
    }
    return client.post(
        "/api/v1/providers/mailgun-any/events/", json.dumps(body), content_type="application/json"
    )


def test_an_anymail_tracking_event_updates_the_delivery(client, user, mailgun_any):
    notification, email = _sent_by(user, "mailgun-any")

    assert _mailgun_event(client, email, "delivered").json() == {"received": 1, "updated": 1}
    assert _mailgun_event(client, email, "clicked").json() == {"received": 1, "updated": 1}

    email.refresh_from_db()
    notification.refresh_from_db()
    assert email.status == "delivered" and email.delivered_at is not None
    assert email.delivery_metadata["clicks"] == 1
    assert notification.status == "clicked"


def test_forged_stale_and_replayed_anymail_events_are_refused(client, user, mailgun_any):
    notification, email = _sent_by(user, "mailgun-any")

    forged = _mailgun_event(client, email, "clicked", key="not-the-key")
    stale = _mailgun_event(client, email, "clicked", at=time.time() - 3600)
    assert (forged.status_code, forged.json()["error"]["code"]) == (403, "SIGNATURE_INVALID")
    assert (stale.status_code, stale.json()["error"]["code"]) == (403, "SIGNATURE_EXPIRED")

    token = secrets.token_hex(25)
    assert _mailgun_event(client, email, "clicked", token=token).status_code == 200
    replay = _mailgun_event(client, email, "clicked", token=token)
    assert (replay.status_code, replay.json()["error"]["code"]) == (403, "RECEIPT_REPLAYED")

    email.refresh_from_db()
    assert email.delivery_metadata["clicks"] == 1


@pytest.fixture
def postmark_any(monkeypatch):
    monkeypatch.setenv("ANYMAIL_WEBHOOK_SECRET", "hook-user:hook-pass")
    return Provider.objects.create(
        provider_name="postmark-any",
        provider_type="email",
        provider_class="anymail",
        configuration={
            "esp": "postmark",
            "credential_env": {"server_token": "ANYMAIL_POSTMARK_SERVER_TOKEN"},
            "webhook_credential_env": {"webhook_secret": "ANYMAIL_WEBHOOK_SECRET"},
            "event_tolerance_seconds": 86400,
        },
    )


def test_anymail_basic_auth_guards_the_postmark_webhook(client, user, postmark_any):
    notification, email = _sent_by(user, "postmark-any")
    payload = {
        "RecordType": "Open",
        "MessageID": email.provider_message_id,
        "Recipient": email.recipient,
        "ReceivedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

    def post(auth: str):
        return client.post(
            "/api/v1/providers/postmark-any/events/",
            json.dumps(payload),
            content_type="application/json",
            HTTP_AUTHORIZATION="Basic " + base64.b64encode(auth.encode()).decode(),
        )

    assert post("hook-user:wrong").status_code == 403
    notification.refresh_from_db()
    assert notification.status == "sent"

    assert post("hook-user:hook-pass").json() == {"received": 1, "updated": 1}
    notification.refresh_from_db()
    email.refresh_from_db()
    assert notification.status == "read" and email.delivery_metadata["opens"] == 1


def test_an_unsecured_anymail_webhook_is_refused(client, user, monkeypatch):
    Provider.objects.create(
        provider_name="open-any",
        provider_type="email",
        provider_class="anymail",
        configuration={"esp": "postmark"},
    )
    response = client.post(
        "/api/v1/providers/open-any/events/", "{}", content_type="application/json"
    )
    assert response.status_code == 403


def test_a_row_naming_a_foreign_secret_for_its_webhook_is_refused(client, monkeypatch):
    # a row edited in the database directly (no form validation): the adapter refuses it
    Provider.objects.create(
        provider_name="sneaky-any",
        provider_type="email",
        provider_class="anymail",
        configuration={"esp": "postmark", "webhook_credential_env": {"webhook_secret": "PATH"}},
    )
    response = client.post(
        "/api/v1/providers/sneaky-any/events/",
        "{}",
        content_type="application/json",
        HTTP_AUTHORIZATION="Basic " + base64.b64encode(b"x:" + b"y").decode(),
    )
    assert response.status_code == 403
    assert "PATH" in response.json()["error"]["message"]
