"""FilterSets of the templates app (used by the API)."""

from __future__ import annotations

import django_filters

from notifyplatform.choices import Channel

from .models import NotificationTemplate


class TemplateFilter(django_filters.FilterSet):
    type = django_filters.CharFilter(field_name="invitation_type")
    channel = django_filters.MultipleChoiceFilter(
        field_name="delivery_type", choices=Channel.choices
    )
    language = django_filters.CharFilter()
    is_active = django_filters.BooleanFilter()
    updated_after = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="gte")
    updated_before = django_filters.IsoDateTimeFilter(field_name="updated_at", lookup_expr="lt")

    class Meta:
        model = NotificationTemplate
        fields = ["type", "channel", "language", "is_active", "updated_after", "updated_before"]
