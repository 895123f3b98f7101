"""Twilio and Vonage adapters against the provider sandbox on loopback."""

from __future__ import annotations

from decimal import Decimal

import pytest

from providers.errors import ProviderError
from providers.registry import get_adapter
from providers.services import send_with_failover


@pytest.fixture
def twilio(make_provider, sandbox):
    return make_provider(
        provider_name="twilio-main",
        provider_type="sms",
        provider_class="twilio",
        priority=1,
        configuration={
            "api_base_url": sandbox.url,
            "from_number": "+15005550006",
            "receipt_url": False,
        },
    )


@pytest.fixture
def vonage(make_provider, sandbox):
    return make_provider(
        provider_name="vonage-main",
        provider_type="sms",
        provider_class="vonage",
        priority=2,
        configuration={"api_base_url": sandbox.url, "from": "Auctions", "receipt_url": False},
    )


def sms(outbound, **fields):
    defaults = {
        "channel": "sms",
        "recipient": "+14155550100",
        "recipient_type": "phone",
        "subject": None,
        "html": None,
    }
    return outbound(**{**defaults, **fields})


def test_twilio_sends_with_idempotency_token(twilio, sandbox, outbound):
    result = get_adapter(twilio).send(sms(outbound, idempotency_key="delivery-9"))

    [record] = sandbox.messages("twilio")
    assert record["recipient"] == "+14155550100"
    assert record["body"] == "Someone bid 120.00 on Blue Vase"
    assert record["idempotency_key"] == "delivery-9"
    assert record["outcome"] == "accepted"
    assert result.provider_message_id == record["message_id"]
    assert result.provider_message_id.startswith("SM")
    assert result.response["status_code"] == 201


def test_invalid_number_rejected_before_any_request(twilio, sandbox, outbound):
    with pytest.raises(ProviderError) as caught:
        get_adapter(twilio).send(sms(outbound, recipient="+1415555"))

    assert caught.value.error_code == "INVALID_RECIPIENT"
    assert caught.value.retryable is False
    assert sandbox.messages("twilio") == []


def test_twilio_21211_is_invalid_recipient(twilio, sandbox, outbound):
    sandbox.configure("twilio", invalid_recipients=["+14155550100"])

    with pytest.raises(ProviderError) as caught:
        get_adapter(twilio).send(sms(outbound))

    assert caught.value.error_code == "INVALID_RECIPIENT"
    assert caught.value.retryable is False
    assert caught.value.response["body"]["code"] == 21211


def test_twilio_bad_credentials_is_auth_failed(twilio, sandbox, outbound, monkeypatch):
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "wrong")

    with pytest.raises(ProviderError) as caught:
        get_adapter(twilio).send(sms(outbound))

    assert caught.value.error_code == "AUTH_FAILED"
    assert caught.value.retryable is False


def test_twilio_503_fails_over_to_vonage_with_same_key(twilio, vonage, sandbox, outbound):
    # Given Twilio failing with 503
    sandbox.configure("twilio", status=503)

    # When sending with failover
    outcome = send_with_failover(sms(outbound, idempotency_key="delivery-12"), [twilio, vonage])

    # Then Vonage carried it, and both saw the same idempotency key
    assert outcome.provider == vonage
    assert [(a.provider_name, a.error_code) for a in outcome.attempts] == [
        ("twilio-main", "PROVIDER_UNAVAILABLE"),
        ("vonage-main", None),
    ]
    [twilio_rec] = sandbox.messages("twilio")
    [vonage_rec] = sandbox.messages("vonage")
    assert twilio_rec["idempotency_key"] == "delivery-12"
    assert vonage_rec["idempotency_key"] == "delivery-12"
    assert vonage_rec["recipient"] == "14155550100"
    assert outcome.result.cost == Decimal("0.03330000")


def test_twilio_429_carries_retry_after(twilio, sandbox, outbound):
    sandbox.configure("twilio", status=429, retry_after=4)

    with pytest.raises(ProviderError) as caught:
        get_adapter(twilio).send(sms(outbound))

    assert caught.value.error_code == "RATE_LIMITED"
    assert caught.value.retryable is True
    assert caught.value.retry_after == 4.0


@pytest.mark.parametrize(
    ("error_code", "code", "retryable"),
    [("1", "RATE_LIMITED", True), ("4", "AUTH_FAILED", False), ("5", "PROVIDER_UNAVAILABLE", True)],
)
def test_vonage_in_body_status_mapping(vonage, sandbox, outbound, error_code, code, retryable):
    sandbox.configure("vonage", error_code=error_code)

    with pytest.raises(ProviderError) as caught:
        get_adapter(vonage).send(sms(outbound))

    assert caught.value.error_code == code
    assert caught.value.retryable is retryable


def test_vonage_invalid_recipient(vonage, sandbox, outbound):
    sandbox.configure("vonage", invalid_recipients=["14155550100"])

    with pytest.raises(ProviderError) as caught:
        get_adapter(vonage).send(sms(outbound))

    assert caught.value.error_code == "INVALID_RECIPIENT"
    assert caught.value.retryable is False


def test_sandbox_timeout_maps_to_timeout(twilio, sandbox, outbound):
    twilio.configuration = {**twilio.configuration, "timeout": 0.5}
    sandbox.configure("twilio", timeout=True, hang_seconds=3)

    with pytest.raises(ProviderError) as caught:
        get_adapter(twilio).send(sms(outbound))

    assert caught.value.error_code == "TIMEOUT"
    assert caught.value.retryable is True
