"""Ending escalations the moment the user engages: deliveries (read, click) and realtime
(ack) send signals from the transaction that records it; this makes the waiting escalation
steps about those notifications due now, so the dispatcher runs them within a second and
their engagement check (``escalate``) ends them with decision ``engaged``. The check at due
time stays the guarantee; the signal only brings the due time forward."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.utils import timezone

from deliveries.errors import NotifyError
from deliveries.workflows import WorkflowTriggered

from .errors import WorkflowError

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


def notify_workflow_trigger(
    key: str,
    *,
    recipients: list[Any],
    data: dict[str, Any],
    send_at: Any = None,
    cancellation_key: str | None = None,
    idempotency_key: str | None = None,
) -> WorkflowTriggered:
    """The engine ``notify(..., workflow=key)`` delegates to (registered in
    ``deliveries.workflows`` by ``CampaignsConfig.ready``): ``workflow_trigger``, its bad
    input reported as the pipeline's ``NotifyError`` with the same code and field."""
    from .trigger import workflow_trigger  # the engine imports models: after app loading

    try:
        result = workflow_trigger(
            key,
            recipients=recipients,
            data=data,
            send_at=send_at,
            cancellation_key=cancellation_key,
            idempotency_key=idempotency_key,
        )
    except WorkflowError as exc:
        field = "workflow" if exc.field == "key" else exc.field
        raise NotifyError(exc.code, exc.message, field, status=exc.status) from exc
    return WorkflowTriggered(
        workflow=key, run_ids=[run.pk for run in result.runs], created=result.created
    )
