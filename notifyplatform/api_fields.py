"""Serializer fields the API shares."""

from __future__ import annotations

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
