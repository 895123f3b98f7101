"""Telling the inviter how an invitation ended: accepted, declined or expired.

One notification per outcome (``invitation_accepted`` / ``invitation_declined`` /
``invitation_expired`` in the template catalogue) through ``notify()``, so the inviter's
preferences (opt-out, quiet hours, caps) decide each channel, and the in-app copy reaches
the inviter's open pages as a private real-time ``notification.created`` event. The
idempotency key is per invitation and outcome: a retried answer or a second expiry run
never tells twice. Called inside the transaction that records the outcome; a failure to
compose the message is logged and never undoes the answer."""

from __future__ import annotations

import logging
from typing import Any

from deliveries.errors import NotifyError
from deliveries.services import notify

from ..models import InvitationStatus, StoryInvitation

logger = logging.getLogger(__name__)

INVITER_TEMPLATES = {
    InvitationStatus.ACCEPTED: "invitation_accepted",
    InvitationStatus.DECLINED: "invitation_declined",
    InvitationStatus.EXPIRED: "invitation_expired",
}


def _invitee_name(invitation: StoryInvitation) -> str:
    user = invitation.invitee_user
    if user is not None:
        return user.display_name or user.email
    # the inviter typed this address or number in: telling it back reveals nothing
    return invitation.invitee_email or invitation.invitee_phone or "Your invitee"


def _content_title(invitation: StoryInvitation) -> str:
    meta: dict[str, Any] = invitation.content_metadata or {}
    if "role_name" in meta:
        return f"{meta['role_name']} in {meta.get('roleplay_title', 'a roleplay')}"
    for key in ("story_title", "article_title", "roleplay_title"):
        if meta.get(key):
            return str(meta[key])
    return "your invitation"


def inviter_notify(invitation: StoryInvitation, outcome: str) -> None:
    """Notify the inviter of ``outcome`` (an ``InvitationStatus`` in ``INVITER_TEMPLATES``)."""
    template_key = INVITER_TEMPLATES[InvitationStatus(outcome)]
    try:
        notify(
            invitation.inviter,
            template_key=template_key,
            context={
                "invitee_name": _invitee_name(invitation),
                "content_title": _content_title(invitation),
                "invitation_type": (invitation.invitation_type or "").replace("_", " "),
            },
            category="invitation",
            idempotency_key=f"invitation:{invitation.pk}:inviter:{outcome}",
            # not linked as the invitation's delivery (those are the invitation's own sends,
            # to the invitee); the metadata names it
            metadata={"invitation_id": invitation.pk, "outcome": outcome},
        )
    except NotifyError as exc:
        logger.warning(
            "invitation %s: inviter not told of %s: %s", invitation.pk, outcome, exc.message
        )
