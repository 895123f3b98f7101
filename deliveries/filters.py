"""FilterSets of deliveries: the inbox, notifications and deliveries (used by the API)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from notifyplatform.api_filters import IntegerFilter
from notifyplatform.choices import Channel, Priority, ProviderType

from .models import (
    DeliveryStatus,
    Notification,
    NotificationCategory,
    NotificationDelivery,
    NotificationStatus,
)


class NotificationFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=NotificationStatus.choices)
    channel = django_filters.MultipleChoiceFilter(
        field_name="notification_type", choices=Channel.choices
    )
    category = django_filters.MultipleChoiceFilter(choices=NotificationCategory.choices)
    priority = django_filters.MultipleChoiceFilter(choices=Priority.choices)
    type = django_filters.CharFilter(field_name="event_type")
    is_read = django_filters.BooleanFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Notification
        fields = [
            "status",
            "channel",
            "category",
            "priority",
            "type",
            "is_read",
            "created_after",
            "created_before",
        ]


class DeliveryFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(choices=DeliveryStatus.choices)
    channel = django_filters.MultipleChoiceFilter(
        field_name="delivery_type", choices=Channel.choices
    )
    provider = django_filters.CharFilter(field_name="provider_name")
    provider_type = django_filters.MultipleChoiceFilter(choices=ProviderType.choices)
    notification = django_filters.UUIDFilter(field_name="notification_id")
    invitation = IntegerFilter(field_name="invitation_id")
    recipient = django_filters.CharFilter()
    error_code = django_filters.CharFilter()
    created_after = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = django_filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")
    sent_after = django_filters.IsoDateTimeFilter(field_name="sent_at", lookup_expr="gte")
    sent_before = django_filters.IsoDateTimeFilter(field_name="sent_at", lookup_expr="lt")

    class Meta:
        model = NotificationDelivery
        fields = [
            "status",
            "channel",
            "provider",
            "provider_type",
            "notification",
            "invitation",
            "recipient",
            "error_code",
            "created_after",
            "created_before",
            "sent_after",
            "sent_before",
        ]


class InboxFilter(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(method="filter_unread")
    category = django_filters.ChoiceFilter(choices=NotificationCategory.choices)

    class Meta:
        model = Notification
        fields = ["category", "unread"]

    def filter_unread(
        self, queryset: QuerySet[Notification], name: str, value: bool | None
    ) -> QuerySet[Notification]:
        if value is None:
            return queryset
        return queryset.filter(is_read=not value)
