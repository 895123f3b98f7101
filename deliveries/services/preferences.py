"""Preference writes. Validation of shapes lives in the API serializer; the database's
unique (user, type, method) constraint is turned into a field error here."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from templates.services import template_type_exists

from ..errors import VALIDATION_ERROR, NotifyError
from ..models import UserNotificationPreference

DUPLICATE = "a preference for this type and delivery method already exists"


def _check_type(data: dict[str, Any]) -> None:
    """``invitation_type`` is ``*`` (every type) or a type the platform sends: a rule for an
    unknown type would never match anything, silently."""
    type_name = data.get("invitation_type")
    if type_name is not None and type_name != "*" and not template_type_exists(type_name):
        raise NotifyError(
            VALIDATION_ERROR,
            f"unknown notification type {type_name!r}: use '*' or a template's type",
            "invitation_type",
        )


def preference_create(*, user: Any, data: dict[str, Any]) -> UserNotificationPreference:
    _check_type(data)
    try:
        with transaction.atomic():
            return UserNotificationPreference.objects.create(user=user, **data)
    except IntegrityError as exc:
        raise NotifyError(VALIDATION_ERROR, DUPLICATE, "invitation_type") from exc


def preference_update(
    *, preference: UserNotificationPreference, data: dict[str, Any]
) -> UserNotificationPreference:
    _check_type(data)
    for name, value in data.items():
        setattr(preference, name, value)
    if data.get("is_enabled") is True and isinstance(preference.delivery_preferences, dict):
        # opted back in: a later opt-out is no longer the unsubscribe's (decision trace)
        preference.delivery_preferences.pop("unsubscribed", None)
    try:
        with transaction.atomic():
            preference.save()
    except IntegrityError as exc:
        raise NotifyError(VALIDATION_ERROR, DUPLICATE, "invitation_type") from exc
    return preference


def preference_delete(*, preference: UserNotificationPreference) -> None:
    preference.delete()
