"""routing.candidates: which providers, in which order."""

from __future__ import annotations

import logging
from decimal import Decimal

from providers.routing import candidates


def names(providers):
    return [p.provider_name for p in providers]


def test_order_by_priority_then_cost_then_name(make_provider):
    make_provider(
        provider_name="c-expensive",
        provider_type="sms",
        provider_class="console",
        priority=10,
        cost_per_message=Decimal("0.0100"),
    )
    make_provider(
        provider_name="b-cheap",
        provider_type="sms",
        provider_class="console",
        priority=10,
        cost_per_message=Decimal("0.0050"),
    )
    make_provider(
        provider_name="a-unknown-cost", provider_type="sms", provider_class="console", priority=10
    )
    make_provider(
        provider_name="z-first",
        provider_type="sms",
        provider_class="console",
        priority=1,
        cost_per_message=Decimal("0.0900"),
    )
    make_provider(provider_name="email-one", provider_type="email", provider_class="console")

    assert names(candidates(channel="sms")) == [
        "z-first",
        "b-cheap",
        "c-expensive",
        "a-unknown-cost",
    ]


def test_disabled_unhealthy_and_blocked_are_excluded(make_provider):
    make_provider(provider_name="ok", provider_type="sms", provider_class="console", priority=3)
    make_provider(
        provider_name="off", provider_type="sms", provider_class="console", is_enabled=False
    )
    make_provider(
        provider_name="sick", provider_type="sms", provider_class="console", is_healthy=False
    )
    make_provider(
        provider_name="blocked", provider_type="sms", provider_class="console", priority=1
    )

    assert names(candidates(channel="sms", blocked=["blocked"])) == ["ok"]
    # blocked wins over preferred
    assert names(candidates(channel="sms", preferred=["blocked"], blocked=["blocked"])) == ["ok"]


def test_region_coverage(make_provider):
    make_provider(
        provider_name="eu-only",
        provider_type="sms",
        provider_class="console",
        priority=1,
        geographic_coverage=["EU"],
    )
    make_provider(
        provider_name="worldwide",
        provider_type="sms",
        provider_class="console",
        priority=2,
        geographic_coverage=[],
    )
    make_provider(
        provider_name="global",
        provider_type="sms",
        provider_class="console",
        priority=3,
        geographic_coverage=["global"],
    )

    assert names(candidates(channel="sms", region="EU")) == ["eu-only", "worldwide", "global"]
    assert names(candidates(channel="sms", region="US")) == ["worldwide", "global"]
    assert names(candidates(channel="sms")) == ["worldwide", "global"]


def test_preferred_first_in_user_order(make_provider):
    for name, priority in [("p1", 1), ("p2", 2), ("p3", 3), ("p4", 4)]:
        make_provider(
            provider_name=name, provider_type="push", provider_class="console", priority=priority
        )

    assert names(candidates(channel="push", preferred=["p4", "p3", "nonexistent"])) == [
        "p4",
        "p3",
        "p1",
        "p2",
    ]


def test_unconfigured_provider_skipped_with_log_line(make_provider, monkeypatch, caplog):
    monkeypatch.delenv("NP_TEST_TWILIO_SID", raising=False)
    monkeypatch.delenv("NP_TEST_TWILIO_TOKEN", raising=False)
    make_provider(
        provider_name="needs-keys",
        provider_type="sms",
        provider_class="console",
        priority=1,
        credentials_required=["NP_TEST_TWILIO_SID", "NP_TEST_TWILIO_TOKEN"],
    )
    make_provider(provider_name="ready", provider_type="sms", provider_class="console", priority=2)

    with caplog.at_level(logging.WARNING, logger="providers.routing"):
        found = candidates(channel="sms")

    assert names(found) == ["ready"]
    assert (
        "provider needs-keys unconfigured: missing env NP_TEST_TWILIO_SID, NP_TEST_TWILIO_TOKEN"
        in caplog.messages
    )


def test_configured_once_env_present(make_provider, monkeypatch):
    monkeypatch.setenv("NP_TEST_KEY", "secret")
    make_provider(
        provider_name="keyed",
        provider_type="sms",
        provider_class="console",
        credentials_required=["NP_TEST_KEY"],
    )

    assert names(candidates(channel="sms")) == ["keyed"]


def test_unknown_adapter_kind_skipped(make_provider, caplog):
    make_provider(provider_name="mystery", provider_type="sms", provider_class="carrier-pigeon")

    with caplog.at_level(logging.ERROR, logger="providers.routing"):
        assert candidates(channel="sms") == []
    assert "provider mystery skipped: unknown provider kind 'carrier-pigeon'" in caplog.messages
