"""Admin for notifications, their deliveries, batch jobs and preferences.

What a provider reported (message id, response, timestamps, cost) is read-only: it is
the record of what happened, written by the pipeline. The ``provider_performance_summary``
view is browse-only.
"""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from notifyplatform.admin_utils import NPModelAdmin, NPTabularInline, ReadOnlyModelAdmin

from .models import (
    Notification,
    NotificationBatchJob,
    NotificationDelivery,
    ProviderPerformanceSummary,
    UserNotificationPreference,
)

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
    list_filter = ("status", "category", "priority", "notification_type", "is_read", "is_archived")
    search_fields = ("title", "user__email", "event_type", "idempotency_key")
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    autocomplete_fields = ("user", "template")
    raw_id_fields = ("auction", "bid", "item")
    readonly_fields = ("sent_at", "delivered_at", "read_at", "clicked_at", "provider_response")
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
                )
            },
        ),
        ("Inbox", {"fields": ("is_read", "is_archived", "read_at", "clicked_at")}),
        (
            "Tracking",
            {"fields": ("sent_at", "delivered_at", "tags", "metadata", "created_at", "updated_at")},
        ),
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
        "notification",
    )
    list_filter = ("status", "delivery_type", "provider_type", "provider_name", "recipient_type")
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
    readonly_fields = DELIVERY_OUTCOME_FIELDS
    fieldsets = (
        (None, {"fields": ("notification", "invitation", "delivery_type", "status")}),
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
                    "error_code",
                    "error_message",
                    "delivery_metadata",
                )
            },
        ),
        ("Timestamps", {"fields": ("created_at", "updated_at")}),
    )


@admin.register(NotificationBatchJob)
class NotificationBatchJobAdmin(NPModelAdmin):
    list_display = (
        "job_name",
        "job_type",
        "invitation_type",
        "status",
        "progress",
        "total_notifications",
        "successful_notifications",
        "failed_notifications",
        "started_at",
        "completed_at",
    )
    list_filter = ("status", "job_type", "invitation_type")
    search_fields = ("job_name", "error_summary")
    date_hierarchy = "created_at"
    readonly_fields = ("started_at", "completed_at")

    @admin.display(description="progress")
    def progress(self, obj: NotificationBatchJob) -> str:
        return f"{obj.progress_percent:.1f} %"


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
