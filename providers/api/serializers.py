from __future__ import annotations

from rest_framework import serializers

from providers.models import Provider, ProviderHealthMetric


class ProviderSerializer(serializers.ModelSerializer):
    missing_credentials = serializers.SerializerMethodField()

    class Meta:
        model = Provider
        fields = [
            "id",
            "provider_name",
            "provider_type",
            "provider_class",
            "priority",
            "is_enabled",
            "is_healthy",
            "rate_limit_per_minute",
            "rate_limit_per_hour",
            "rate_limit_per_day",
            "cost_per_message",
            "geographic_coverage",
            "supported_features",
            "configuration",
            "credentials_required",
            "last_health_check",
            "missing_credentials",
        ]

    def get_missing_credentials(self, obj: Provider) -> list[str]:
        from providers.registry import UnknownAdapterError, get_adapter

        try:
            return get_adapter(obj).missing_credentials()
        except UnknownAdapterError:
            return []


class ProviderHealthMetricSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProviderHealthMetric
        fields = "__all__"
