"""Admin for the provider registry and its health history.

The provider list shows, per row, a health badge (healthy / open circuit / disabled /
unconfigured), the success rate of the latest health check (falling back to the last 24 h
of real deliveries when the provider was never checked), the cost of the last 24 h and the
spend of the current daily spend-cap window against the cap (``providers.spendcap``). All
of it comes from subqueries annotated on the list's one query, so the page costs the same
number of queries for 5 providers or 500. Actions: enable, disable, check now (runs the
same ``provider_check_health`` the beat task runs). The change page shows the provider's
recent ``provider_health_metrics`` rows; those are written by the health checker only, so
they are browse-only, and its spend per day of the last two weeks.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import LogEntry
from django.db.models import DecimalField, OuterRef, QuerySet, Subquery
from django.http import HttpRequest
from django.utils import timezone
from django.utils.safestring import SafeString

from notifyplatform.admin_utils import NPModelAdmin, ReadOnlyModelAdmin, badge, html_table

from . import spendcap, traffic
from .health import provider_check_health
from .models import Provider, ProviderHealthMetric
from .registry import UnknownAdapterError, get_adapter
from .services import provider_audit_configuration, provider_sensitive_values

RECENT_METRICS = 20
SPEND_DAYS = 14
COST_WINDOW = timedelta(hours=24)


def provider_health_state(provider: Provider) -> tuple[str, str]:
    """(label, badge kind) for one provider. Disabled wins (routing never asks it), then a
    missing adapter or credential (it cannot send at all), then the circuit."""
    if not provider.is_enabled:
        return "disabled", "off"
    try:
        adapter = get_adapter(provider)
    except UnknownAdapterError:
        return "unconfigured: unknown adapter", "warn"
    refused = adapter.configuration_refused()
    if refused:
        return "refused: " + "; ".join(refused), "bad"
    missing = adapter.missing_credentials()
    if missing:
        return "unconfigured: " + ", ".join(missing), "warn"
    if not provider.is_healthy:
        return "open circuit", "bad"
    return "healthy", "ok"


def providers_with_stats(queryset: QuerySet[Provider]) -> QuerySet[Provider]:
    """``queryset`` annotated with ``latest_success_rate`` (last health check, 24 h window),
    ``ok_24h`` / ``bad_24h`` (finished deliveries), ``cost_24h`` and ``spent_window`` (what
    counts toward the daily spend cap: the costs of this cap window's sends) — one SQL query;
    the delivery figures come from deliveries' selectors (``providers.traffic``)."""
    since = timezone.now() - COST_WINDOW
    latest = ProviderHealthMetric.objects.filter(provider_name=OuterRef("provider_name")).order_by(
        "-health_check_timestamp"
    )
    _number, start, _end = spendcap.window_bounds()
    deliveries = traffic.source().provider_annotations(since, datetime.fromtimestamp(start, UTC))
    return queryset.annotate(
        spent_window=deliveries["spent_window"],
        latest_success_rate=Subquery(
            latest.values("success_rate_24h")[:1],
            output_field=DecimalField(max_digits=5, decimal_places=2),
        ),
        ok_24h=deliveries["ok_24h"],
        bad_24h=deliveries["bad_24h"],
        cost_24h=deliveries["cost_24h"],
    )


@admin.register(Provider)
class ProviderAdmin(NPModelAdmin):
    list_display = (
        "provider_name",
        "provider_type",
        "provider_class",
        "priority",
        "is_enabled",
        "health",
        "success_rate",
        "cost_per_message",
        "cost_24h",
        "spend_today",
        "rate_limit_per_minute",
        "last_health_check",
    )
    list_filter = ("provider_type", "is_enabled", "is_healthy")
    search_fields = ("provider_name", "provider_class")
    list_editable = ("priority",)
    ordering = ("provider_type", "priority", "provider_name")
    readonly_fields = (
        "last_health_check",
        "health",
        "recent_health_metrics",
        "spend_today",
        "spend_by_day",
    )
    actions = ("enable_providers", "disable_providers", "check_now")
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
                    "spend_today",
                    "spend_by_day",
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
        (
            "Health",
            {
                "fields": (
                    "health",
                    "health_check_url",
                    "last_health_check",
                    "recent_health_metrics",
                )
            },
        ),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Provider]:
        return providers_with_stats(super().get_queryset(request))

    # The form validates the credential variables and servers (Provider.clean ->
    # providers.policy); a change of either is logged and its diff goes into the
    # change's history entry.
    def save_model(self, request: HttpRequest, obj: Provider, form: Any, change: bool) -> None:
        before = (
            provider_sensitive_values(Provider.objects.get(pk=obj.pk)) if change and obj.pk else {}
        )
        super().save_model(request, obj, form, change)
        request._np_provider_diff = provider_audit_configuration(  # type: ignore[attr-defined]
            provider=obj, before=before, actor=request.user, via="admin", history=False
        )

    def construct_change_message(
        self, request: HttpRequest, form: Any, formsets: Any, add: bool = False
    ) -> Any:
        message = super().construct_change_message(request, form, formsets, add)
        diff = getattr(request, "_np_provider_diff", None)
        if not diff:
            return message
        # a plain-text message (LogEntry shows it as is) that keeps the standard summary
        summary = LogEntry(change_message=json.dumps(message)).get_change_message()
        return f"{summary} Credentials/servers: " + "; ".join(diff)

    @admin.display(description="health")
    def health(self, obj: Provider) -> SafeString:
        return badge(*provider_health_state(obj))

    @admin.display(description="success rate", ordering="latest_success_rate")
    def success_rate(self, obj: Provider) -> str:
        rate = getattr(obj, "latest_success_rate", None)
        if rate is not None:
            return f"{rate:.2f} %"
        ok, bad = getattr(obj, "ok_24h", 0) or 0, getattr(obj, "bad_24h", 0) or 0
        if ok + bad:
            return f"{Decimal(ok * 100) / Decimal(ok + bad):.2f} % (24 h)"
        return "-"

    @admin.display(description="cost 24 h", ordering="cost_24h")
    def cost_24h(self, obj: Provider) -> str:
        total = getattr(obj, "cost_24h", None)
        return "-" if total is None else f"{total:.4f}"

    @admin.display(description="spent today / daily cap", ordering="spent_window")
    def spend_today(self, obj: Provider) -> str:
        """Spend of the current cap window (``providers.spendcap``) against the cap
        (``configuration.daily_spend_cap``, else NP_PROVIDER_DAILY_SPEND_CAP)."""
        if obj.pk is None:
            return "-"
        cap = spendcap.cap_for(obj)
        shown = f"{getattr(obj, 'spent_window', None) or 0:.4f}"
        if obj.cost_per_message is None or obj.cost_per_message <= 0:
            return f"{shown} (no cost set: not capped)"
        return f"{shown} / {cap:.2f}" if cap is not None else f"{shown} (no cap)"

    @admin.display(description="spend per day (UTC, last 14 days)")
    def spend_by_day(self, obj: Provider) -> SafeString | str:
        if obj.pk is None:
            return "-"
        since = timezone.now() - timedelta(days=SPEND_DAYS)
        rows = traffic.source().spend_by_day(obj.provider_name, since)
        if not rows:
            return "Nothing sent in the last 14 days."
        return html_table(
            ("day", "sent", "spend"),
            [(r["day"].isoformat(), r["sent"], f"{r['spend'] or 0:.4f}") for r in rows],
            css="np-spend-by-day",
        )

    @admin.display(description="recent health checks")
    def recent_health_metrics(self, obj: Provider) -> SafeString | str:
        if obj.pk is None:
            return "-"
        rows = ProviderHealthMetric.objects.filter(provider_name=obj.provider_name).order_by(
            "-health_check_timestamp"
        )[:RECENT_METRICS]
        if not rows:
            return "No health check yet: use the “Check now” action."
        return html_table(
            ("checked at", "healthy", "ms", "1 h", "24 h", "7 d", "rate left", "error"),
            [
                (
                    timezone.localtime(m.health_check_timestamp).strftime("%Y-%m-%d %H:%M:%S"),
                    badge("yes", "ok") if m.is_healthy else badge("no", "bad"),
                    m.response_time_ms,
                    m.success_rate_1h,
                    m.success_rate_24h,
                    m.success_rate_7d,
                    m.rate_limit_remaining,
                    " ".join(filter(None, (m.error_code, m.error_message))) or None,
                )
                for m in rows
            ],
            css="np-health-metrics",
        )

    @admin.action(description="Enable selected providers", permissions=["change"])
    def enable_providers(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        count = Provider.objects.filter(pk__in=queryset.values("pk")).update(
            is_enabled=True, updated_at=timezone.now()
        )
        self.message_user(request, f"Enabled {count} provider(s).", messages.SUCCESS)

    @admin.action(description="Disable selected providers", permissions=["change"])
    def disable_providers(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        # Routing reads is_enabled on every send, so this takes effect for the next delivery;
        # deliveries already handed to this provider finish normally.
        count = Provider.objects.filter(pk__in=queryset.values("pk")).update(
            is_enabled=False, updated_at=timezone.now()
        )
        self.message_user(request, f"Disabled {count} provider(s).", messages.SUCCESS)

    @admin.action(description="Check health now", permissions=["change"])
    def check_now(self, request: HttpRequest, queryset: QuerySet[Provider]) -> None:
        results = []
        for provider in Provider.objects.filter(pk__in=queryset.values("pk")).order_by(
            "provider_name"
        ):
            metric = provider_check_health(provider)
            results.append(
                f"{provider.provider_name}: "
                + ("healthy" if metric.is_healthy else f"unhealthy ({metric.error_code})")
            )
        self.message_user(request, "Checked " + "; ".join(results), messages.INFO)


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
