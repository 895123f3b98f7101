"""The API's filter backend: django-filter, but strict about values it would ignore.

django-filter treats ``?user=`` (empty) as "no filter" and ``?unread=maybe`` as "unset",
so a typo silently returns everything. Here an empty value is a 400 for every filter but a
free-text one, and a boolean must be ``true``/``false`` (or ``1``/``0``), so the filter a
client thinks it applied is the one applied; the OpenAPI schema says the same.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import django_filters
from django import forms
from django.utils.dateparse import parse_datetime
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework.exceptions import ValidationError

_BOOLEAN_VALUES = {"true", "false", "1", "0"}
# Real UTC offsets stay within ±14:00; PostgreSQL refuses anything past ±15:59 with an error.
_MAX_OFFSET = timedelta(hours=14)


class IntegerFilter(django_filters.NumberFilter):
    """A number filter for integer columns (ids, sequence numbers): ``1.5`` is a 400."""

    field_class = forms.IntegerField


def _datetime_problem(value: str) -> str | None:
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None  # the form reports the format error itself
    if parsed is None or parsed.tzinfo is None:
        return None
    offset = parsed.utcoffset()
    if offset is not None and abs(offset) > _MAX_OFFSET:
        return "UTC offset must be between -14:00 and +14:00"
    try:
        parsed - offset if offset is not None else parsed
    except OverflowError:
        return "date out of range"
    return None


class StrictFilterBackend(DjangoFilterBackend):
    def get_filterset(self, request: Any, queryset: Any, view: Any) -> Any:
        filterset = super().get_filterset(request, queryset, view)
        if filterset is None:
            return None
        errors: dict[str, list[str]] = {}
        for name, filter_ in filterset.filters.items():
            values = request.query_params.getlist(name)
            if not values:
                continue
            free_text = type(filter_) is django_filters.CharFilter
            if not free_text and any(value == "" for value in values):
                errors[name] = ["must not be empty (leave the parameter out instead)"]
            elif isinstance(filter_, django_filters.BooleanFilter) and any(
                value.lower() not in _BOOLEAN_VALUES for value in values
            ):
                errors[name] = ["must be true or false"]
            elif isinstance(filter_, django_filters.IsoDateTimeFilter):
                problems = [p for p in map(_datetime_problem, values) if p]
                if problems:
                    errors[name] = problems[:1]
        if errors:
            raise ValidationError(errors)
        return filterset
