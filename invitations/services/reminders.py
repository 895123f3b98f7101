"""Reminders and expiry: what is due, one reminder per claimed slot, expiring open
invitations. Run on beat (``invitations.tasks``) and by reminder/cleanup batch jobs."""

from __future__ import annotations

import logging
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from ..errors import InvitationError
from ..models import (
    InvitationAction,
    InvitationStatus,
    StoryInvitation,
)
from ..ownership import invitation_permitted
from .answer import _mark_expired
from .base import OPEN_STATUSES, _history
from .create import _send

logger = logging.getLogger(__name__)


def invitations_due_for_reminder(*, now: datetime | None = None) -> QuerySet[StoryInvitation]:
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
    claimed = (
        invitations_due_for_reminder(now=now)
        .filter(pk=invitation.pk)
        .update(reminder_count=F("reminder_count") + 1, last_reminded_at=now, updated_at=now)
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
    _history(
        invitation,
        InvitationAction.REMINDED,
        user=invitation.invitee_user,
        at=now,
        interaction_metadata={"reminder_count": invitation.reminder_count},
    )
    return True


def invitations_remind_due(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Beat: remind up to ``limit`` due invitations, oldest first, each in its own
    transaction (``invitation_remind`` claims its slot, so a batch job or another beat run
    reminding the same invitation meanwhile does not remind it twice). One that cannot be
    sent is logged and stays due. Returns how many were reminded."""
    now = now or timezone.now()
    due = invitations_due_for_reminder(now=now).order_by("pk").values_list("pk", flat=True)
    reminded = 0
    for invitation in StoryInvitation.objects.filter(
        pk__in=list(due[:limit] if limit is not None else due)
    ).order_by("pk"):
        try:
            reminded += invitation_remind(invitation=invitation, now=now)
        except InvitationError as exc:
            logger.warning("invitation %s: reminder not sent: %s", invitation.pk, exc.message)
    return reminded


@transaction.atomic
def invitations_expire_due(*, now: datetime | None = None, limit: int | None = None) -> int:
    """Mark open invitations past ``expires_at`` as expired (at most ``limit``, oldest
    first), with a history row each. Rows locked by a concurrent answer are left to the
    next run."""
    now = now or timezone.now()
    due = (
        StoryInvitation.objects.select_for_update(skip_locked=True)
        .filter(status__in=OPEN_STATUSES, expires_at__lte=now)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    ids = list(due[:limit] if limit is not None else due)
    for invitation in StoryInvitation.objects.filter(pk__in=ids).select_related("invitee_user", "inviter"):
        _mark_expired(invitation, None, now)
    return len(ids)
