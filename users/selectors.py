"""Read paths for users and their API tokens."""

from __future__ import annotations

from django.db.models import QuerySet

from .models import ApiToken, User


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    """``user``'s own API tokens, newest first (revoked ones included)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


def user_email_taken(email: str) -> bool:
    """Whether a user has ``email``, compared case-insensitively."""
    return User.objects.filter(email__iexact=email).exists()
