"""Provider health: probe each provider, record ``provider_health_metrics`` with the
success rates of its real traffic (from ``notification_deliveries``), and open or close
its circuit."""

from __future__ import annotations

import logging
from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from providers import circuit, ratelimit, traffic
from providers.models import Provider, ProviderHealthMetric
from providers.registry import UnknownAdapterError, get_adapter
from providers.types import HealthResult

logger = logging.getLogger(__name__)


def success_rates(provider_name: str) -> dict[str, Decimal | None]:
    """Percent of finished deliveries (sent/delivered vs failed/bounced) per window (1h, 24h,
    7d), read through the traffic source deliveries registers (``providers.traffic``)."""
    return traffic.source().success_rates(provider_name)


def provider_check_health(provider: Provider) -> ProviderHealthMetric:
    """Probe one provider, write its metrics row, and open/close its circuit."""
    try:
        adapter = get_adapter(provider)
        refused = adapter.configuration_refused()
        if refused:  # never probe a server (with credentials) the policy refuses
            result = HealthResult(
                ok=False,
                error_code="UNCONFIGURED",
                error_message="configuration refused: " + "; ".join(refused),
            )
        else:
            result = adapter.check_health()
    except UnknownAdapterError as exc:
        result = HealthResult(ok=False, error_code="UNCONFIGURED", error_message=str(exc))
    missing = (
        [] if result.error_code == "UNCONFIGURED" else get_adapter(provider).missing_credentials()
    )
    if missing:
        result = HealthResult(
            ok=False,
            error_code="UNCONFIGURED",
            error_message=f"provider {provider.provider_name} unconfigured: missing env "
            + ", ".join(missing),
        )
    now = timezone.now()
    if result.ok and not provider.is_healthy and (result.checked or circuit.cooled_down(provider)):
        circuit.close_circuit(provider)
    elif not result.ok and result.checked and provider.is_healthy:
        circuit.open_circuit(provider, reason=f"health check failed: {result.error_message}")
    remaining, reset_in = ratelimit.remaining(provider)
    rates = success_rates(provider.provider_name)
    Provider.objects.filter(pk=provider.pk).update(last_health_check=now)
    return ProviderHealthMetric.objects.create(
        provider_name=provider.provider_name,
        provider_type=provider.provider_type,
        health_check_timestamp=now,
        is_healthy=result.ok and provider.is_healthy,
        response_time_ms=result.response_time_ms,
        error_message=result.error_message,
        error_code=result.error_code,
        success_rate_1h=rates["1h"],
        success_rate_24h=rates["24h"],
        success_rate_7d=rates["7d"],
        cost_per_message=provider.cost_per_message,
        rate_limit_remaining=remaining,
        rate_limit_reset_at=now + timedelta(seconds=reset_in) if reset_in is not None else None,
        geographic_region=",".join(provider.geographic_coverage or []) or None,
    )


def check_all() -> list[ProviderHealthMetric]:
    metrics = []
    for provider in Provider.objects.filter(is_enabled=True).order_by("provider_name"):
        try:
            metrics.append(provider_check_health(provider))
        except Exception:  # one broken provider must not stop the others' checks
            logger.exception("health check of provider %s crashed", provider.provider_name)
    return metrics
