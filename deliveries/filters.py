"""FilterSets used by the API."""

from __future__ import annotations

import django_filters

from .models import Notification, NotificationCategory


class InboxFilter(django_filters.FilterSet):
    unread = django_filters.BooleanFilter(method="filter_unread")
    category = django_filters.ChoiceFilter(choices=NotificationCategory.choices)

    class Meta:
        model = Notification
        fields = ["category", "unread"]

    def filter_unread(self, queryset, name, value):  # type: ignore[no-untyped-def]
        if value is None:
            return queryset
        return queryset.filter(is_read=not value)
