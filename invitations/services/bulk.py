"""Bulk creation and sending for batch jobs (``campaigns``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from deliveries.errors import NotifyError
from deliveries.services import notify_many
from notifyplatform.bulk import copy_rows, copy_text, loaded_instance
from users.models import User

from .. import errors
from ..errors import InvitationError
from ..models import (
    InvitationAction,
    InvitationStatus,
    NewsArticle,
    NewsNarration,
    RoleplayCharacterRole,
    RoleplayTemplate,
    Story,
    StoryInvitation,
)
from ..tokens import tokens_generate, tokens_sign
from .base import DEFAULT_CHANNELS
from .create import _channels, _content_for, _context

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
        invitation_type,
        inviter=inviter,
        story=story,
        article=article,
        narration=narration,
        roleplay_template=roleplay_template,
        role=role,
    )
    # Batch invitees are users, so any invitation channel is addressable; pass a stand-in
    # user so only the channel names are checked.
    return _channels(
        {"channels": channels} if channels else None,
        invitee_user=User(),
        invitee_email=None,
        invitee_phone=None,
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
        invitation_type,
        inviter=inviter,
        story=story,
        article=article,
        narration=narration,
        roleplay_template=roleplay_template,
        role=role,
    )
    channel_list = invitation_content_check(
        inviter=inviter,
        invitation_type=invitation_type,
        story=story,
        article=article,
        narration=narration,
        roleplay_template=roleplay_template,
        role=role,
        channels=channels,
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
            {
                **values,
                "id": pk,
                "invitee_user_id": invitee.pk,
                "token": token,
                "geographic_region": invitee.region or None,
            },
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
    if not invitations:
        return []
    first = invitations[0]
    context = _context(first, first.token)
    base = f"{settings.NP_PUBLIC_BASE_URL.rstrip('/')}/i/{BULK_LINK_PLACEHOLDER}/"
    context.update(
        view_url=base,
        accept_url=f"{base}accept/",
        decline_url=f"{base}decline/",
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
                {
                    "ph": BULK_LINK_PLACEHOLDER,
                    "qid": quoted_id,
                    "ids": ids,
                    "links": links,
                    "invs": invitation_ids,
                },
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
                {
                    "ph": BULK_LINK_PLACEHOLDER,
                    "qid": quoted_id,
                    "ids": ids,
                    "links": links,
                    "invs": invitation_ids,
                },
            )
    return results
