"""Reminders and expiry: what is due, one reminder per claimed slot, expiring open
invitations. Run on beat (``invitations.tasks``) and by reminder/cleanup batch jobs."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone

from ..models import (
    InvitationAction,
    InvitationStatus,
    StoryInvitation,
)
from ..ownership import invitation_permitted
from .answer import _mark_expired
from .base import OPEN_STATUSES, _history
from .create import _send


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
