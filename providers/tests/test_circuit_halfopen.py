"""The circuit breaker end to end against the sandbox: 20 consecutive failures open it, and
then no request reaches the provider (counted at the sandbox) until a health check passes
or the single half-open trial after the cooldown succeeds."""

from __future__ import annotations

import itertools

import pytest

from providers import circuit
from providers.health import provider_check_health
from providers.models import Provider
from providers.routing import candidates
from providers.services import send_with_failover

_ids = itertools.count(100)


@pytest.fixture
def primary(make_provider, sandbox, settings):
    settings.NP_CIRCUIT_CONSECUTIVE = 20
    settings.NP_CIRCUIT_MIN_ERRORS = 1000  # only the consecutive rule is under test
    settings.NP_CIRCUIT_COOLDOWN = 3600  # "not cooled down yet" until a test says otherwise
    make_provider(provider_name="backup", provider_type="sms", provider_class="console", priority=9)
    return make_provider(
        provider_name="twilio-primary",
        provider_type="sms",
        provider_class="twilio",
        priority=1,
        health_check_url=f"{sandbox.url}/_sandbox/health/twilio",
        configuration={
            "api_base_url": sandbox.url,
            "from_number": "+15005550006",
            "receipt_url": False,
        },
    )


def send_one(outbound):
    n = next(_ids)
    message = outbound(
        delivery_id=n,
        channel="sms",
        recipient="+14155550100",
        recipient_type="phone",
        idempotency_key=f"delivery-{n}",
    )
    return send_with_failover(message, candidates(channel="sms"))


def reached_primary(sandbox) -> int:
    return len(sandbox.messages("twilio"))


def trip(primary, sandbox, outbound) -> None:
    sandbox.configure("twilio", status=500)
    for _ in range(20):
        outcome = send_one(outbound)
        assert outcome.provider.provider_name == "backup"  # failed over, not lost
    assert reached_primary(sandbox) == 20
    assert circuit.state(primary)["state"] == "open"


def test_twenty_failures_open_the_circuit_until_a_health_check_passes(primary, sandbox, outbound):
    # Given 20 consecutive 500s from the primary
    trip(primary, sandbox, outbound)

    # When more messages are sent while it is open
    for _ in range(10):
        outcome = send_one(outbound)
        assert [a.provider_name for a in outcome.attempts] == ["backup"]
    # Then not one of them reached the provider
    assert reached_primary(sandbox) == 20

    # A health check while the provider still fails keeps the circuit open
    metric = provider_check_health(Provider.objects.get(pk=primary.pk))
    assert metric.is_healthy is False
    send_one(outbound)
    assert reached_primary(sandbox) == 20

    # When the provider recovers and the health check passes
    sandbox.configure("twilio", reset=True)
    metric = provider_check_health(Provider.objects.get(pk=primary.pk))

    # Then the circuit is closed and traffic reaches the provider again
    assert metric.is_healthy is True
    assert circuit.state(primary)["state"] == "closed"
    outcome = send_one(outbound)
    assert outcome.provider.provider_name == "twilio-primary"
    assert reached_primary(sandbox) == 21


def test_half_open_lets_one_trial_through_and_its_success_closes_the_circuit(
    primary, sandbox, outbound, settings
):
    trip(primary, sandbox, outbound)
    for _ in range(5):
        send_one(outbound)
    assert reached_primary(sandbox) == 20

    # When the cooldown has passed, one caller (only one) gets the provider as the trial
    settings.NP_CIRCUIT_COOLDOWN = 0
    first = [p.provider_name for p in candidates(channel="sms")]
    second = [p.provider_name for p in candidates(channel="sms")]
    assert first == ["twilio-primary", "backup"]
    assert second == ["backup"]
    assert circuit.state(primary)["state"] == "half_open"
    assert reached_primary(sandbox) == 20


def test_failed_trial_reopens_for_another_cooldown_and_a_later_trial_closes_it(
    primary, sandbox, outbound, settings
):
    trip(primary, sandbox, outbound)
    opened_first = circuit.state(primary)["opened_at"]

    # When the cooldown has passed and the trial fails (the provider still answers 500)
    settings.NP_CIRCUIT_COOLDOWN = 0
    outcome = send_one(outbound)

    # Then exactly one request reached the provider, the message still went out, and the
    # circuit is open again with a new cooldown
    assert reached_primary(sandbox) == 21
    assert [(a.provider_name, a.ok) for a in outcome.attempts] == [
        ("twilio-primary", False),
        ("backup", True),
    ]
    state = circuit.state(primary)
    assert state["state"] == "open"
    assert state["opened_at"] > opened_first
    assert Provider.objects.get(pk=primary.pk).is_healthy is False
    settings.NP_CIRCUIT_COOLDOWN = 3600
    for _ in range(5):
        send_one(outbound)
    assert reached_primary(sandbox) == 21

    # When the provider recovers and the next trial succeeds
    sandbox.configure("twilio", reset=True)
    settings.NP_CIRCUIT_COOLDOWN = 0
    trial = send_one(outbound)

    # Then the circuit is closed and the provider takes all traffic again
    assert trial.provider.provider_name == "twilio-primary"
    assert Provider.objects.get(pk=primary.pk).is_healthy is True
    assert circuit.state(primary) == {
        "state": "closed",
        "opened_at": None,
        "ok": 0,
        "errors": 0,
        "consecutive": 0,
    }
    settings.NP_CIRCUIT_COOLDOWN = 3600
    for _ in range(3):
        assert send_one(outbound).provider.provider_name == "twilio-primary"
    assert reached_primary(sandbox) == 25


def test_a_row_marked_unhealthy_without_an_opening_time_gets_no_trial(make_provider, settings):
    settings.NP_CIRCUIT_COOLDOWN = 0
    provider = make_provider(
        provider_name="manual", provider_type="sms", provider_class="console", is_healthy=False
    )

    assert candidates(channel="sms") == []
    assert circuit.claim_trial(provider) is False
