"""The daily spend cap step of sending (providers.spendcap): a capped provider fails over
with SPEND_CAP, a refused send gives its reservation back, routing primes the counter
from the database's sent costs."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from providers import spendcap
from providers.routing import candidates
from providers.services import send_with_failover
from providers.tests.conftest import Reply


@pytest.fixture(autouse=True)
def allow_loopback(settings):
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]


def costly(make_provider, name: str, *, cap: str, priority: int = 10):
    return make_provider(
        provider_name=name,
        priority=priority,
        cost_per_message=Decimal("0.01"),
        configuration={"timeout": 5, "daily_spend_cap": cap},
    )


def test_a_capped_provider_fails_over_and_its_spend_is_reserved(
    make_provider, http_server, outbound
):
    first = costly(make_provider, "hooks-capped", cap="0.02")
    second = costly(make_provider, "hooks-next", cap="1.00", priority=20)
    http_server.reply("/hook", Reply(status=200), Reply(status=200), Reply(status=200))
    sent_by = [
        send_with_failover(outbound(recipient=f"{http_server.url}/hook"), [first, second])
        for _ in range(3)
    ]
    assert [o.provider.provider_name for o in sent_by] == [
        "hooks-capped",
        "hooks-capped",
        "hooks-next",
    ]
    assert [(a.provider_name, a.error_code) for a in sent_by[2].attempts] == [
        ("hooks-capped", "SPEND_CAP"),
        ("hooks-next", None),
    ]
    assert sent_by[2].attempts[0].retryable is True
    reached = spendcap.reserve(first)
    assert (reached.cap, reached.spent) == (Decimal("0.02"), Decimal("0.02"))
    assert 0 < reached.reset_in <= 86400


def test_a_send_the_provider_refused_gives_its_reservation_back(
    make_provider, http_server, outbound
):
    provider = costly(make_provider, "hooks-refusing", cap="0.01")
    http_server.reply("/hook", Reply(status=400, body={"message": "bad"}), Reply(status=200))
    refused = send_with_failover(outbound(recipient=f"{http_server.url}/hook"), [provider])
    assert refused.error.error_code == "REJECTED"
    # the one message the cap allows is still available
    taken = send_with_failover(outbound(recipient=f"{http_server.url}/hook"), [provider])
    assert taken.ok is True
    assert spendcap.reserve(provider) is not None


def test_providers_without_a_cost_or_a_cap_are_not_capped(make_provider, settings):
    settings.NP_PROVIDER_DAILY_SPEND_CAP = ""
    free = make_provider(provider_name="hooks-free", configuration={"daily_spend_cap": "0"})
    uncapped = make_provider(provider_name="hooks-uncapped", cost_per_message=Decimal("0.5"))
    assert spendcap.reserve(free) is None and spendcap.reserve(uncapped) is None
    settings.NP_PROVIDER_DAILY_SPEND_CAP = "0.4"  # the default cap applies to costed rows
    assert spendcap.reserve(uncapped).cap == Decimal("0.4")


def test_routing_primes_the_counter_from_the_database(make_provider, make_user):
    """A Redis that lost its counter (or a new process) starts from what was really spent
    in the window, not from zero."""
    from deliveries.models import NotificationDelivery

    provider = costly(make_provider, "hooks-primed", cap="0.05")
    for _ in range(5):
        NotificationDelivery.objects.create(
            delivery_type="webhook",
            recipient="https://example.test/h",
            recipient_type="webhook",
            status="sent",
            provider_name="hooks-primed",
            provider_type="webhook",
            provider_priority=10,
            cost_per_message=Decimal("0.01"),
            sent_at=timezone.now(),
        )
    assert [p.provider_name for p in candidates(channel="webhook")] == ["hooks-primed"]
    assert spendcap.reserve(provider).spent == Decimal("0.05")
