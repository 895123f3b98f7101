"""The webhook adapter: Standard Webhooks signing against a real loopback server, and
the SSRF guard refusing private targets before any connection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from providers.errors import ProviderError
from providers.registry import get_adapter
from providers.tests.conftest import Reply

SECRET = "whsec_" + base64.b64encode(b"sixteen-byte-key-for-tests").decode()


@pytest.fixture
def webhook_provider(make_provider, monkeypatch):
    monkeypatch.setenv("NP_TEST_WEBHOOK_SECRET", SECRET)
    return make_provider(
        provider_name="webhook-std",
        provider_type="webhook",
        provider_class="webhook",
        credentials_required=["NP_TEST_WEBHOOK_SECRET"],
    )


def test_webhook_is_signed_per_standard_webhooks(webhook_provider, http_server, outbound, settings):
    # Given a receiver on loopback, which the allowlist permits
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    message = outbound(recipient=f"{http_server.url}/hook", idempotency_key="delivery-41-a")

    # When the adapter posts the message
    result = get_adapter(webhook_provider).send(message)

    # Then the request carries id, timestamp and a signature that verifies with the secret
    [request] = http_server.requests
    assert request.method == "POST"
    assert request.path == "/hook"
    assert request.headers["webhook-id"] == "delivery-41-a"
    assert request.headers["content-type"] == "application/json"
    ts = request.headers["webhook-timestamp"]
    key = base64.b64decode(SECRET.removeprefix("whsec_"))
    expected = base64.b64encode(
        hmac.new(
            key, b"delivery-41-a." + ts.encode() + b"." + request.body, hashlib.sha256
        ).digest()
    ).decode()
    assert request.headers["webhook-signature"] == f"v1,{expected}"
    body = json.loads(request.body)
    assert body["type"] == "outbid"
    assert body["data"]["delivery_id"] == 41
    assert body["data"]["text"] == "Someone bid 120.00 on Blue Vase"
    assert body["data"]["data"] == {"event_type": "outbid", "amount": "120.00"}
    assert result.provider_message_id == "delivery-41-a"
    assert result.response["status_code"] == 200
    assert result.response["target_ip"] == "127.0.0.1"


def test_webhook_signature_matches_the_sandbox_verifier(
    webhook_provider, http_server, outbound, settings
):
    # The sandbox engineer's verifier is an independent implementation of the scheme.
    from sandbox.signing import verify_standard_webhooks_signature

    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.0/8"]
    get_adapter(webhook_provider).send(outbound(recipient=f"{http_server.url}/hook"))

    [request] = http_server.requests
    assert verify_standard_webhooks_signature(
        SECRET,
        request.headers["webhook-id"],
        request.headers["webhook-timestamp"],
        request.body,
        request.headers["webhook-signature"],
    )


def test_loopback_target_refused_without_allowlist(
    webhook_provider, http_server, outbound, settings
):
    # Given an empty allowlist
    settings.NP_WEBHOOK_ALLOWED_HOSTS = []

    # When posting to a loopback receiver
    with pytest.raises(ProviderError) as caught:
        get_adapter(webhook_provider).send(outbound(recipient=f"{http_server.url}/hook"))

    # Then it is refused permanently and the receiver saw nothing
    assert caught.value.error_code == "INVALID_RECIPIENT"
    assert caught.value.retryable is False
    assert caught.value.message == "webhook target 127.0.0.1 is private"
    assert http_server.requests == []


@pytest.mark.parametrize(
    ("url", "ip"),
    [
        ("http://10.0.0.1/hook", "10.0.0.1"),
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://[::1]:8080/hook", "::1"),
        ("https://192.168.1.20/hook", "192.168.1.20"),
        ("http://[::ffff:127.0.0.1]/hook", "::ffff:7f00:1"),
        ("http://0.0.0.0/hook", "0.0.0.0"),
        ("http://224.0.0.1/hook", "224.0.0.1"),
        ("http://100.64.0.1/hook", "100.64.0.1"),
    ],
)
def test_private_targets_refused_before_connecting(webhook_provider, outbound, settings, url, ip):
    # Given an empty allowlist; IP literals need no DNS, and the guard refuses before any
    # socket is opened (so no traffic leaves for these addresses)
    settings.NP_WEBHOOK_ALLOWED_HOSTS = []

    with pytest.raises(ProviderError) as caught:
        get_adapter(webhook_provider).send(outbound(recipient=url))

    assert caught.value.error_code == "INVALID_RECIPIENT"
    assert caught.value.retryable is False
    assert caught.value.message == f"webhook target {ip} is private"


def test_localhost_name_refused(webhook_provider, outbound, settings):
    settings.NP_WEBHOOK_ALLOWED_HOSTS = []

    with pytest.raises(ProviderError) as caught:
        get_adapter(webhook_provider).send(outbound(recipient="http://localhost:9/hook"))

    assert caught.value.error_code == "INVALID_RECIPIENT"
    assert caught.value.message.startswith("webhook target ")
    assert caught.value.message.endswith(" is private")


def test_allowlist_by_host_name(webhook_provider, http_server, outbound, settings):
    # Given "localhost" allowlisted by name
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["localhost"]
    port = http_server.server.server_address[1]

    get_adapter(webhook_provider).send(outbound(recipient=f"http://localhost:{port}/hook"))

    # Then the request arrived with the original Host header
    [request] = http_server.requests
    assert request.headers["host"] == f"localhost:{port}"


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (500, "PROVIDER_UNAVAILABLE", True),
        (503, "PROVIDER_UNAVAILABLE", True),
        (429, "RATE_LIMITED", True),
        (400, "REJECTED", False),
        (401, "AUTH_FAILED", False),
        (404, "INVALID_RECIPIENT", False),
        (410, "INVALID_RECIPIENT", False),
        (302, "REJECTED", False),
    ],
)
def test_http_status_mapping(
    webhook_provider, http_server, outbound, settings, status, code, retryable
):
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    headers = {"Retry-After": "7"} if status == 429 else {}
    if status == 302:
        headers = {"Location": "http://10.0.0.1/"}
    http_server.reply("/hook", Reply(status=status, body={"message": "nope"}, headers=headers))

    with pytest.raises(ProviderError) as caught:
        get_adapter(webhook_provider).send(outbound(recipient=f"{http_server.url}/hook"))

    assert caught.value.error_code == code
    assert caught.value.retryable is retryable
    assert caught.value.retry_after == (7.0 if status == 429 else None)
    assert len(http_server.requests) == 1  # a redirect is not followed


def test_timeout_is_retryable(make_provider, outbound, settings):
    # Given a server that accepts the connection and never answers
    import socket

    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    provider = make_provider(configuration={"timeout": 0.3})
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        with pytest.raises(ProviderError) as caught:
            get_adapter(provider).send(outbound(recipient=f"http://127.0.0.1:{port}/hook"))

    assert caught.value.error_code == "TIMEOUT"
    assert caught.value.retryable is True


def test_missing_secret_env_is_unconfigured(make_provider, outbound, monkeypatch):
    monkeypatch.delenv("NP_TEST_ABSENT_SECRET", raising=False)
    provider = make_provider(credentials_required=["NP_TEST_ABSENT_SECRET"])
    adapter = get_adapter(provider)

    assert adapter.missing_credentials() == ["NP_TEST_ABSENT_SECRET"]
    with pytest.raises(ProviderError) as caught:
        adapter.send(outbound())
    assert caught.value.error_code == "UNCONFIGURED"
    assert caught.value.retryable is False
