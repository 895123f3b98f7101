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
