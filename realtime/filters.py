"""FilterSets for the realtime API."""

from __future__ import annotations

import django_filters

from notifyplatform.api_filters import IntegerFilter

from .models import (
    ConnectionStatus,
    EventCategory,
    EventPriority,
    RealTimeEvent,
    Visibility,
    WebsocketConnection,
)


class RealTimeEventFilter(django_filters.FilterSet):
    type = django_filters.CharFilter(field_name="event_type")
    category = django_filters.MultipleChoiceFilter(
        field_name="event_category", choices=EventCategory.choices
    )
    priority = django_filters.MultipleChoiceFilter(choices=EventPriority.choices)
    visibility = django_filters.MultipleChoiceFilter(choices=Visibility.choices)
    user = django_filters.UUIDFilter(field_name="user_id")
    auction = django_filters.UUIDFilter(field_name="auction_id")
    since_sequence = IntegerFilter(field_name="sequence_number", lookup_expr="gt")
    generated_after = django_filters.IsoDateTimeFilter(field_name="generated_at", lookup_expr="gte")
    generated_before = django_filters.IsoDateTimeFilter(field_name="generated_at", lookup_expr="lt")

    class Meta:
        model = RealTimeEvent
        fields = [
            "type",
            "category",
            "priority",
            "visibility",
            "user",
            "auction",
            "since_sequence",
            "generated_after",
            "generated_before",
        ]


class WebsocketConnectionFilter(django_filters.FilterSet):
    status = django_filters.MultipleChoiceFilter(
        field_name="connection_status", choices=ConnectionStatus.choices
    )
    user = django_filters.UUIDFilter(field_name="user_id")
    connected_after = django_filters.IsoDateTimeFilter(field_name="connected_at", lookup_expr="gte")
    connected_before = django_filters.IsoDateTimeFilter(field_name="connected_at", lookup_expr="lt")

    class Meta:
        model = WebsocketConnection
        fields = ["status", "user", "connected_after", "connected_before"]
