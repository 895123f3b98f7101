"""FilterSets of providers (used by the API)."""

from __future__ import annotations

import django_filters

from .models import ProviderHealthMetric


class ProviderHealthFilter(django_filters.FilterSet):
    provider_name = django_filters.CharFilter()
    is_healthy = django_filters.BooleanFilter()
    checked_after = django_filters.IsoDateTimeFilter(
        field_name="health_check_timestamp", lookup_expr="gte"
    )
    checked_before = django_filters.IsoDateTimeFilter(
        field_name="health_check_timestamp", lookup_expr="lt"
    )

    class Meta:
        model = ProviderHealthMetric
        fields = ["provider_name", "is_healthy", "checked_after", "checked_before"]
