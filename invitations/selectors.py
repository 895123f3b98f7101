"""Read paths for invitations."""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet

from users.models import User

from .filters import InvitationFilter
from .models import (
    InvitationStatus,
    NewsArticle,
    NewsNarration,
    RoleplayCharacterRole,
    RoleplayTemplate,
    StoryInvitation,
)
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


def article_list(*, viewer: User) -> QuerySet[NewsArticle]:
    """Active articles for everyone signed in; staff see inactive ones too."""
    qs = NewsArticle.objects.all()
    if not viewer.is_staff:
        qs = qs.filter(is_active=True)
    return qs.order_by("-published_at", "-id")


def narration_list(*, viewer: User) -> QuerySet[NewsNarration]:
    """A user's own narrations and the platform's (no user); staff see all."""
    qs = NewsNarration.objects.select_related("news_article")
    if not viewer.is_staff:
        qs = qs.filter(Q(user=viewer) | Q(user__isnull=True))
    return qs.order_by("-created_at", "-id")


def narration_for_invitation(invitation: StoryInvitation) -> NewsNarration | None:
    """The narration a news-feed invitation invites to (chosen when it was made), if any."""
    narration_id = (invitation.content_metadata or {}).get("narration_id")
    if invitation.invitation_type != "news_feed" or not narration_id:
        return None
    return NewsNarration.objects.filter(pk=narration_id).first()


def roleplay_template_list(*, viewer: User) -> QuerySet[RoleplayTemplate]:
    """Public roleplay templates and the viewer's own (created by them, or of their story)."""
    own = Q(created_by=viewer) | Q(created_by__isnull=True, story__owner=viewer)
    return (
        RoleplayTemplate.objects.filter(Q(is_public=True) | own)
        .select_related("story", "created_by")
        .prefetch_related("roles")
        .order_by("template_name", "id")
    )


def roles_taken_ids(template: RoleplayTemplate) -> set[int]:
    """Ids of the template's roles an invitee has accepted (taken for good)."""
    return set(
        StoryInvitation.objects.filter(
            roleplay_character_role__roleplay_template=template,
            status=InvitationStatus.ACCEPTED,
        ).values_list("roleplay_character_role_id", flat=True)
    )


def roles_free(template: RoleplayTemplate) -> list[RoleplayCharacterRole]:
    """The template's roles nobody has accepted yet, in name order."""
    taken = roles_taken_ids(template)
    return [r for r in template.roles.order_by("role_name", "id") if r.pk not in taken]
