"""Mailgun, SendGrid and Postmark adapters against the provider sandbox."""

from __future__ import annotations

import pytest

from providers import aio
from providers.errors import ProviderError
from providers.registry import get_adapter

KINDS = ["mailgun", "sendgrid", "postmark"]


@pytest.fixture
def esp(make_provider, sandbox):
    def make(kind: str):
        return make_provider(
            provider_name=f"{kind}-main",
            provider_type="email",
            provider_class=kind,
            configuration={
                "api_base_url": sandbox.url,
                "from_email": "Auctions <noreply@notify.test>",
                "domain": "notify.test",
            },
        )

    return make


def mail(outbound, **fields):
    defaults = {"channel": "email", "recipient": "alice@example.test", "recipient_type": "email"}
    return outbound(**{**defaults, **fields})


@pytest.mark.parametrize("coroutine", [False, True], ids=["send", "asend"])
@pytest.mark.parametrize("kind", KINDS)
def test_esp_sends_rendered_message(esp, sandbox, outbound, kind, coroutine):
    provider = esp(kind)
    adapter, message = get_adapter(provider), mail(outbound, idempotency_key=f"delivery-{kind}")

    if coroutine:  # the batch sender's path (aiohttp on the sender loop)
        result = aio.submit(adapter.asend(message)).result(timeout=10)
    else:
        result = adapter.send(message)

    [record] = sandbox.messages(kind)
    assert record["outcome"] == "accepted"
    assert record["recipients"] == ["alice@example.test"]
    assert record["subject"] == "You were outbid"
    assert record["idempotency_key"] == f"delivery-{kind}"
    assert result.provider_message_id == record["message_id"].strip("<>")


@pytest.mark.parametrize("kind", KINDS)
def test_esp_invalid_recipient_is_permanent(esp, sandbox, outbound, kind):
    provider = esp(kind)
    sandbox.configure(kind, invalid_recipients=["ghost@example.test"])

    with pytest.raises(ProviderError) as caught:
        get_adapter(provider).send(mail(outbound, recipient="ghost@example.test"))

    assert caught.value.error_code == "INVALID_RECIPIENT"
    assert caught.value.retryable is False


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [(500, "PROVIDER_UNAVAILABLE", True), (401, "AUTH_FAILED", False), (429, "RATE_LIMITED", True)],
)
def test_esp_status_mapping(esp, sandbox, outbound, kind, status, code, retryable):
    provider = esp(kind)
    sandbox.configure(kind, status=status)

    with pytest.raises(ProviderError) as caught:
        get_adapter(provider).send(mail(outbound))

    assert caught.value.error_code == code
    assert caught.value.retryable is retryable


@pytest.mark.parametrize(
    ("kind", "env"),
    [
        ("mailgun", "MAILGUN_API_KEY"),
        ("sendgrid", "SENDGRID_API_KEY"),
        ("postmark", "POSTMARK_SERVER_TOKEN"),
    ],
)
def test_esp_missing_key_is_unconfigured(esp, sandbox, monkeypatch, kind, env):
    provider = esp(kind)
    monkeypatch.delenv(env)

    assert get_adapter(provider).missing_credentials() == [env]
