"""Read paths of the providers app."""

from __future__ import annotations

from django.db.models import QuerySet

from providers.models import Provider, ProviderHealthMetric


def provider_list(*, provider_type: str | None = None) -> QuerySet[Provider]:
    rows = Provider.objects.all()
    if provider_type:
        rows = rows.filter(provider_type=provider_type)
    return rows.order_by("provider_type", "priority", "provider_name")


def provider_get(*, name: str) -> Provider | None:
    return Provider.objects.filter(provider_name=name).first()


def provider_health_list(*, name: str | None = None) -> QuerySet[ProviderHealthMetric]:
    rows = ProviderHealthMetric.objects.all()
    if name:
        rows = rows.filter(provider_name=name)
    return rows.order_by("-health_check_timestamp")
