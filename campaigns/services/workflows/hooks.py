"""Ending escalations the moment the user engages: deliveries (read, click) and realtime
(ack) send signals from the transaction that records it; this makes the waiting escalation
steps about those notifications due now, so the dispatcher runs them within a second and
their engagement check (``escalate``) ends them with decision ``engaged``. The check at due
time stays the guarantee; the signal only brings the due time forward."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.utils import timezone

_WAKE_SQL = """
    UPDATE workflow_run_steps SET due_at = %(now)s, leased_until = NULL
    WHERE state = 'waiting' AND step_type = 'escalate' AND due_at > %(now)s
      AND notification_ids ?| %(ids)s::text[]
"""


def escalations_wake(notification_ids: list[str]) -> int:
    """Make the waiting escalations about these notifications due now; how many."""
    if not notification_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_WAKE_SQL, {"now": timezone.now(), "ids": list(notification_ids)})
        return int(cursor.rowcount)


def on_notification_engaged(sender: Any, notification_ids: list[str], **kwargs: Any) -> None:
    escalations_wake(notification_ids)


def on_event_acknowledged(sender: Any, correlation_id: str | None = None, **kwargs: Any) -> None:
    if correlation_id:
        escalations_wake([correlation_id])
