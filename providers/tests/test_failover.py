"""send_with_failover: one call, several providers, one idempotency key."""

from __future__ import annotations

import pytest

from providers.services import send_with_failover
from providers.tests.conftest import Reply


@pytest.fixture
def allow_loopback(settings):
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


def test_retryable_error_fails_over_with_same_idempotency_key(
    make_provider, http_server, outbound, allow_loopback
):
    # Given two webhook providers, the first of which answers 500 (a receiver behind
    # each; the message's recipient URL is the same, the provider decides the path)
    first = make_provider(provider_name="hooks-primary", priority=10, configuration={"timeout": 5})
    second = make_provider(provider_name="hooks-secondary", priority=20)
    http_server.reply("/hook", Reply(status=500, body={"message": "down"}), Reply(status=200))
    message = outbound(recipient=f"{http_server.url}/hook", idempotency_key="delivery-77")

    # When sending with failover
    outcome = send_with_failover(message, [first, second])

    # Then the second provider carried it, after a recorded failed attempt
    assert outcome.ok is True
    assert outcome.provider == second
    assert outcome.error is None
    assert [(a.provider_name, a.ok, a.error_code, a.retryable) for a in outcome.attempts] == [
        ("hooks-primary", False, "PROVIDER_UNAVAILABLE", True),
        ("hooks-secondary", True, None, None),
    ]
    assert outcome.attempts[0].response["status_code"] == 500
    assert outcome.attempts[1].provider_message_id == "delivery-77"
    # and both requests carried the same idempotency key
    assert [r.headers["webhook-id"] for r in http_server.requests] == ["delivery-77", "delivery-77"]
    assert all(a.duration_ms >= 0 for a in outcome.attempts)
    assert outcome.attempts[0].to_dict()["error_code"] == "PROVIDER_UNAVAILABLE"


def test_permanent_error_stops_failover(make_provider, http_server, outbound, allow_loopback):
    # Given a first provider that rejects the message as a bad request
    first = make_provider(provider_name="hooks-a", priority=10)
    second = make_provider(provider_name="hooks-b", priority=20)
    http_server.reply("/hook", Reply(status=400, body={"message": "bad payload"}))

    outcome = send_with_failover(outbound(recipient=f"{http_server.url}/hook"), [first, second])

    # Then it stops at the first provider: another would refuse it too
    assert outcome.ok is False
    assert outcome.provider == first
    assert outcome.error.error_code == "REJECTED"
    assert outcome.error.retryable is False
    assert [a.provider_name for a in outcome.attempts] == ["hooks-a"]
    assert len(http_server.requests) == 1


def test_all_retryable_failures_return_last_error(
    make_provider, http_server, outbound, allow_loopback
):
    first = make_provider(provider_name="hooks-x", priority=10)
    second = make_provider(provider_name="hooks-y", priority=20)
    http_server.reply(
        "/hook", Reply(status=503, body={}), Reply(status=429, headers={"Retry-After": "3"})
    )

    outcome = send_with_failover(outbound(recipient=f"{http_server.url}/hook"), [first, second])

    assert outcome.ok is False
    assert outcome.provider is None
    assert outcome.error.error_code == "RATE_LIMITED"
    assert outcome.error.retryable is True
    assert outcome.error.retry_after == 3.0
    assert [a.error_code for a in outcome.attempts] == ["PROVIDER_UNAVAILABLE", "RATE_LIMITED"]


def test_no_providers_is_no_provider(outbound):
    outcome = send_with_failover(outbound(), [])

    assert outcome.ok is False
    assert outcome.attempts == []
    assert outcome.error.error_code == "NO_PROVIDER"
    assert outcome.error.retryable is True


def test_unconfigured_provider_is_skipped_to_the_next(make_provider, outbound, monkeypatch):
    monkeypatch.delenv("NP_TEST_MISSING", raising=False)
    broken = make_provider(
        provider_name="inapp-broken",
        provider_type="in_app",
        provider_class="in_app",
        credentials_required=["NP_TEST_MISSING"],
    )
    working = make_provider(provider_name="inapp", provider_type="in_app", provider_class="in_app")

    outcome = send_with_failover(outbound(channel="in_app", delivery_id=9), [broken, working])

    assert outcome.provider == working
    assert outcome.result.provider_message_id == "9"
    assert [(a.provider_name, a.error_code) for a in outcome.attempts] == [
        ("inapp-broken", "UNCONFIGURED"),
        ("inapp", None),
    ]
    assert outcome.attempts[0].error_message == (
        "provider inapp-broken unconfigured: missing env NP_TEST_MISSING"
    )


def test_console_adapter_logs(make_provider, outbound, caplog):
    provider = make_provider(
        provider_name="console", provider_type="email", provider_class="console"
    )

    with caplog.at_level("INFO", logger="providers.console"):
        outcome = send_with_failover(outbound(channel="email", delivery_id=5), [provider])

    assert outcome.result.provider_message_id == "console-5"
    assert "console email delivery 5 to http://127.0.0.1:1/hook" in caplog.text
