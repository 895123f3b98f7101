"""Read paths for users, their API tokens and push devices."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import QuerySet

from .models import ApiToken, Device, User


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    """``user``'s own API tokens, newest first (revoked ones included)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def user_email_taken(email: str) -> bool:
    """Whether a user has ``email``, compared case-insensitively."""
    return User.objects.filter(email__iexact=email).exists()


def device_list(*, user: User) -> QuerySet[Device]:
    """``user``'s own devices, most recently seen first (disabled ones included)."""
    return Device.objects.filter(user=user).order_by("-last_seen_at", "-id")


def devices_by_user(user_ids: Iterable[Any]) -> dict[Any, list[Device]]:
    """The registered devices of each of ``user_ids`` (disabled ones too: a user whose every
    device is disabled is not the same as one who never registered any), in one query;
    users with none are absent. Oldest first, so a user's deliveries come in a stable order."""
    ids = list(user_ids)
    found: dict[Any, list[Device]] = {}
    if not ids:
        return found
    for device in Device.objects.filter(user_id__in=ids).order_by("created_at", "id"):
        found.setdefault(device.user_id, []).append(device)
    return found
