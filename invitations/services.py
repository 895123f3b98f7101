"""Write paths for invitations (seed 000): create and send, view / accept / decline by
token, remind, expire; and news articles with duplicate detection.

Every step an invitee or inviter takes is a ``user_invitation_history`` row (with the
user agent, IP and referrer of the request that caused it): the analytics views
``user_invitation_summary`` and ``invitation_conversion_funnel`` are computed from it.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from notifyplatform.bulk import copy_rows, copy_text, loaded_instance
from notifyplatform.choices import Channel, ConversationStyle, InvitationType
from users.models import User

from . import errors
from .errors import InvitationError
from .limits import invitation_limits_check
from .models import (
    ContentType,
    InvitationAction,
    InvitationStatus,
    NewsArticle,
    NewsNarration,
    RoleplayCharacterRole,
    RoleplayTemplate,
    Story,
    StoryInvitation,
    UserInvitationHistory,
)
from .ownership import content_authorize, invitation_permitted
from .tokens import invitation_urls, token_generate, tokens_generate

logger = logging.getLogger(__name__)

OPEN_STATUSES = (InvitationStatus.PENDING, InvitationStatus.SENT, InvitationStatus.VIEWED)
DEFAULT_CHANNELS = [Channel.EMAIL.value]


@dataclass(frozen=True)
class RequestMeta:
    """Where an action came from, for the history row."""

    user_agent: str | None = None
    ip_address: str | None = None
    referrer: str | None = None

    @classmethod
    def from_request(cls, request: Any) -> RequestMeta:
        meta = request.META
        # REMOTE_ADDR only: X-Forwarded-For is client-controlled unless a trusted proxy
        # rewrites it, and a proxy setup would set REMOTE_ADDR through its own middleware.
        return cls(
            user_agent=meta.get("HTTP_USER_AGENT") or None,
            ip_address=meta.get("REMOTE_ADDR") or None,
            referrer=meta.get("HTTP_REFERER") or None,
        )


def _history(
    invitation: StoryInvitation,
    action: str,
    *,
    user: User | None,
    meta: RequestMeta | None = None,
    response_data: dict[str, Any] | None = None,
    interaction_metadata: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> UserInvitationHistory:
    meta = meta or RequestMeta()
    return UserInvitationHistory.objects.create(
        invitation=invitation,
        user=user,
        action=action,
        action_timestamp=at or timezone.now(),
        response_data=response_data,
        interaction_metadata=interaction_metadata,
        user_agent=meta.user_agent,
        ip_address=meta.ip_address,
        referrer=meta.referrer,
    )


# --- creating and sending --------------------------------------------------------------


def _display_name(user: User) -> str:
    # Never the inviter's email address: the invitee may be a stranger.
    return user.display_name or "Someone"


def _channels(
    delivery_preferences: dict[str, Any] | None, *, invitee_user: User | None,
    invitee_email: str | None, invitee_phone: str | None,
) -> list[str]:
    prefs = delivery_preferences or {}
    channels = prefs.get("channels") or DEFAULT_CHANNELS
    if not isinstance(channels, list) or not all(isinstance(c, str) for c in channels):
        raise InvitationError(
            errors.CHANNEL_UNAVAILABLE, "channels must be a list of channel names",
            field="delivery_preferences.channels",
        )
    for channel in channels:
        if channel not in Channel.values or channel == Channel.WEBHOOK:
            raise InvitationError(
                errors.CHANNEL_UNAVAILABLE, f"invitations cannot be sent by {channel!r}",
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
                errors.CONTENT_REQUIRED, "a story collaboration invitation needs a story",
                field="story",
            )
        content_authorize(inviter=inviter, story=story)
        return {
            "fields": {"story": story, "content_type": ContentType.STORY, "content_id": story.pk,
                       "content_metadata": {"story_title": story.title}},
            "context": {"story_title": story.title},
        }
    if invitation_type == InvitationType.NEWS_FEED:
        if article is None:
            raise InvitationError(
                errors.CONTENT_REQUIRED, "a news feed invitation needs a news article",
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
                    errors.CONTENT_MISMATCH, "the narration is not of this article",
                    field="narration",
                )
            metadata["narration_id"] = narration.pk
        return {
            "fields": {"content_type": ContentType.NEWS_ARTICLE, "content_id": article.pk,
                       "content_metadata": metadata},
            "context": {"article_title": article.title},
        }
    if invitation_type == InvitationType.ROLEPLAY_INVITATION:
        if roleplay_template is None:
            raise InvitationError(
                errors.CONTENT_REQUIRED, "a roleplay invitation needs a roleplay template",
                field="roleplay_template",
            )
        if role is None:
            raise InvitationError(
                errors.CONTENT_REQUIRED, "a roleplay invitation needs a character role",
                field="role",
            )
        content_authorize(inviter=inviter, roleplay_template=roleplay_template)
        if role.roleplay_template_id != roleplay_template.pk:
            raise InvitationError(
                errors.CONTENT_MISMATCH, "the role does not belong to this roleplay template",
                field="role",
            )
        content_authorize(inviter=inviter, role=role)
        if role_is_taken(role):
            raise InvitationError(
                errors.ROLE_TAKEN, f"the role {role.role_name!r} is already taken",
                field="role", status=409,
            )
        return {
            "fields": {
                "story": roleplay_template.story,
                "content_type": ContentType.ROLEPLAY_TEMPLATE,
                "content_id": roleplay_template.pk,
                "roleplay_character_role": role,
                "content_metadata": {"roleplay_title": roleplay_template.template_name,
                                     "role_name": role.role_name},
            },
            "context": {"roleplay_title": roleplay_template.template_name,
                        "role_name": role.role_name},
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


def _send(invitation: StoryInvitation, *, idempotency_key: str, reminder: bool = False) -> Any:
    """Hand the invitation to the delivery pipeline on its channels."""
    from deliveries.errors import NotifyError
    from deliveries.services import notify
    from deliveries.types import Recipient

    if invitation.invitee_user is not None:
        recipient: Any = invitation.invitee_user
    else:
        recipient = Recipient(
            email=invitation.invitee_email, phone=invitation.invitee_phone,
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
            errors.INVITEE_REQUIRED, "an invitation needs an invitee user, email or phone",
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
        invitation_type, inviter=inviter, story=story, article=article, narration=narration,
        roleplay_template=roleplay_template, role=role,
    )
    channels = _channels(
        delivery_preferences, invitee_user=invitee_user, invitee_email=invitee_email,
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
    _history(invitation, InvitationAction.SENT, user=inviter,
             interaction_metadata={"channels": channels})
    if invitee_user is not None:
        _history(invitation, InvitationAction.RECEIVED, user=invitee_user,
                 interaction_metadata={"channels": channels})
    return invitation


# --- invitee actions by token ----------------------------------------------------------


def is_answerable(invitation: StoryInvitation, now: datetime | None = None) -> bool:
    return _answer_problem(invitation, now or timezone.now()) is None


def _is_expired(invitation: StoryInvitation, now: datetime) -> bool:
    return invitation.status == InvitationStatus.EXPIRED or invitation.expires_at <= now


def _answer_problem(invitation: StoryInvitation, now: datetime) -> InvitationError | None:
    if invitation.status in (InvitationStatus.ACCEPTED, InvitationStatus.DECLINED):
        return InvitationError(
            errors.INVITATION_ALREADY_ANSWERED,
            f"this invitation was already {invitation.status}", status=409,
        )
    if invitation.status == InvitationStatus.CANCELLED:
        return InvitationError(
            errors.INVITATION_CANCELLED, "this invitation was cancelled", status=409
        )
    if _is_expired(invitation, now):
        return InvitationError(errors.INVITATION_EXPIRED, "this invitation has expired", status=410)
    return None


def _mark_viewed(
    invitation: StoryInvitation, meta: RequestMeta | None, now: datetime, *, implicit: bool
) -> bool:
    """Record the first view only (a conditional UPDATE claims it)."""
    claimed = StoryInvitation.objects.filter(pk=invitation.pk, viewed_at__isnull=True).update(
        viewed_at=now, updated_at=now
    )
    if not claimed:
        return False
    StoryInvitation.objects.filter(
        pk=invitation.pk, status__in=[InvitationStatus.PENDING, InvitationStatus.SENT]
    ).update(status=InvitationStatus.VIEWED)
    invitation.refresh_from_db(fields=["viewed_at", "status"])
    _history(
        invitation, InvitationAction.VIEWED, user=invitation.invitee_user, meta=meta, at=now,
        interaction_metadata={"implicit": True} if implicit else None,
    )
    return True


@transaction.atomic
def invitation_view(*, invitation: StoryInvitation, meta: RequestMeta | None = None) -> bool:
    """The invitee opened the invitation page: ``viewed`` once per invitation.
    True if this was the first view."""
    return _mark_viewed(invitation, meta, timezone.now(), implicit=False)


def _mark_expired(invitation: StoryInvitation, meta: RequestMeta | None, now: datetime) -> None:
    with transaction.atomic():
        changed = StoryInvitation.objects.filter(
            pk=invitation.pk, status__in=OPEN_STATUSES
        ).update(status=InvitationStatus.EXPIRED, updated_at=now)
        if changed:
            invitation.status = InvitationStatus.EXPIRED
            _history(invitation, InvitationAction.EXPIRED, user=invitation.invitee_user,
                     meta=meta, at=now)


def _answer(
    *, invitation: StoryInvitation, action: str, meta: RequestMeta | None,
    response_data: dict[str, Any] | None,
) -> StoryInvitation:
    now = timezone.now()
    with transaction.atomic():
        locked = StoryInvitation.objects.select_for_update().get(pk=invitation.pk)
        problem = _answer_problem(locked, now)
        if problem is None and action == InvitationAction.ACCEPTED:
            problem = _permission_problem(locked)
        if problem is None and action == InvitationAction.ACCEPTED:
            problem = _claim_role(locked)
        if problem is None:
            _mark_viewed(locked, meta, now, implicit=True)
            status = (InvitationStatus.ACCEPTED if action == InvitationAction.ACCEPTED
                      else InvitationStatus.DECLINED)
            locked.status = status
            locked.responded_at = now
            try:
                with transaction.atomic():
                    locked.save(update_fields=["status", "responded_at", "updated_at"])
            except IntegrityError:
                # The partial unique index on accepted roles: a concurrent accept won.
                problem = _role_taken_error(locked)
            else:
                _history(locked, action, user=locked.invitee_user, meta=meta, at=now,
                         response_data=response_data)
                return locked
    # Outside the transaction: an expiry is recorded even though the answer is refused.
    if problem.code == errors.INVITATION_EXPIRED:
        _mark_expired(invitation, meta, now)
    raise problem


def _permission_problem(invitation: StoryInvitation) -> InvitationError | None:
    if invitation_permitted(invitation):
        return None
    return InvitationError(
        errors.INVITATION_NOT_PERMITTED,
        "this invitation was not made by someone who may invite to its content",
        status=403,
    )


def invitation_check_permitted(invitation: StoryInvitation) -> None:
    """Raise ``INVITATION_NOT_PERMITTED`` (403) for an invitation its inviter had (or has
    since lost) no right to make: a role offered by someone other than the roleplay's owner,
    a private story of someone else. Its token then shows nothing of the content."""
    problem = _permission_problem(invitation)
    if problem is not None:
        raise problem


def _role_taken_error(invitation: StoryInvitation) -> InvitationError:
    role = invitation.roleplay_character_role
    name = role.role_name if role else "role"
    return InvitationError(
        errors.ROLE_TAKEN, f"the role {name!r} has already been taken", field="role", status=409
    )


def _claim_role(invitation: StoryInvitation) -> InvitationError | None:
    if invitation.roleplay_character_role_id is None:
        return None
    # Lock the role so two invitees accepting the same role queue up here.
    RoleplayCharacterRole.objects.select_for_update().get(pk=invitation.roleplay_character_role_id)
    if role_is_taken(invitation.roleplay_character_role, exclude=invitation):
        return _role_taken_error(invitation)
    return None


def invitation_accept(
    *, invitation: StoryInvitation, meta: RequestMeta | None = None,
    response_data: dict[str, Any] | None = None,
) -> StoryInvitation:
    """Accept by token: 410 when expired, 409 when answered, cancelled or the role is taken."""
    return _answer(invitation=invitation, action=InvitationAction.ACCEPTED, meta=meta,
                   response_data=response_data)


def invitation_decline(
    *, invitation: StoryInvitation, meta: RequestMeta | None = None,
    response_data: dict[str, Any] | None = None,
) -> StoryInvitation:
    return _answer(invitation=invitation, action=InvitationAction.DECLINED, meta=meta,
                   response_data=response_data)


# --- reminders and expiry ---------------------------------------------------------------


def invitations_due_for_reminder(*, now: datetime | None = None) -> Any:
    """Invitations neither viewed nor answered NP_INVITATION_REMINDER_AFTER after they
    were sent (or last reminded), still open and under the reminder cap."""
    now = now or timezone.now()
    cutoff = now - settings.NP_INVITATION_REMINDER_AFTER
    return StoryInvitation.objects.filter(
        status__in=[InvitationStatus.PENDING, InvitationStatus.SENT],
        viewed_at__isnull=True,
        responded_at__isnull=True,
        expires_at__gt=now,
        created_at__lte=cutoff,
        reminder_count__lt=settings.NP_INVITATION_MAX_REMINDERS,
    ).filter(Q(last_reminded_at__isnull=True) | Q(last_reminded_at__lte=cutoff))


@transaction.atomic
def invitation_remind(*, invitation: StoryInvitation, now: datetime | None = None) -> bool:
    """Send a reminder if it is still due; True if one was sent. The reminder slot is
    claimed with a conditional UPDATE, so two batches never remind twice."""
    now = now or timezone.now()
    claimed = invitations_due_for_reminder(now=now).filter(pk=invitation.pk).update(
        reminder_count=F("reminder_count") + 1, last_reminded_at=now, updated_at=now
    )
    if not claimed:
        return False
    invitation.refresh_from_db()
    if not invitation_permitted(invitation):
        # a reminder would mail the content's title: not for an invitation its inviter had
        # (or has since lost) no right to make; the slot stays taken, so it is not retried
        return False
    _send(
        invitation,
        idempotency_key=f"invitation:{invitation.pk}:reminder:{invitation.reminder_count}",
        reminder=True,
    )
    _history(invitation, InvitationAction.REMINDED, user=invitation.invitee_user, at=now,
             interaction_metadata={"reminder_count": invitation.reminder_count})
    return True


@transaction.atomic
def invitations_expire_due(*, now: datetime | None = None) -> int:
    """Mark open invitations past ``expires_at`` as expired, with a history row each."""
    now = now or timezone.now()
    ids = list(
        StoryInvitation.objects.select_for_update(skip_locked=True)
        .filter(status__in=OPEN_STATUSES, expires_at__lte=now)
        .values_list("pk", flat=True)
    )
    for invitation in StoryInvitation.objects.filter(pk__in=ids).select_related("invitee_user"):
        _mark_expired(invitation, None, now)
    return len(ids)


# --- news articles ---------------------------------------------------------------------

_WS = re.compile(r"\s+")


def article_content_hash(*, title: str, summary: str, full_content: str | None) -> str:
    """SHA-256 of the article's text with whitespace and case normalised, so the same
    story re-published with different line breaks is still a duplicate."""
    parts = [title, summary, full_content or ""]
    normalised = "\n".join(_WS.sub(" ", p).strip().lower() for p in parts)
    return hashlib.sha256(normalised.encode()).hexdigest()


def article_create(
    *,
    title: str,
    summary: str,
    full_content: str | None = None,
    source_url: str | None = None,
    author: str | None = None,
    published_at: datetime | None = None,
    category: str | None = None,
    tags: list[str] | None = None,
    language: str = "en",
    reading_time_minutes: int | None = None,
) -> NewsArticle:
    """Create a news article; the same content twice is ``DUPLICATE_ARTICLE`` (400)."""
    digest = article_content_hash(title=title, summary=summary, full_content=full_content)
    duplicate = InvitationError(
        errors.DUPLICATE_ARTICLE, "an article with the same content already exists",
        field="full_content",
    )
    if NewsArticle.objects.filter(content_hash=digest).exists():
        raise duplicate
    try:
        with transaction.atomic():
            return NewsArticle.objects.create(
                title=title, summary=summary, full_content=full_content, source_url=source_url,
                author=author, published_at=published_at, category=category, tags=tags,
                language=language, reading_time_minutes=reading_time_minutes,
                content_hash=digest,
            )
    except IntegrityError:
        # lost a race with a concurrent insert of the same content
        raise duplicate from None


# --- bulk creation and sending for batch jobs (campaigns) -----------------------
#
# A batch invites thousands of users to the same content at once. Rows are written with
# bulk inserts, and the notifications through ``notify_many`` (the pipeline's bulk path).
# ``notify_many`` renders ONE context for everyone, but every invitation carries its own
# secret link and id, so the shared context holds placeholders that one UPDATE per table
# replaces with each invitation's link and id, in the same transaction, before any send is
# enqueued (sends are enqueued on commit) — nothing outside ever sees a placeholder.

BULK_LINK_PLACEHOLDER = "NPBATCHLINKPLACEHOLDER0"
BULK_ID_PLACEHOLDER = "NPBATCHINVITATIONID0"


def invitation_content_check(
    *,
    inviter: User,
    invitation_type: str,
    story: Story | None = None,
    article: NewsArticle | None = None,
    narration: NewsNarration | None = None,
    roleplay_template: RoleplayTemplate | None = None,
    role: RoleplayCharacterRole | None = None,
    channels: list[str] | None = None,
) -> list[str]:
    """Validate what an invitation of ``invitation_type`` by ``inviter`` needs (content the
    inviter may invite to, channels) without writing anything; raises ``InvitationError``.
    Returns the channel list to use."""
    _content_for(
        invitation_type, inviter=inviter, story=story, article=article, narration=narration,
        roleplay_template=roleplay_template, role=role,
    )
    # Batch invitees are users, so any invitation channel is addressable; pass a stand-in
    # user so only the channel names are checked.
    return _channels(
        {"channels": channels} if channels else None, invitee_user=User(),
        invitee_email=None, invitee_phone=None,
    )


# COPY columns of ``story_invitations``: the per-row ones first, then those every invitation
# of a batch chunk shares; ``created_at`` is left to its default (the transaction's now()).
_INV_ROW = ("id", "invitee_user_id", "token", "geographic_region")
_INV_SHARED = tuple(
    f.attname
    for f in StoryInvitation._meta.concrete_fields
    if f.attname not in _INV_ROW and f.attname != "created_at"
)
_INV_COLUMNS = tuple(
    {f.attname: f.column for f in StoryInvitation._meta.concrete_fields}[name]
    for name in (*_INV_ROW, *_INV_SHARED)
)


def _allocate_invitation_ids(count: int) -> tuple[list[int], datetime]:
    """``count`` invitation ids from the table's sequence and the transaction's now() (what
    ``created_at`` defaults to), in one round trip."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('story_invitations', 'id')), now()"
            " FROM generate_series(1, %s)",
            [count],
        )
        rows = cursor.fetchall()
    return [row[0] for row in rows], rows[0][1]


def invitations_create_bulk(
    *,
    inviter: User,
    invitation_type: str,
    invitees: list[User],
    batch_job_id: int | None = None,
    story: Story | None = None,
    article: NewsArticle | None = None,
    narration: NewsNarration | None = None,
    roleplay_template: RoleplayTemplate | None = None,
    role: RoleplayCharacterRole | None = None,
    channels: list[str] | None = None,
    conversation_style: str = "neutral",
    message: str = "",
    expires_in: timedelta = timedelta(days=7),
) -> list[StoryInvitation]:
    """Create one ``sent`` invitation per invitee with its ``sent`` and ``received`` history
    rows: ids from the sequence in one query, then one ``COPY`` per table (a Django
    ``bulk_create`` spends ~1 ms per recipient building its query). The rows are the ones
    ``bulk_create`` wrote. The caller sends them with ``invitations_send_bulk`` in the same
    transaction. Raises ``InvitationError``."""
    content = _content_for(
        invitation_type, inviter=inviter, story=story, article=article, narration=narration,
        roleplay_template=roleplay_template, role=role,
    )
    channel_list = invitation_content_check(
        inviter=inviter, invitation_type=invitation_type, story=story, article=article, narration=narration,
        roleplay_template=roleplay_template, role=role, channels=channels,
    )
    if any(invitee.pk == inviter.pk for invitee in invitees):
        raise InvitationError(
            errors.SELF_INVITATION, "you cannot invite yourself", field="invitee_user"
        )
    if not invitees:
        return []
    now = timezone.now()
    template = StoryInvitation(
        inviter=inviter,
        message=message,
        status=InvitationStatus.SENT,
        expires_at=now + expires_in,
        conversation_style=conversation_style,
        invitation_type=invitation_type,
        delivery_preferences={"channels": channel_list},
        batch_job_id=batch_job_id,
        updated_at=now,
        **content["fields"],
    )
    ids, created = _allocate_invitation_ids(len(invitees))
    tokens = tokens_generate(len(invitees))
    shared = "\t".join(copy_text(getattr(template, name)) for name in _INV_SHARED)
    lines = [
        f"{pk}\t{invitee.pk}\t{token}\t{copy_text(invitee.region or None)}\t{shared}\n"
        for pk, invitee, token in zip(ids, invitees, tokens, strict=True)
    ]
    copy_rows(f"COPY story_invitations ({', '.join(_INV_COLUMNS)}) FROM STDIN", lines)
    # history: ``sent`` (by the inviter) then ``received`` (by the invitee) per invitation,
    # in that order, as the one-by-one path writes them; ids and created_at by default
    meta_text = copy_text({"channels": channel_list})
    tail = f"{now.isoformat()}\t\\N\t{meta_text}\t\\N\t\\N\t\\N\n"
    history = [
        line
        for pk, invitee in zip(ids, invitees, strict=True)
        for line in (
            f"{inviter.pk}\t{pk}\t{InvitationAction.SENT.value}\t{tail}",
            f"{invitee.pk}\t{pk}\t{InvitationAction.RECEIVED.value}\t{tail}",
        )
    ]
    copy_rows(
        "COPY user_invitation_history (user_id, invitation_id, action, action_timestamp,"
        " response_data, interaction_metadata, user_agent, ip_address, referrer) FROM STDIN",
        history,
    )
    # the instances of the rows just written, without a read back nor Model.__init__
    values = {k: v for k, v in template.__dict__.items() if k != "_state"}
    values["created_at"] = created
    alias = connection.alias
    cache = {"inviter": inviter, **content["fields"]}
    return [
        loaded_instance(
            StoryInvitation,
            {**values, "id": pk, "invitee_user_id": invitee.pk, "token": token,
             "geographic_region": invitee.region or None},
            alias,
            {**cache, "invitee_user": invitee},
        )
        for pk, invitee, token in zip(ids, invitees, tokens, strict=True)
    ]


def invitations_send_bulk(
    invitations: list[StoryInvitation], *, idempotency_prefix: str
) -> list[Any]:
    """Notify the invitees of invitations that share inviter, type, content and expiry (one
    batch's chunk) through ``notify_many``; the idempotency key of each is
    ``<idempotency_prefix>:<invitee user id>``. Must run inside a transaction (the link
    substitution and the notifications commit together). Returns the ``NotifyResult``s."""
    from django.db import connection

    from deliveries.errors import NotifyError
    from deliveries.services import notify_many

    from .tokens import tokens_sign

    if not invitations:
        return []
    first = invitations[0]
    context = _context(first, first.token)
    base = f"{settings.NP_PUBLIC_BASE_URL.rstrip('/')}/i/{BULK_LINK_PLACEHOLDER}/"
    context.update(
        view_url=base, accept_url=f"{base}accept/", decline_url=f"{base}decline/",
        invitation_url=base,
    )
    channels = (first.delivery_preferences or {}).get("channels") or DEFAULT_CHANNELS
    by_user = {invitation.invitee_user_id: invitation for invitation in invitations}
    try:
        results = notify_many(
            [invitation.invitee_user for invitation in invitations],
            idempotency_prefix=idempotency_prefix,
            template_key=first.invitation_type,
            context={**context, "reminder": False},
            channels=channels,
            category="invitation",
            priority="normal",
            expires_at=first.expires_at,
            action_url=base,
            action_label="View invitation",
            metadata={"invitation_id": BULK_ID_PLACEHOLDER, "reminder": False},
        )
    except NotifyError as exc:
        raise InvitationError(exc.code, exc.message, field=exc.field) from exc
    new = [
        (result.notification.pk, by_user[result.notification.user_id])
        for result in results
        if result.created and result.notification is not None
    ]
    if new:
        ids = [notification_id for notification_id, _inv in new]
        links = tokens_sign([invitation.token for _nid, invitation in new])
        invitation_ids = [invitation.pk for _nid, invitation in new]
        quoted_id = f'"{BULK_ID_PLACEHOLDER}"'
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE notifications n SET
                  title = replace(n.title, %(ph)s, v.link),
                  message = replace(n.message, %(ph)s, v.link),
                  action_url = replace(n.action_url, %(ph)s, v.link),
                  rich_content = replace(n.rich_content::text, %(ph)s, v.link)::jsonb,
                  template_data = replace(n.template_data::text, %(ph)s, v.link)::jsonb,
                  metadata = replace(n.metadata::text, %(qid)s, v.inv::text)::jsonb
                FROM unnest(%(ids)s::uuid[], %(links)s::text[], %(invs)s::int[])
                  AS v(nid, link, inv)
                WHERE n.notification_id = v.nid
                """,
                {"ph": BULK_LINK_PLACEHOLDER, "qid": quoted_id, "ids": ids, "links": links,
                 "invs": invitation_ids},
            )
            cursor.execute(
                """
                UPDATE notification_deliveries d SET
                  invitation_id = v.inv,
                  delivery_metadata = replace(
                    replace(d.delivery_metadata::text, %(ph)s, v.link), %(qid)s, v.inv::text
                  )::jsonb
                FROM unnest(%(ids)s::uuid[], %(links)s::text[], %(invs)s::int[])
                  AS v(nid, link, inv)
                WHERE d.notification_id = v.nid
                """,
                {"ph": BULK_LINK_PLACEHOLDER, "qid": quoted_id, "ids": ids, "links": links,
                 "invs": invitation_ids},
            )
    return results
