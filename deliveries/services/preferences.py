"""Preference writes. Validation of shapes lives in the API serializer; the database's
unique (user, type, method) constraint is turned into a field error here."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from ..errors import VALIDATION_ERROR, NotifyError
from ..models import UserNotificationPreference

DUPLICATE = "a preference for this type and delivery method already exists"


def preference_create(*, user: Any, data: dict[str, Any]) -> UserNotificationPreference:
    try:
        with transaction.atomic():
            return UserNotificationPreference.objects.create(user=user, **data)
    except IntegrityError as exc:
        raise NotifyError(VALIDATION_ERROR, DUPLICATE, "invitation_type") from exc


def preference_update(
    *, preference: UserNotificationPreference, data: dict[str, Any]
) -> UserNotificationPreference:
    for name, value in data.items():
        setattr(preference, name, value)
    try:
        with transaction.atomic():
            preference.save()
    except IntegrityError as exc:
        raise NotifyError(VALIDATION_ERROR, DUPLICATE, "invitation_type") from exc
    return preference


def preference_delete(*, preference: UserNotificationPreference) -> None:
    preference.delete()
