"""Health checks: metrics rows, success rates from real deliveries, circuit closing."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from providers import circuit
from providers.health import check_all, provider_check_health
from providers.models import Provider, ProviderHealthMetric
from providers.tests.conftest import Reply


def _deliveries(name, statuses, age=timedelta(minutes=5)):
    from deliveries.models import NotificationDelivery

    rows = NotificationDelivery.objects.bulk_create(
        NotificationDelivery(
            delivery_type="email",
            provider_type="email",
            provider_name=name,
            provider_priority=1,
            recipient="a@example.test",
            recipient_type="email",
            status=status,
        )
        for status in statuses
    )
    NotificationDelivery.objects.filter(pk__in=[r.pk for r in rows]).update(
        created_at=timezone.now() - age
    )


def test_metrics_row_with_success_rates(make_provider, smtp_server):
    provider = make_provider(
        provider_name="smtp-health",
        provider_type="email",
        provider_class="smtp",
        configuration={"host": smtp_server.hostname, "port": smtp_server.port},
        cost_per_message=Decimal("0.000100"),
        rate_limit_per_minute=10,
    )
    _deliveries("smtp-health", ["sent", "delivered", "delivered", "failed"])  # 1h: 3/4
    _deliveries("smtp-health", ["bounced", "bounced", "bounced", "bounced"], timedelta(hours=3))
    _deliveries("smtp-health", ["delivered", "delivered"], timedelta(days=3))
    _deliveries("smtp-health", ["pending", "skipped"])  # not finished: not counted
    _deliveries("other", ["failed"])

    metric = provider_check_health(provider)

    assert metric.is_healthy is True
    assert metric.provider_type == "email"
    assert metric.response_time_ms is not None
    assert metric.success_rate_1h == Decimal("75.00")
    assert metric.success_rate_24h == Decimal("37.50")
    assert metric.success_rate_7d == Decimal("50.00")
    assert metric.cost_per_message == Decimal("0.000100")
    assert metric.rate_limit_remaining == 10
    provider.refresh_from_db()
    assert provider.last_health_check == metric.health_check_timestamp


def test_passing_health_check_closes_open_circuit(make_provider, http_server):
    provider = make_provider(
        provider_name="hooky",
        health_check_url=f"{http_server.url}/health",
        is_healthy=True,
    )
    circuit.open_circuit(provider, reason="test")
    assert Provider.objects.get(pk=provider.pk).is_healthy is False

    metric = provider_check_health(Provider.objects.get(pk=provider.pk))

    assert metric.is_healthy is True
    assert Provider.objects.get(pk=provider.pk).is_healthy is True
    assert http_server.requests[0].path == "/health"


def test_failing_health_check_opens_circuit(make_provider, http_server):
    http_server.reply("/health", Reply(status=503, body={"message": "maintenance"}))
    provider = make_provider(provider_name="down", health_check_url=f"{http_server.url}/health")

    metric = provider_check_health(provider)

    assert metric.is_healthy is False
    assert metric.error_code == "PROVIDER_UNAVAILABLE"
    assert Provider.objects.get(pk=provider.pk).is_healthy is False


def test_unconfigured_provider_reported(make_provider, monkeypatch):
    monkeypatch.delenv("NP_TEST_NOPE", raising=False)
    make_provider(
        provider_name="nokey",
        provider_type="in_app",
        provider_class="in_app",
        credentials_required=["NP_TEST_NOPE"],
    )
    make_provider(
        provider_name="off", provider_type="in_app", provider_class="in_app", is_enabled=False
    )

    metrics = check_all()

    assert [(m.provider_name, m.is_healthy, m.error_code) for m in metrics] == [
        ("nokey", False, "UNCONFIGURED")
    ]
    assert metrics[0].error_message == "provider nokey unconfigured: missing env NP_TEST_NOPE"
    assert ProviderHealthMetric.objects.count() == 1
