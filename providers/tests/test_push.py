"""FCM adapter against the provider sandbox."""

from __future__ import annotations

import pytest

from providers.errors import ProviderError
from providers.registry import get_adapter


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
