"""`provider_registry` and `provider_health_metrics` (seed 000).

Credentials are never stored here: ``credentials_required`` names the environment
variables an adapter reads (e.g. ``TWILIO_AUTH_TOKEN``); ``configuration`` holds only
non-secret settings such as an API base URL or a sender address.
"""

from __future__ import annotations

from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models

from notifyplatform.choices import ProviderType
from notifyplatform.db import SeedIndex, choices_check, created_at, seed_default, updated_at
from providers import policy
from providers.kinds import UnknownAdapterError, adapter_kind


class Provider(models.Model):
    id = models.AutoField(primary_key=True)
    provider_name = models.CharField(max_length=50, unique=True)
    provider_type = models.CharField(max_length=20, choices=ProviderType.choices)
    provider_class = models.CharField(
        max_length=100, help_text="Adapter kind (e.g. smtp, twilio) or a dotted class path"
    )
    priority = models.IntegerField(**seed_default(100), help_text="Lower is tried first")
    is_enabled = models.BooleanField(**seed_default(True))
    is_healthy = models.BooleanField(
        **seed_default(True), help_text="False while the circuit breaker is open"
    )
    health_check_url = models.CharField(max_length=255, null=True, blank=True)
    rate_limit_per_minute = models.IntegerField(null=True, blank=True)
    rate_limit_per_hour = models.IntegerField(null=True, blank=True)
    rate_limit_per_day = models.IntegerField(null=True, blank=True)
    cost_per_message = models.DecimalField(max_digits=10, decimal_places=6, null=True, blank=True)
    geographic_coverage = ArrayField(
        models.TextField(), null=True, blank=True, help_text="Regions served; empty means all"
    )
    supported_features = models.JSONField(null=True, blank=True)
    configuration = models.JSONField(null=True, blank=True)
    credentials_required = ArrayField(
        models.TextField(), null=True, blank=True, help_text="Environment variable names"
    )
    webhook_config = models.JSONField(null=True, blank=True)
    last_health_check = models.DateTimeField(null=True, blank=True)
    created_at = created_at()
    updated_at = updated_at()

    class Meta:
        db_table = "provider_registry"
        ordering = ["provider_type", "priority", "provider_name"]
        indexes = [
            SeedIndex(fields=["provider_type"], name="idx_provider_registry_type"),
            SeedIndex(fields=["is_enabled", "is_healthy"], name="idx_provider_registry_enabled"),
            SeedIndex(fields=["provider_type", "priority"], name="idx_provider_registry_priority"),
        ]
        constraints = [
            choices_check("provider_type", ProviderType, "provider_registry_provider_type_valid"),
            models.CheckConstraint(
                condition=models.Q(cost_per_message__gte=0)
                | models.Q(cost_per_message__isnull=True),
                name="provider_registry_cost_non_negative",
            ),
        ]

    def __str__(self) -> str:
        return self.provider_name

    def clean(self) -> None:
        """The credential variables and servers this row names must pass
        ``providers.policy`` (the admin form shows each problem on its field)."""
        try:
            kind = adapter_kind(self.provider_class)
        except UnknownAdapterError:
            kind = self.provider_class
        problems = policy.configuration_problems(
            provider_class=kind,
            configuration=self.configuration,
            webhook_config=self.webhook_config,
            credentials_required=self.credentials_required,
        )
        if problems:
            raise ValidationError(problems)

    def covers(self, region: str | None) -> bool:
        """Empty coverage means worldwide; otherwise the region (or ``global``) must be listed."""
        coverage = self.geographic_coverage or []
        if not coverage or "global" in coverage:
            return True
        return region is not None and region in coverage


class ProviderHealthMetric(models.Model):
    id = models.AutoField(primary_key=True)
    provider_name = models.CharField(max_length=50)
    provider_type = models.CharField(max_length=20, choices=ProviderType.choices)
    health_check_timestamp = models.DateTimeField()
    is_healthy = models.BooleanField()
    response_time_ms = models.IntegerField(null=True, blank=True)
    error_message = models.TextField(null=True, blank=True)
    error_code = models.CharField(max_length=50, null=True, blank=True)
    success_rate_1h = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    success_rate_24h = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    success_rate_7d = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    cost_per_message = models.DecimalField(max_digits=10, decimal_places=6, null=True, blank=True)
    rate_limit_remaining = models.IntegerField(null=True, blank=True)
    rate_limit_reset_at = models.DateTimeField(null=True, blank=True)
    geographic_region = models.CharField(max_length=50, null=True, blank=True)
    created_at = created_at()

    class Meta:
        db_table = "provider_health_metrics"
        ordering = ["-health_check_timestamp"]
        indexes = [
            SeedIndex(
                fields=["provider_name", "provider_type"],
                name="idx_provider_health_metrics_provider",
            ),
            SeedIndex(
                fields=["health_check_timestamp"], name="idx_provider_health_metrics_timestamp"
            ),
            SeedIndex(fields=["is_healthy"], name="idx_provider_health_metrics_healthy"),
        ]
        constraints = [
            choices_check(
                "provider_type", ProviderType, "provider_health_metrics_provider_type_valid"
            ),
        ]

    def __str__(self) -> str:
        state = "healthy" if self.is_healthy else "unhealthy"
        return f"{self.provider_name} {state} at {self.health_check_timestamp:%Y-%m-%d %H:%M}"
