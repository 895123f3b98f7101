"""Rate limits and the circuit breaker, with their counters in the real Redis."""

from __future__ import annotations

import logging

from providers import circuit, ratelimit
from providers.models import Provider
from providers.routing import candidates
from providers.services import send_with_failover


def test_rate_limit_per_minute_takes_tokens_then_refuses(make_provider):
    provider = make_provider(
        provider_type="in_app",
        provider_class="in_app",
        rate_limit_per_minute=2,
        rate_limit_per_day=100,
    )

    assert ratelimit.acquire(provider) is None
    assert ratelimit.available(provider) is None
    assert ratelimit.acquire(provider) is None
    exhausted = ratelimit.acquire(provider)

    assert exhausted is not None
    assert exhausted.period == "minute"
    assert exhausted.limit == 2
    assert 0 < exhausted.reset_in <= 60
    assert ratelimit.remaining(provider)[0] == 0
    # the refused call did not consume the day's tokens
    day_key = ratelimit.limits(provider)[1].key
    from providers import kv

    assert kv.client().get(day_key) == "2"


def test_routing_skips_provider_out_of_tokens(make_provider, outbound, caplog):
    # Given a limited provider first in line and an unlimited one after it
    limited = make_provider(
        provider_name="limited",
        provider_type="in_app",
        provider_class="in_app",
        priority=1,
        rate_limit_per_hour=1,
    )
    make_provider(
        provider_name="spare", provider_type="in_app", provider_class="in_app", priority=2
    )

    # When the first send uses its only token
    first = send_with_failover(outbound(channel="in_app"), candidates(channel="in_app"))
    assert first.provider == limited

    # Then routing skips it with a log line
    with caplog.at_level(logging.INFO, logger="providers.routing"):
        assert [p.provider_name for p in candidates(channel="in_app")] == ["spare"]
    assert any(
        m.startswith("provider limited skipped: rate limit per hour (1) reached")
        for m in caplog.messages
    )


def test_send_with_failover_fails_over_when_tokens_run_out(make_provider, outbound):
    limited = make_provider(
        provider_name="tight",
        provider_type="in_app",
        provider_class="in_app",
        rate_limit_per_minute=1,
    )
    spare = make_provider(provider_name="loose", provider_type="in_app", provider_class="in_app")
    send_with_failover(outbound(channel="in_app"), [limited])

    outcome = send_with_failover(outbound(channel="in_app"), [limited, spare])

    assert outcome.provider == spare
    assert [(a.provider_name, a.error_code) for a in outcome.attempts] == [
        ("tight", "RATE_LIMITED"),
        ("loose", None),
    ]


def test_circuit_opens_after_consecutive_failures(make_provider, settings):
    settings.NP_CIRCUIT_CONSECUTIVE = 3
    provider = make_provider(provider_name="flaky", provider_type="sms", provider_class="console")

    assert circuit.record_failure(provider) is False
    assert circuit.record_failure(provider) is False
    assert circuit.record_failure(provider) is True

    provider.refresh_from_db()
    assert provider.is_healthy is False
    assert candidates(channel="sms") == []


def test_success_resets_the_consecutive_count(make_provider, settings):
    settings.NP_CIRCUIT_CONSECUTIVE = 3
    settings.NP_CIRCUIT_MIN_ERRORS = 1000
    provider = make_provider(provider_type="sms", provider_class="console")

    circuit.record_failure(provider)
    circuit.record_failure(provider)
    circuit.record_success(provider)
    assert circuit.record_failure(provider) is False

    assert circuit.stats(provider) == {"ok": 1, "errors": 3, "consecutive": 1}
    assert Provider.objects.get(pk=provider.pk).is_healthy is True


def test_circuit_opens_at_error_count_and_rate(make_provider, settings):
    settings.NP_CIRCUIT_MIN_ERRORS = 4
    settings.NP_CIRCUIT_ERROR_RATE = 0.35
    settings.NP_CIRCUIT_CONSECUTIVE = 1000
    provider = make_provider(provider_type="sms", provider_class="console")
    for _ in range(6):
        circuit.record_success(provider)
    # 3 errors out of 9: below the minimum count
    opened = [circuit.record_failure(provider) for _ in range(3)]
    assert opened == [False, False, False]
    for _ in range(4):
        circuit.record_success(provider)
    # 4 errors of 14 calls = 28.6 %: count reached, rate not
    assert circuit.record_failure(provider) is False
    # 5 of 15 = 33 %, 6 of 16 = 37.5 % → opens
    assert circuit.record_failure(provider) is False
    assert circuit.record_failure(provider) is True
    assert Provider.objects.get(pk=provider.pk).is_healthy is False


def test_close_circuit_makes_provider_routable_again(make_provider, settings):
    settings.NP_CIRCUIT_CONSECUTIVE = 1
    provider = make_provider(provider_name="back", provider_type="sms", provider_class="console")
    circuit.record_failure(provider)
    assert candidates(channel="sms") == []

    circuit.close_circuit(provider)

    assert [p.provider_name for p in candidates(channel="sms")] == ["back"]
    assert circuit.stats(provider) == {"ok": 0, "errors": 0, "consecutive": 0}
