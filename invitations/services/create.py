"""Creating an invitation and sending it through the delivery pipeline (also the content
and channel checks the bulk path reuses)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from deliveries.errors import NotifyError
from deliveries.services import notify
from deliveries.types import NotifyResult, Recipient
from notifyplatform.choices import Channel, ConversationStyle, InvitationType
from users.models import User

from .. import errors
from ..errors import InvitationError
from ..limits import invitation_limits_check
from ..models import (
    ContentType,
    InvitationAction,
    InvitationStatus,
    NewsArticle,
    NewsNarration,
    RoleplayCharacterRole,
    RoleplayTemplate,
    Story,
    StoryInvitation,
)
from ..ownership import content_authorize
from ..tokens import invitation_urls, token_generate
from .base import DEFAULT_CHANNELS, _history


def _display_name(user: User) -> str:
    # Never the inviter's email address: the invitee may be a stranger.
    return user.display_name or "Someone"


def _channels(
    delivery_preferences: dict[str, Any] | None,
    *,
    invitee_user: User | None,
    invitee_email: str | None,
    invitee_phone: str | None,
) -> list[str]:
    prefs = delivery_preferences or {}
    channels = prefs.get("channels") or DEFAULT_CHANNELS
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise InvitationError(
            errors.CHANNEL_UNAVAILABLE,
            "channels must be a list of channel names",
            field="delivery_preferences.channels",
        )
    for channel in channels:
        if channel not in Channel.values or channel == Channel.WEBHOOK:
            raise InvitationError(
                errors.CHANNEL_UNAVAILABLE,
                f"invitations cannot be sent by {channel!r}",
                field="delivery_preferences.channels",
            )
        if invitee_user is not None:
            continue
        needs = {"email": invitee_email, "sms": invitee_phone}
        if channel not in needs or not needs[channel]:
            raise InvitationError(
                errors.CHANNEL_UNAVAILABLE,
                f"an invitee without an account cannot be reached by {channel}",
                field="delivery_preferences.channels",
            )
    return list(dict.fromkeys(channels))


def _content_for(
    invitation_type: str,
    *,
    inviter: User,
    story: Story | None,
    article: NewsArticle | None,
    narration: NewsNarration | None,
    roleplay_template: RoleplayTemplate | None,
    role: RoleplayCharacterRole | None,
) -> dict[str, Any]:
    """The invitation's content columns and template variables for its type. The content
    must be the inviter's to invite to (``ownership``): checked before anything about the
    content is told (a taken role's name, an article's state)."""
    if invitation_type == InvitationType.STORY_COLLABORATION:
        if story is None:
            raise InvitationError(
                errors.CONTENT_REQUIRED,
                "a story collaboration invitation needs a story",
                field="story",
            )
        content_authorize(inviter=inviter, story=story)
        return {
            "fields": {
                "story": story,
                "content_type": ContentType.STORY,
                "content_id": story.pk,
                "content_metadata": {"story_title": story.title},
            },
            "context": {"story_title": story.title},
        }
    if invitation_type == InvitationType.NEWS_FEED:
        if article is None:
            raise InvitationError(
                errors.CONTENT_REQUIRED,
                "a news feed invitation needs a news article",
                field="article",
            )
        content_authorize(inviter=inviter, narration=narration)
        if not article.is_active:
            raise InvitationError(
                errors.CONTENT_MISMATCH, "the news article is no longer active", field="article"
            )
        metadata: dict[str, Any] = {"article_title": article.title}
        if narration is not None:
            if narration.news_article_id != article.pk:
                raise InvitationError(
                    errors.CONTENT_MISMATCH,
                    "the narration is not of this article",
                    field="narration",
                )
            metadata["narration_id"] = narration.pk
        return {
            "fields": {
                "content_type": ContentType.NEWS_ARTICLE,
                "content_id": article.pk,
                "content_metadata": metadata,
            },
            "context": {"article_title": article.title},
        }
    if invitation_type == InvitationType.ROLEPLAY_INVITATION:
        if roleplay_template is None:
            raise InvitationError(
                errors.CONTENT_REQUIRED,
                "a roleplay invitation needs a roleplay template",
                field="roleplay_template",
            )
        if role is None:
            raise InvitationError(
                errors.CONTENT_REQUIRED,
                "a roleplay invitation needs a character role",
                field="role",
            )
        content_authorize(inviter=inviter, roleplay_template=roleplay_template)
        if role.roleplay_template_id != roleplay_template.pk:
            raise InvitationError(
                errors.CONTENT_MISMATCH,
                "the role does not belong to this roleplay template",
                field="role",
            )
        content_authorize(inviter=inviter, role=role)
        if role_is_taken(role):
            raise InvitationError(
                errors.ROLE_TAKEN,
                f"the role {role.role_name!r} is already taken",
                field="role",
                status=409,
            )
        return {
            "fields": {
                "story": roleplay_template.story,
                "content_type": ContentType.ROLEPLAY_TEMPLATE,
                "content_id": roleplay_template.pk,
                "roleplay_character_role": role,
                "content_metadata": {
                    "roleplay_title": roleplay_template.template_name,
                    "role_name": role.role_name,
                },
            },
            "context": {
                "roleplay_title": roleplay_template.template_name,
                "role_name": role.role_name,
            },
        }
    raise InvitationError(
        errors.INVALID_INVITATION_TYPE,
        f"invitation_type must be one of {', '.join(InvitationType.values)}",
        field="invitation_type",
    )


def role_is_taken(role: RoleplayCharacterRole, *, exclude: StoryInvitation | None = None) -> bool:
    taken = StoryInvitation.objects.filter(
        roleplay_character_role=role, status=InvitationStatus.ACCEPTED
    )
    if exclude is not None:
        taken = taken.exclude(pk=exclude.pk)
    return taken.exists()


def _context(invitation: StoryInvitation, raw_token: str) -> dict[str, Any]:
    context = {
        "inviter_name": _display_name(invitation.inviter),
        "conversation_style": invitation.conversation_style or ConversationStyle.NEUTRAL,
        "message": invitation.message or "",
        "expires_at": invitation.expires_at.strftime("%Y-%m-%d %H:%M UTC"),
        **invitation_urls(raw_token),
    }
    # The catalogue's templates link with ``invitation_url`` (the view page, which offers
    # accept and decline) and call the role ``character_name``; both names are given.
    context["invitation_url"] = context["view_url"]
    meta = invitation.content_metadata or {}
    for key in ("story_title", "article_title", "roleplay_title", "role_name"):
        if key in meta:
            context[key] = meta[key]
    if "role_name" in context:
        context["character_name"] = context["role_name"]
    return context


def _send(
    invitation: StoryInvitation, *, idempotency_key: str, reminder: bool = False
) -> NotifyResult:
    """Hand the invitation to the delivery pipeline on its channels."""
    if invitation.invitee_user is not None:
        recipient: Any = invitation.invitee_user
    else:
        recipient = Recipient(
            email=invitation.invitee_email,
            phone=invitation.invitee_phone,
            region=invitation.geographic_region,
        )
    channels = (invitation.delivery_preferences or {}).get("channels") or DEFAULT_CHANNELS
    context = _context(invitation, invitation.token)
    try:
        return notify(
            recipient,
            template_key=invitation.invitation_type,
            context={**context, "reminder": reminder},
            channels=channels,
            category="invitation",
            priority="normal",
            idempotency_key=idempotency_key,
            expires_at=invitation.expires_at,
            invitation=invitation,
            action_url=context["view_url"],
            action_label="View invitation",
            metadata={"invitation_id": invitation.pk, "reminder": reminder},
        )
    except NotifyError as exc:
        raise InvitationError(exc.code, exc.message, field=exc.field) from exc


@transaction.atomic
def invitation_create(
    *,
    inviter: User,
    invitation_type: str,
    invitee_user: User | None = None,
    invitee_email: str | None = None,
    invitee_phone: str | None = None,
    story: Story | None = None,
    article: NewsArticle | None = None,
    narration: NewsNarration | None = None,
    roleplay_template: RoleplayTemplate | None = None,
    role: RoleplayCharacterRole | None = None,
    conversation_style: str = "neutral",
    message: str = "",
    expires_in: timedelta = timedelta(days=7),
    delivery_preferences: dict[str, Any] | None = None,
    batch_job_id: int | None = None,
) -> StoryInvitation:
    """Create an invitation, send it through the pipeline and record ``sent`` (by the
    inviter) and ``received`` (by the invitee, if a user). Bad input raises
    ``InvitationError`` and writes nothing."""
    invitee_email = (invitee_email or "").strip().lower() or None
    invitee_phone = (invitee_phone or "").strip() or None
    if invitee_user is None and not invitee_email and not invitee_phone:
        raise InvitationError(
            errors.INVITEE_REQUIRED,
            "an invitation needs an invitee user, email or phone",
            field="invitee_email",
        )
    if invitee_user is not None and invitee_user.pk == inviter.pk:
        raise InvitationError(
            errors.SELF_INVITATION, "you cannot invite yourself", field="invitee_user"
        )
    if conversation_style not in ConversationStyle.values:
        raise InvitationError(
            "INVALID_CONVERSATION_STYLE",
            f"conversation_style must be one of {', '.join(ConversationStyle.values)}",
            field="conversation_style",
        )
    if expires_in <= timedelta(0):
        raise InvitationError(
            errors.INVALID_EXPIRY, "expires_in must be positive", field="expires_in"
        )
    content = _content_for(
        invitation_type,
        inviter=inviter,
        story=story,
        article=article,
        narration=narration,
        roleplay_template=roleplay_template,
        role=role,
    )
    channels = _channels(
        delivery_preferences,
        invitee_user=invitee_user,
        invitee_email=invitee_email,
        invitee_phone=invitee_phone,
    )
    if invitee_user is None:
        # mail and SMS to whoever the inviter names: the abuse limits (429)
        invitation_limits_check(
            inviter=inviter, invitee_email=invitee_email, invitee_phone=invitee_phone
        )
    invitation = StoryInvitation.objects.create(
        inviter=inviter,
        invitee_user=invitee_user,
        invitee_email=invitee_email,
        invitee_phone=invitee_phone,
        message=message,
        token=token_generate(),
        status=InvitationStatus.PENDING,
        expires_at=timezone.now() + expires_in,
        conversation_style=conversation_style,
        invitation_type=invitation_type,
        delivery_preferences={**(delivery_preferences or {}), "channels": channels},
        geographic_region=(invitee_user.region or None) if invitee_user else None,
        batch_job_id=batch_job_id,
        **content["fields"],
    )
    _send(invitation, idempotency_key=f"invitation:{invitation.pk}:sent")
    StoryInvitation.objects.filter(pk=invitation.pk).update(status=InvitationStatus.SENT)
    invitation.status = InvitationStatus.SENT
    _history(
        invitation, InvitationAction.SENT, user=inviter, interaction_metadata={"channels": channels}
    )
    if invitee_user is not None:
        _history(
            invitation,
            InvitationAction.RECEIVED,
            user=invitee_user,
            interaction_metadata={"channels": channels},
        )
    return invitation
