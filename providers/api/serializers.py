from __future__ import annotations

from typing import Any

from rest_framework import serializers

from notifyplatform.api_fields import StrictBooleanField
from providers import policy
from providers.models import Provider, ProviderHealthMetric
from providers.registry import UnknownAdapterError, adapter_class


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
        extra_kwargs = {
            "supported_features": {
                "help_text": "Feature name -> bool; absent means supported, false means "
                "routing skips this provider for a message needing it. Vocabulary: html, "
                "attachments, images, actions (README 'Provider features')"
            }
        }

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


class ProviderUpdateSerializer(serializers.Serializer):
    """What staff may change through the API (credential lists and classes stay in the
    admin). ``configuration`` is replaced whole and must pass ``providers.policy``."""

    is_enabled = StrictBooleanField(required=False)
    priority = serializers.IntegerField(required=False, min_value=0, max_value=1000)
    configuration = serializers.JSONField(required=False)

    def validate_configuration(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        provider = self.context["provider"]
        try:
            kind = adapter_class(provider.provider_class).kind or provider.provider_class
        except UnknownAdapterError:
            kind = provider.provider_class
        problems = policy.configuration_problems(
            provider_class=kind,
            configuration=value,
            webhook_config=provider.webhook_config,
            credentials_required=provider.credentials_required,
        )
        if problems:
            raise serializers.ValidationError([m for msgs in problems.values() for m in msgs])
        return value
