"""Push adapters (FCM HTTP v1 with service-account OAuth, Web Push with VAPID) against the
provider sandbox and loopback servers, over real HTTP with real keys and encryption."""

from __future__ import annotations

import base64
import json
import os
from urllib.parse import parse_qs

import http_ece
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

from providers import circuit
from providers.errors import ProviderError
from providers.registry import get_adapter
from providers.routing import candidates
from providers.services import send_with_failover
from providers.tests.conftest import Reply


@pytest.fixture
def fcm(make_provider, sandbox):
    return make_provider(
        provider_name="fcm-main",
        provider_type="push",
        provider_class="fcm",
        configuration={"api_base_url": sandbox.url, "project_id": "np-demo"},
    )


def push(outbound, **fields):
    defaults = {"channel": "push", "recipient": "device-token-1", "recipient_type": "device_token"}
    return outbound(**{**defaults, **fields})


def test_fcm_sends(fcm, sandbox, outbound):
    result = get_adapter(fcm).send(push(outbound))

    [record] = sandbox.messages("fcm")
    assert record["outcome"] == "accepted"
    assert record["recipient"] == "device-token-1"
    assert result.provider_message_id.startswith("projects/np-demo/messages/")


def test_fcm_unregistered_token_is_invalid_recipient(fcm, sandbox, outbound):
    sandbox.configure("fcm", invalid_recipients=["device-token-1"])

    with pytest.raises(ProviderError) as caught:
        get_adapter(fcm).send(push(outbound))

    assert caught.value.error_code == "INVALID_RECIPIENT"
    assert caught.value.retryable is False


def test_fcm_bad_token_is_auth_failed(fcm, sandbox, outbound, monkeypatch):
    monkeypatch.setenv("FCM_ACCESS_TOKEN", "expired")

    with pytest.raises(ProviderError) as caught:
        get_adapter(fcm).send(push(outbound))

    assert caught.value.error_code == "AUTH_FAILED"


# --------------------------------------------------------------------------- FCM OAuth


@pytest.fixture
def service_account(monkeypatch, tmp_path):
    """A generated RSA service-account key, written to a file the env var points at; the
    static FCM_ACCESS_TOKEN is removed so only a minted token can reach the sandbox."""
    import json
    import uuid

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from providers.adapters.push import fcm as fcm_module

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info = {
        "type": "service_account",
        "project_id": "np-sa-project",
        "private_key_id": uuid.uuid4().hex,
        "private_key": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
        "client_email": "sender@np-sa-project.iam.gserviceaccount.com",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = tmp_path / "service-account.json"
    path.write_text(json.dumps(info))
    monkeypatch.delenv("FCM_ACCESS_TOKEN", raising=False)
    monkeypatch.setenv("FCM_SERVICE_ACCOUNT_JSON", str(path))
    fcm_module.forget_tokens()
    yield {"info": info, "key": key, "path": path}
    fcm_module.forget_tokens()


@pytest.fixture
def fcm_sa(make_provider, sandbox):
    return make_provider(
        provider_name="fcm-sa",
        provider_type="push",
        provider_class="fcm",
        credentials_required=["FCM_SERVICE_ACCOUNT_JSON"],
        configuration={"api_base_url": sandbox.url, "token_url": f"{sandbox.url}/token"},
    )


def test_fcm_mints_a_token_from_the_service_account_and_caches_it(
    fcm_sa, sandbox, outbound, service_account
):
    adapter = get_adapter(fcm_sa)

    first = adapter.send(push(outbound, delivery_id=1, idempotency_key="delivery-1"))
    second = get_adapter(fcm_sa).send(push(outbound, delivery_id=2, idempotency_key="delivery-2"))

    records = sandbox.messages("fcm")
    assert [r["outcome"] for r in records] == ["accepted", "accepted"]
    assert sandbox.stats()["providers"]["fcm"]["tokens_issued"] == 1
    # the project comes from the service account when the row names none
    assert first.provider_message_id.startswith("projects/np-sa-project/messages/")
    assert second.provider_message_id.startswith("projects/np-sa-project/messages/")


def test_fcm_service_account_as_inline_json_and_refresh_before_expiry(
    make_provider, sandbox, outbound, service_account, monkeypatch
):
    import json

    monkeypatch.setenv("FCM_SERVICE_ACCOUNT_JSON", json.dumps(service_account["info"]))
    provider = make_provider(
        provider_name="fcm-short",
        provider_type="push",
        provider_class="fcm",
        configuration={
            "api_base_url": sandbox.url,
            "token_url": f"{sandbox.url}/token",
            "project_id": "np-demo",
            # the sandbox's tokens live 3599 s: a margin above that makes each one stale
            "token_refresh_margin_seconds": 3600,
        },
    )

    get_adapter(provider).send(push(outbound, delivery_id=1, idempotency_key="delivery-1"))
    get_adapter(provider).send(push(outbound, delivery_id=2, idempotency_key="delivery-2"))

    assert sandbox.stats()["providers"]["fcm"]["tokens_issued"] == 2
    assert [r["outcome"] for r in sandbox.messages("fcm")] == ["accepted", "accepted"]


def test_fcm_assertion_is_an_rs256_jwt_and_a_refusal_is_auth_failed(
    make_provider, sandbox, outbound, service_account, http_server
):
    http_server.reply(
        "/oauth/token",
        Reply(status=400, body={"error": "invalid_grant", "error_description": "Invalid JWT"}),
    )
    provider = make_provider(
        provider_name="fcm-refused",
        provider_type="push",
        provider_class="fcm",
        configuration={"api_base_url": sandbox.url, "token_url": f"{http_server.url}/oauth/token"},
    )

    with pytest.raises(ProviderError) as caught:
        get_adapter(provider).send(push(outbound))

    assert caught.value.error_code == "AUTH_FAILED"
    assert caught.value.retryable is False
    assert sandbox.messages("fcm") == []
    [request] = http_server.requests
    form = parse_qs(request.body.decode())
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    header_b64, claims_b64, signature_b64 = form["assertion"][0].split(".")
    header, claims = b64url_json(header_b64), b64url_json(claims_b64)
    assert header == {
        "alg": "RS256",
        "typ": "JWT",
        "kid": service_account["info"]["private_key_id"],
    }
    assert claims["iss"] == "sender@np-sa-project.iam.gserviceaccount.com"
    assert claims["scope"] == "https://www.googleapis.com/auth/firebase.messaging"
    assert claims["aud"] == f"{http_server.url}/oauth/token"
    assert claims["exp"] - claims["iat"] == 3600
    # raises InvalidSignature unless it is the service account key's PKCS#1 v1.5 signature
    service_account["key"].public_key().verify(
        b64url(signature_b64),
        f"{header_b64}.{claims_b64}".encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


def test_fcm_without_any_credential_is_unconfigured(make_provider, monkeypatch):
    monkeypatch.delenv("FCM_ACCESS_TOKEN", raising=False)
    monkeypatch.delenv("FCM_SERVICE_ACCOUNT_JSON", raising=False)
    provider = make_provider(
        provider_name="fcm-bare",
        provider_type="push",
        provider_class="fcm",
        credentials_required=["FCM_ACCESS_TOKEN"],
    )

    adapter = get_adapter(provider)

    assert adapter.missing_credentials() == ["FCM_SERVICE_ACCOUNT_JSON or FCM_ACCESS_TOKEN"]
    assert candidates(channel="push") == []


def test_fcm_access_token_satisfies_a_row_listing_the_service_account(
    make_provider, sandbox, outbound
):
    provider = make_provider(
        provider_name="fcm-token",
        provider_type="push",
        provider_class="fcm",
        credentials_required=["FCM_SERVICE_ACCOUNT_JSON"],
        configuration={"api_base_url": sandbox.url},
    )

    assert get_adapter(provider).missing_credentials() == []
    get_adapter(provider).send(push(outbound))
    assert [r["outcome"] for r in sandbox.messages("fcm")] == ["accepted"]


# --------------------------------------------------------------------------- Web Push


@pytest.fixture
def vapid(monkeypatch):
    """A real VAPID key (raw base64url P-256 private scalar) in the environment."""
    key = ec.generate_private_key(ec.SECP256R1())
    raw = key.private_numbers().private_value.to_bytes(32, "big")
    monkeypatch.setenv("WEBPUSH_VAPID_PRIVATE_KEY", b64url_encode(raw))
    monkeypatch.setenv("WEBPUSH_VAPID_SUBJECT", "mailto:ops@example.com")
    public = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return {"key": key, "public_b64": b64url_encode(public)}


@pytest.fixture
def loopback_allowed(settings):
    # the sandbox and the test servers listen on 127.0.0.1, which the SSRF guard refuses
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


def make_subscription(endpoint: str) -> tuple[dict, ec.EllipticCurvePrivateKey, bytes]:
    """What a browser's PushManager.subscribe() returns, with a real receiver key pair."""
    receiver = ec.generate_private_key(ec.SECP256R1())
    auth = os.urandom(16)
    p256dh = receiver.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    subscription = {
        "endpoint": endpoint,
        "keys": {"p256dh": b64url_encode(p256dh), "auth": b64url_encode(auth)},
    }
    return subscription, receiver, auth


@pytest.fixture
def webpush(make_provider, vapid, loopback_allowed):
    return make_provider(
        provider_name="webpush-main",
        provider_type="push",
        provider_class="webpush",
        priority=2,
        credentials_required=["WEBPUSH_VAPID_PRIVATE_KEY", "WEBPUSH_VAPID_SUBJECT"],
        configuration={"ttl_seconds": 3600},
    )


def browser_push(outbound, subscription, **fields):
    """The message the pipeline builds for a subscription: the endpoint as recipient and the
    whole subscription in data["subscription"] (deliveries.services.sending.build_message)."""
    data = {"event_type": "outbid", "subscription": subscription}
    return push(outbound, recipient=subscription["endpoint"], data=data, **fields)


def test_webpush_sends_with_vapid_to_the_sandbox(webpush, sandbox, outbound, vapid):
    subscription, _, _ = make_subscription(f"{sandbox.url}/push/sub-1")

    result = get_adapter(webpush).send(browser_push(outbound, subscription))

    [record] = sandbox.messages("webpush")
    assert record["outcome"] == "accepted"
    assert record["recipient"] == "sub-1"
    assert record["data"]["vapid"] == {
        "k": vapid["public_b64"],
        "sub": "mailto:ops@example.com",
        "aud": sandbox.url,
    }
    assert record["data"]["ttl"] == "3600"
    assert record["headers"]["Content-Encoding"] == "aes128gcm"
    assert result.provider_message_id == f"{sandbox.url}/m/{record['message_id']}"
    assert result.response["status_code"] == 201


def test_webpush_payload_is_encrypted_for_the_subscription(webpush, http_server, outbound, vapid):
    subscription, receiver, auth = make_subscription(f"{http_server.url}/push/abc")
    http_server.reply("/push/abc", Reply(status=201, body=b"", headers={"Location": "/m/1"}))

    get_adapter(webpush).send(browser_push(outbound, subscription))

    [request] = http_server.requests
    assert request.headers["content-encoding"] == "aes128gcm"
    assert request.headers["authorization"].startswith("vapid t=")
    assert b"Blue Vase" not in request.body
    plaintext = http_ece.decrypt(
        request.body, private_key=receiver, auth_secret=auth, version="aes128gcm"
    )
    assert json.loads(plaintext) == {
        "title": "You were outbid",
        "body": "Someone bid 120.00 on Blue Vase",
        "delivery_id": 41,
        "notification_id": None,
        "event_type": "outbid",
        "url": None,
    }


def test_webpush_accepts_the_subscription_json_as_recipient(webpush, sandbox, outbound):
    subscription, _, _ = make_subscription(f"{sandbox.url}/push/sub-json")

    get_adapter(webpush).send(push(outbound, recipient=json.dumps(subscription)))

    assert [r["recipient"] for r in sandbox.messages("webpush")] == ["sub-json"]


@pytest.mark.parametrize("option", ["gone_ids", "unknown_ids"])
def test_webpush_gone_subscription_is_permanent_invalid_recipient(
    webpush, sandbox, outbound, option
):
    sandbox.configure("webpush", **{option: ["sub-old"]})
    subscription, _, _ = make_subscription(f"{sandbox.url}/push/sub-old")

    with pytest.raises(ProviderError) as caught:
        get_adapter(webpush).send(browser_push(outbound, subscription))

    assert caught.value.error_code == "INVALID_RECIPIENT"
    assert caught.value.retryable is False
    assert caught.value.response["status_code"] == (410 if option == "gone_ids" else 404)


def test_webpush_429_is_rate_limited_with_retry_after(webpush, sandbox, outbound):
    sandbox.configure("webpush", status=429, retry_after=7)
    subscription, _, _ = make_subscription(f"{sandbox.url}/push/sub-1")

    with pytest.raises(ProviderError) as caught:
        get_adapter(webpush).send(browser_push(outbound, subscription))

    assert caught.value.error_code == "RATE_LIMITED"
    assert caught.value.retryable is True
    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize("status", [500, 503])
def test_webpush_5xx_is_provider_unavailable(webpush, sandbox, outbound, status):
    sandbox.configure("webpush", status=status)
    subscription, _, _ = make_subscription(f"{sandbox.url}/push/sub-1")

    with pytest.raises(ProviderError) as caught:
        get_adapter(webpush).send(browser_push(outbound, subscription))

    assert caught.value.error_code == "PROVIDER_UNAVAILABLE"
    assert caught.value.retryable is True


def test_webpush_bad_vapid_key_is_refused_by_the_push_service(webpush, sandbox, outbound, vapid):
    sandbox.configure("webpush", credentials={"vapid_public_key": "BOther" + "A" * 81})
    subscription, _, _ = make_subscription(f"{sandbox.url}/push/sub-1")

    with pytest.raises(ProviderError) as caught:
        get_adapter(webpush).send(browser_push(outbound, subscription))

    assert caught.value.error_code == "AUTH_FAILED"
    assert caught.value.retryable is False


def test_webpush_private_endpoint_is_refused_before_connecting(
    webpush, sandbox, outbound, settings
):
    settings.NP_WEBHOOK_ALLOWED_HOSTS = []
    subscription, _, _ = make_subscription(f"{sandbox.url}/push/sub-1")

    with pytest.raises(ProviderError) as caught:
        get_adapter(webpush).send(browser_push(outbound, subscription))

    assert caught.value.error_code == "INVALID_RECIPIENT"
    assert caught.value.retryable is False
    assert "private" in caught.value.message
    assert sandbox.messages("webpush") == []


def test_webpush_subscription_without_keys_is_invalid(webpush, sandbox, outbound):
    subscription = {"endpoint": f"{sandbox.url}/push/sub-1"}

    with pytest.raises(ProviderError) as caught:
        get_adapter(webpush).send(browser_push(outbound, subscription))

    assert caught.value.error_code == "INVALID_RECIPIENT"
    assert caught.value.retryable is False
    assert sandbox.messages("webpush") == []


def test_webpush_without_vapid_key_is_unconfigured(webpush, monkeypatch):
    monkeypatch.delenv("WEBPUSH_VAPID_PRIVATE_KEY")

    assert get_adapter(webpush).missing_credentials() == ["WEBPUSH_VAPID_PRIVATE_KEY"]
    assert candidates(channel="push") == []


def test_push_routing_sends_subscriptions_to_webpush_and_tokens_to_fcm(
    fcm, webpush, sandbox, outbound
):
    # Given FCM first by priority and Web Push second
    fcm.priority = 1
    fcm.save()
    subscription, _, _ = make_subscription(f"{sandbox.url}/push/sub-9")

    # When a browser subscription and a device token are sent through routing
    browser = send_with_failover(browser_push(outbound, subscription), candidates(channel="push"))
    device = send_with_failover(
        push(outbound, recipient="device-token-9", delivery_id=42, idempotency_key="delivery-42"),
        candidates(channel="push"),
    )

    # Then FCM passes the subscription on (no request made) and Web Push carries it
    assert browser.provider.provider_name == "webpush-main"
    assert [(a.provider_name, a.ok, a.error_code) for a in browser.attempts] == [
        ("fcm-main", False, "INVALID_RECIPIENT"),
        ("webpush-main", True, None),
    ]
    assert device.provider.provider_name == "fcm-main"
    assert [r["recipient"] for r in sandbox.messages("fcm")] == ["device-token-9"]
    assert [r["recipient"] for r in sandbox.messages("webpush")] == ["sub-9"]
    assert circuit.stats(fcm)["errors"] == 0


def test_notify_push_subscription_is_delivered_by_webpush(webpush, sandbox, user, settings):
    from deliveries.models import NotificationDelivery
    from deliveries.services import delivery_send, notify

    subscription, _, _ = make_subscription(f"{sandbox.url}/push/sub-user")

    result = notify(
        user,
        title="Outbid",
        message="Someone bid more",
        channels=["push"],
        metadata={"push_subscription": subscription},
    )
    [delivery] = result.deliveries
    summary = delivery_send(delivery.pk)

    delivery = NotificationDelivery.objects.get(pk=delivery.pk)
    assert summary.outcome == "sent"
    assert delivery.status == "sent"
    assert delivery.provider_name == "webpush-main"
    assert delivery.recipient == subscription["endpoint"]
    [record] = sandbox.messages("webpush")
    assert record["recipient"] == "sub-user"
    assert delivery.provider_message_id == f"{sandbox.url}/m/{record['message_id']}"


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url_json(text: str) -> dict:
    return json.loads(b64url(text))
