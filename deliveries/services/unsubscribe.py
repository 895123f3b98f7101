"""Unsubscribing: the one-click link (RFC 8058, see ``deliveries/unsubscribe.py``) and an
ESP's ``unsubscribed`` event (``engagement``) end here.

- A user's token (or an ESP unsubscribe of a user's email) opts the user out of the type on
  the channel by writing the user's preference row through the preference services
  (``is_enabled = false``; how and when in ``delivery_preferences["unsubscribed"]``), so the
  next notify of that type on that channel is skipped with decision ``unsubscribed``.
- An address-only recipient's token suppresses the address on the channel for the
  category of the email it came in (a suppression with reason ``unsubscribe`` and that
  ``category``): the next send of that category to it is skipped with decision
  ``unsubscribed``; other categories (transactional mail) still go out.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import timezone

from ..errors import NotifyError
from ..models import SuppressionReason, UserNotificationPreference
from ..selectors import normalise_address
from ..unsubscribe import UnsubscribeTarget, unsubscribe_token_resolve
from .preferences import preference_create, preference_update
from .suppression import suppression_insert


def unsubscribe_target(token: str) -> UnsubscribeTarget | None:
    """What a token opts out; None when it is forged or its user is gone."""
    target = unsubscribe_token_resolve(token)
    if target is None or target.user_id is None:
        return target
    try:
        exists = get_user_model().objects.filter(pk=target.user_id).exists()
    except (ValidationError, ValueError):
        return None
    return target if exists else None


def unsubscribe_user(
    user: Any, type_name: str, channel: str, *, via: str, **details: Any
) -> UserNotificationPreference | None:
    """Opt ``user`` out of ``type_name`` on ``channel`` (idempotent): the preference row."""
    reason = {"unsubscribed": {"via": via, "at": timezone.now().isoformat(), **details}}
    for _attempt in range(2):  # a concurrent click may create the row between get and create
        existing = UserNotificationPreference.objects.filter(
            user=user, invitation_type=type_name, delivery_method=channel
        ).first()
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


def unsubscribe_by_token(token: str) -> UnsubscribeTarget | None:
    """Apply a one-click unsubscribe (idempotent); what it opted out, None for a bad token."""
    target = unsubscribe_target(token)
    if target is None:
        return None
    if target.user_id is not None:
        user = get_user_model().objects.get(pk=target.user_id)
        if unsubscribe_user(user, target.type_name, target.channel, via="list-unsubscribe"):
            return target
        return None
    suppression_insert(
        channel=target.channel,
        address=normalise_address(target.channel, str(target.address)),
        reason=SuppressionReason.UNSUBSCRIBE,
        category=target.category,
        receipt={
            "source": "list-unsubscribe",
            "type": target.type_name,
            "at": timezone.now().isoformat(),
        },
    )
    return target
