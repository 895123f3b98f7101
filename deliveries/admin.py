"""Admin for notifications, their deliveries and preferences (batch jobs: ``campaigns``).

What a provider reported (message id, response, timestamps, cost) is read-only: it is
the record of what happened, written by the pipeline. The ``provider_performance_summary``
view is browse-only.

Operators filter deliveries and notifications by status, channel, provider and date, and
retry or cancel them through ``deliveries.services.operations`` (the same services the staff
API calls, so both behave the same; a row in the wrong state is reported, not changed).
"Why" shows the rule recorded in ``delivery_metadata["decision"]`` (opt-out, quiet hours,
frequency cap, expiry, retry, manual action), and the change page lists every provider
attempt of the last send as a table.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.safestring import SafeString

from notifyplatform.admin_utils import (
    NPModelAdmin,
    NPTabularInline,
    ReadOnlyModelAdmin,
    html_table,
    run_per_row,
)
from notifyplatform.choices import Channel
from providers.models import Provider

from .models import (
    ApiIdempotencyKey,
    Notification,
    NotificationDelivery,
    ProviderPerformanceSummary,
    RetentionRun,
    Suppression,
    UserNotificationPreference,
)
from .services.operations import (
    DeliveryOperationError,
    delivery_cancel,
    delivery_retry,
    notification_cancel,
)
from .services.suppression import suppression_lift

# Keys of a decision record that are shown as "key=value" after its rule, in this order.
DECISION_DETAIL_KEYS = (
    "channel",
    "action",
    "deferred_until",
    "bypassed",
    "error_code",
    "attempt",
    "next_attempt_at",
    "max_retries",
    "expires_at",
    "previous_status",
    "reason",
)


def decision_summary(metadata: Any) -> str:
    """One line saying why a delivery was skipped, deferred, retried or stopped, from the
    ``decision`` the pipeline recorded; '-' when nothing stopped it."""
    decision = (metadata or {}).get("decision") if isinstance(metadata, dict) else None
    if not decision:
        return "-"
    if isinstance(decision, str):
        return decision
    if not isinstance(decision, dict):
        return str(decision)
    details = [f"{k}={decision[k]}" for k in DECISION_DETAIL_KEYS if decision.get(k) is not None]
    rule = str(decision.get("rule", "?"))
    return f"{rule} ({', '.join(details)})" if details else rule


def attempts_table(response: Any) -> SafeString | str:
    """The provider attempts of the last send (failover order) as a table."""
    attempts = (response or {}).get("attempts") if isinstance(response, dict) else None
    if not attempts:
        return "-"
    return html_table(
        ("#", "provider", "ok", "error code", "retryable", "ms", "message id", "error"),
        [
            (
                n,
                a.get("provider_name"),
                "yes" if a.get("ok") else "no",
                a.get("error_code"),
                a.get("retryable"),
                a.get("duration_ms"),
                a.get("provider_message_id"),
                a.get("error_message"),
            )
            for n, a in enumerate(attempts, 1)
            if isinstance(a, dict)
        ],
        css="np-attempts",
    )


class ProviderNameFilter(admin.SimpleListFilter):
    """Deliveries by provider: the registry's names (one small query), not a DISTINCT
    over the whole delivery table."""

    title = "provider"
    parameter_name = "provider"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = Provider.objects.order_by("provider_name").values_list("provider_name", flat=True)
        return [(n, n) for n in names]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value:
            return queryset
        if queryset.model is Notification:
            return queryset.filter(
                pk__in=NotificationDelivery.objects.filter(provider_name=value).values(
                    "notification_id"
                )
            )
        return queryset.filter(provider_name=value)


class NotificationChannelFilter(admin.SimpleListFilter):
    """Notifications whose ``delivery_channels`` include a channel."""

    title = "channel"
    parameter_name = "channel"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return list(Channel.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(delivery_channels__contains=[value]) if value else queryset


# Written by providers and the pipeline; the admin shows them, never edits them.
DELIVERY_OUTCOME_FIELDS = (
    "provider_message_id",
    "provider_response",
    "cost_per_message",
    "sent_at",
    "delivered_at",
    "failed_at",
)


class DeliveryInline(NPTabularInline):
    model = NotificationDelivery
    fields = (
        "delivery_type",
        "provider_name",
        "recipient",
        "status",
        "error_code",
        "retry_count",
        "sent_at",
        "delivered_at",
    )
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Notification)
class NotificationAdmin(NPModelAdmin):
    list_display = (
        "title",
        "user",
        "event_type",
        "category",
        "priority",
        "notification_type",
        "status",
        "is_read",
        "created_at",
    )
    list_filter = (
        "status",
        NotificationChannelFilter,
        ProviderNameFilter,
        ("created_at", admin.DateFieldListFilter),
        "category",
        "priority",
        "notification_type",
        "is_read",
        "is_archived",
        "in_inbox",
    )
    search_fields = ("title", "user__email", "event_type", "idempotency_key")
    actions = ("cancel_notifications",)
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    autocomplete_fields = ("user", "template")
    raw_id_fields = ("auction", "bid", "item")
    readonly_fields = (
        "sent_at",
        "delivered_at",
        "read_at",
        "clicked_at",
        "provider_response",
        "in_inbox",
    )
    inlines = (DeliveryInline,)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "user",
                    "title",
                    "message",
                    "event_type",
                    "category",
                    "priority",
                    "notification_type",
                    "delivery_channels",
                    "status",
                )
            },
        ),
        (
            "Content",
            {"fields": ("template", "template_data", "rich_content", "action_url", "action_label")},
        ),
        ("Auction context", {"fields": ("auction", "bid", "item")}),
        (
            "Delivery",
            {
                "fields": (
                    "idempotency_key",
                    "scheduled_at",
                    "expires_at",
                    "delivery_attempts",
                    "max_attempts",
                    "error_message",
                    "provider_response",
                    "in_inbox",
                )
            },
        ),
        ("Inbox", {"fields": ("is_read", "is_archived", "read_at", "clicked_at")}),
        (
            "Tracking",
            {"fields": ("sent_at", "delivered_at", "tags", "metadata", "created_at", "updated_at")},
        ),
    )

    @admin.action(description="Cancel selected notifications (pending deliveries)")
    def cancel_notifications(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        run_per_row(
            self,
            request,
            queryset.order_by("created_at"),
            lambda n: notification_cancel(notification=n),
            errors=(DeliveryOperationError,),
            done="notification(s) cancelled",
        )


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(NPModelAdmin):
    list_display = (
        "id",
        "delivery_type",
        "recipient",
        "provider_name",
        "status",
        "error_code",
        "retry_count",
        "cost_per_message",
        "scheduled_at",
        "sent_at",
        "why",
        "notification",
    )
    list_filter = (
        "status",
        "delivery_type",
        ProviderNameFilter,
        ("created_at", admin.DateFieldListFilter),
        ("sent_at", admin.DateFieldListFilter),
        "provider_type",
        "recipient_type",
    )
    actions = ("retry_deliveries", "cancel_deliveries")
    search_fields = (
        "recipient",
        "provider_message_id",
        "provider_name",
        "error_code",
        "notification__title",
    )
    list_select_related = ("notification",)
    date_hierarchy = "created_at"
    raw_id_fields = ("notification", "invitation")
    readonly_fields = (*DELIVERY_OUTCOME_FIELDS, "why", "attempts")
    fieldsets = (
        (None, {"fields": ("notification", "invitation", "delivery_type", "status", "why")}),
        (
            "Route",
            {
                "fields": (
                    "provider_type",
                    "provider_name",
                    "provider_priority",
                    "recipient",
                    "recipient_type",
                    "geographic_region",
                )
            },
        ),
        (
            "Schedule and retries",
            {"fields": ("scheduled_at", "expires_at", "retry_count", "max_retries")},
        ),
        (
            "Outcome",
            {
                "fields": (
                    *DELIVERY_OUTCOME_FIELDS,
                    "attempts",
                    "error_code",
                    "error_message",
                    "delivery_metadata",
                )
            },
        ),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="why (not) sent")
    def why(self, obj: NotificationDelivery) -> str:
        return decision_summary(obj.delivery_metadata)

    @admin.display(description="provider attempts")
    def attempts(self, obj: NotificationDelivery) -> SafeString | str:
        return attempts_table(obj.provider_response)

    @admin.action(description="Retry selected deliveries now")
    def retry_deliveries(
        self, request: HttpRequest, queryset: QuerySet[NotificationDelivery]
    ) -> None:
        run_per_row(
            self,
            request,
            queryset.order_by("id"),
            lambda d: delivery_retry(delivery=d),
            errors=(DeliveryOperationError,),
            done="delivery(ies) queued for retry",
        )

    @admin.action(description="Cancel selected pending deliveries")
    def cancel_deliveries(
        self, request: HttpRequest, queryset: QuerySet[NotificationDelivery]
    ) -> None:
        run_per_row(
            self,
            request,
            queryset.order_by("id"),
            lambda d: delivery_cancel(delivery=d),
            errors=(DeliveryOperationError,),
            done="delivery(ies) cancelled",
        )


@admin.register(UserNotificationPreference)
class UserNotificationPreferenceAdmin(NPModelAdmin):
    list_display = (
        "user",
        "invitation_type",
        "delivery_method",
        "is_enabled",
        "frequency_limit",
        "frequency_period",
        "quiet_hours_start",
        "quiet_hours_end",
        "timezone",
    )
    list_filter = ("delivery_method", "is_enabled", "frequency_period", "invitation_type")
    search_fields = ("user__email", "invitation_type")
    list_select_related = ("user",)
    autocomplete_fields = ("user",)


@admin.register(ApiIdempotencyKey)
class ApiIdempotencyKeyAdmin(ReadOnlyModelAdmin):
    """API callers' Idempotency-Keys (per caller, kept NP_IDEMPOTENCY_KEY_TTL_HOURS)."""

    list_display = ("key", "scope", "notification_id", "created_at")
    search_fields = ("key", "scope")
    date_hierarchy = "created_at"


@admin.register(ProviderPerformanceSummary)
class ProviderPerformanceSummaryAdmin(ReadOnlyModelAdmin):
    list_display = (
        "provider_name",
        "provider_type",
        "total_deliveries",
        "successful_deliveries",
        "failed_deliveries",
        "success_rate",
        "avg_cost_per_message",
        "total_cost",
        "first_delivery",
        "last_delivery",
    )
    list_filter = ("provider_type",)
    search_fields = ("provider_name",)


@admin.register(RetentionRun)
class RetentionRunAdmin(ReadOnlyModelAdmin):
    """Retention passes (``deliveries.retention``), newest first: the days kept per table
    (the settings in force at that run) and what was deleted."""

    list_display = (
        "table_name",
        "days",
        "cutoff",
        "deleted",
        "batches",
        "finished",
        "error",
        "started_at",
        "finished_at",
    )
    list_filter = ("table_name", "finished")


class SuppressionActiveFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "active"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Active"), ("no", "Lifted")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Suppression]) -> Any:
        if self.value() in ("yes", "no"):
            return queryset.filter(lifted_at__isnull=self.value() == "yes")
        return queryset


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyModelAdmin):
    """The suppression list: addresses not sent to on a channel (hard bounce, complaint,
    unsubscribe, manual). Staff lift them with the action (the row stays, lifted); new
    manual ones are added through ``POST /api/v1/suppressions/``."""

    list_display = (
        "channel",
        "address",
        "reason",
        "category",
        "delivery_id",
        "created_at",
        "lifted_at",
        "lifted_by",
    )
    list_filter = (SuppressionActiveFilter, "channel", "reason")
    search_fields = ("address",)
    list_select_related = ("lifted_by",)
    date_hierarchy = "created_at"
    actions = ("lift_suppressions",)

    @admin.action(description="Lift selected suppressions")
    def lift_suppressions(self, request: HttpRequest, queryset: QuerySet[Suppression]) -> None:
        run_per_row(
            self,
            request,
            queryset.filter(lifted_at__isnull=True).order_by("id"),
            lambda row: suppression_lift(row, by=request.user),
            errors=(),
            done="suppression(s) lifted",
        )
