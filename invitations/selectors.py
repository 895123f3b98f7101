"""Read paths for invitations."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from users.models import User

from .filters import InvitationFilter
from .models import StoryInvitation
from .tokens import token_unsign


def invitation_get_by_token(signed_token: str) -> StoryInvitation | None:
    """The invitation a link token points at, or None for a tampered/unknown token."""
    raw = token_unsign(signed_token)
    if raw is None:
        return None
    return (
        StoryInvitation.objects.select_related(
            "inviter", "invitee_user", "story", "roleplay_character_role__roleplay_template"
        )
        .filter(token=raw)
        .first()
    )


def invitation_list_for_user(
    *, user: User, filters: dict[str, Any] | None = None
) -> QuerySet[StoryInvitation]:
    """Invitations the user sent or received (``direction`` = sent | received narrows)."""
    # the role's template and story too: the serializer checks the ownership rules per row
    qs = StoryInvitation.objects.filter(Q(inviter=user) | Q(invitee_user=user)).select_related(
        "inviter", "invitee_user", "story", "roleplay_character_role__roleplay_template__story"
    )
    filtered: QuerySet[StoryInvitation] = InvitationFilter(
        filters or {}, queryset=qs, request_user=user
    ).qs
    return filtered
