"""Serializer fields the API shares."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StrictBooleanField(serializers.BooleanField):
    """JSON ``true``/``false`` only. DRF's BooleanField also takes ``"yes"``, ``1`` or
    ``"on"`` (form habits); in a JSON API that hides client bugs, and the schema says
    boolean."""

    TRUE_VALUES = {True}
    FALSE_VALUES = {False}
    NULL_VALUES = {None}

    def to_internal_value(self, data: object) -> bool:
        # a type check, not set membership: 1 == True and 0 == False (same hash), so
        # {True} and {False} alone still let the integers 1 and 0 through
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)


class StrictCharField(serializers.CharField):
    """JSON strings only. DRF's CharField turns ``42`` into ``"42"``; the schema says string,
    and a number where a template's text belongs is a client bug to report, not to store."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
