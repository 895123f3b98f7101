"""One-click unsubscribe (RFC 8058, see ``deliveries/unsubscribe.py``): a valid token opts its
user out of its type on its channel by writing the user's preference row through the
preference services (``is_enabled = false``; the reason in ``delivery_preferences``), so the
next notify of that type on that channel is skipped by the ``opt_out`` rule."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone

from ..errors import NotifyError
from ..models import UserNotificationPreference
from ..unsubscribe import unsubscribe_token_resolve
from .preferences import preference_create, preference_update


def unsubscribe_target(token: str) -> tuple[Any, str, str] | None:
    """(user, type, channel) named by a token; None when it is forged or the user is gone."""
    resolved = unsubscribe_token_resolve(token)
    if resolved is None:
        return None
    user_id, type_name, channel = resolved
    try:
        user = get_user_model().objects.filter(pk=user_id).first()
    except (ValidationError, ValueError):
        return None
    if user is None:
        return None
    return user, type_name, channel


def unsubscribe_by_token(token: str) -> UserNotificationPreference | None:
    """Opt the token's user out of its type × channel (idempotent); None for a bad token."""
    target = unsubscribe_target(token)
    if target is None:
        return None
    user, type_name, channel = target
    for _attempt in range(2):  # a concurrent click may create the row between get and create
        existing = UserNotificationPreference.objects.filter(
            user=user, invitation_type=type_name, delivery_method=channel
        ).first()
        reason = {"unsubscribed": {"via": "list-unsubscribe", "at": timezone.now().isoformat()}}
        if existing is not None:
            if not existing.is_enabled:
                return existing
            extras = {**(existing.delivery_preferences or {}), **reason}
            return preference_update(
                preference=existing, data={"is_enabled": False, "delivery_preferences": extras}
            )
        try:
            return preference_create(
                user=user,
                data={
                    "invitation_type": type_name,
                    "delivery_method": channel,
                    "is_enabled": False,
                    "delivery_preferences": reason,
                },
            )
        except NotifyError:
            continue
    return None
