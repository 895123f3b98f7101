"""Celery tasks of invitations, on beat: reminders and expiry (thin: a service does the work).
Reminder and cleanup batch jobs (``campaigns``) run the same services on demand."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from .services import invitations_expire_due, invitations_remind_due, narration_render


@shared_task(name="invitations.remind_invitations", ignore_result=True)
def remind_invitations() -> int:
    """Remind due invitations, ``NP_INVITATION_BEAT_BATCH_SIZE`` at most per run."""
    return invitations_remind_due(limit=settings.NP_INVITATION_BEAT_BATCH_SIZE)


@shared_task(name="invitations.expire_invitations", ignore_result=True)
def expire_invitations() -> int:
    """Expire open invitations past ``expires_at``, ``NP_INVITATION_BEAT_BATCH_SIZE`` at most
    per run."""
    return invitations_expire_due(limit=settings.NP_INVITATION_BEAT_BATCH_SIZE)


@shared_task(name="invitations.narrate_article", ignore_result=True)
def narrate_article(narration_id: int) -> bool:
    """Render a requested news narration (speech synthesis, seconds of CPU): off the
    request path, on the control queue."""
    return narration_render(narration_id=narration_id) is not None
