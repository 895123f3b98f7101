"""Admin for the provider registry and its health history.

Enabling/disabling a provider is a plain column edit; health metrics are written by
the health checker only, so they are browse-only here.
"""

from __future__ import annotations

from django.contrib import admin

from notifyplatform.admin_utils import NPModelAdmin, ReadOnlyModelAdmin

from .models import Provider, ProviderHealthMetric


@admin.register(Provider)
class ProviderAdmin(NPModelAdmin):
    list_display = (
        "provider_name",
        "provider_type",
        "provider_class",
        "priority",
        "is_enabled",
        "is_healthy",
        "cost_per_message",
        "rate_limit_per_minute",
        "last_health_check",
    )
    list_filter = ("provider_type", "is_enabled", "is_healthy")
    search_fields = ("provider_name", "provider_class")
    list_editable = ("priority", "is_enabled")
    ordering = ("provider_type", "priority", "provider_name")
    readonly_fields = ("last_health_check",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "provider_name",
                    "provider_type",
                    "provider_class",
                    "priority",
                    "is_enabled",
                    "is_healthy",
                )
            },
        ),
        (
            "Limits, cost and coverage",
            {
                "fields": (
                    "rate_limit_per_minute",
                    "rate_limit_per_hour",
                    "rate_limit_per_day",
                    "cost_per_message",
                    "geographic_coverage",
                )
            },
        ),
        (
            "Configuration (no secrets: credentials are environment variables)",
            {
                "fields": (
                    "configuration",
                    "credentials_required",
                    "supported_features",
                    "webhook_config",
                )
            },
        ),
        ("Health", {"fields": ("health_check_url", "last_health_check")}),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )


@admin.register(ProviderHealthMetric)
class ProviderHealthMetricAdmin(ReadOnlyModelAdmin):
    list_display = (
        "provider_name",
        "provider_type",
        "health_check_timestamp",
        "is_healthy",
        "response_time_ms",
        "success_rate_1h",
        "success_rate_24h",
        "success_rate_7d",
        "error_code",
    )
    list_filter = ("provider_type", "is_healthy", "provider_name", "geographic_region")
    search_fields = ("provider_name", "error_code", "error_message")
    date_hierarchy = "health_check_timestamp"
