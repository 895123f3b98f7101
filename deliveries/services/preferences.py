"""Preference writes, shared by the REST API and the preference page.

The API serializer (and the page's form) only parse types (a time, an integer, a choice);
the rules live here: a known notification type, a real time zone, quiet hours with both a
start and an end, ``over_cap`` in ``delivery_preferences``. The database's unique
(user, type, method) constraint is turned into a field error here."""

from __future__ import annotations

import zoneinfo
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


def preference_validate(
    data: dict[str, Any], preference: UserNotificationPreference | None = None
) -> None:
    """The row the write would leave (``data`` over ``preference``) is one the decision rules
    can apply: raises NotifyError naming the field otherwise."""
    _check_type(data)
    tz_name = data.get("timezone")
    if tz_name:
        try:
            zoneinfo.ZoneInfo(tz_name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise NotifyError(
                VALIDATION_ERROR, f"unknown time zone {tz_name!r}", "timezone"
            ) from exc
    extras = data.get("delivery_preferences")
    if extras is not None:
        if not isinstance(extras, dict):
            raise NotifyError(VALIDATION_ERROR, "must be an object", "delivery_preferences")
        over_cap = extras.get("over_cap")
        if over_cap is not None and over_cap not in ("skip", "defer"):
            raise NotifyError(
                VALIDATION_ERROR,
                "over_cap must be 'skip' or 'defer'",
                "delivery_preferences",
            )
    start = data.get("quiet_hours_start", getattr(preference, "quiet_hours_start", None))
    end = data.get("quiet_hours_end", getattr(preference, "quiet_hours_end", None))
    if (start is None) != (end is None):
        field = "quiet_hours_end" if end is None else "quiet_hours_start"
        raise NotifyError(VALIDATION_ERROR, "quiet hours need both a start and an end", field)


def preference_create(*, user: Any, data: dict[str, Any]) -> UserNotificationPreference:
    preference_validate(data, None)
    try:
        with transaction.atomic():
            return UserNotificationPreference.objects.create(user=user, **data)
    except IntegrityError as exc:
        raise NotifyError(VALIDATION_ERROR, DUPLICATE, "invitation_type") from exc


def preference_update(
    *, preference: UserNotificationPreference, data: dict[str, Any]
) -> UserNotificationPreference:
    preference_validate(data, preference)
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
