"""The ``escalate`` step: in-app (and real-time) first; email if not read, clicked or acked
within ``email_after``; SMS if still not within ``sms_after`` after the email.

Level one writes the in-app notification through ``notify()`` and, with ``ack_required``
(the default), publishes an ``ack_required`` real-time event about it (its
``correlation_id`` is the notification id) to the user's private stream: every device the
user has open gets it, and realtime re-sends it until acknowledged on one. Each later level
first asks whether the user engaged with any notification of this step on any device — the
inbox row read or clicked, or the real-time event acknowledged — and if so the escalation
ends there (decision ``engaged``, the channel left unsent). The check happens when the
level comes due, in the same transaction that would send it, so a read, click or ack that
committed before that moment always wins; deliveries and realtime need no call back into
campaigns (they cannot import it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from deliveries.models import Notification
from realtime.services import publish

from ...models import WorkflowRun, WorkflowRunStep
from .outcome import Outcome, engaged, step_notify
from .spec import parse_duration


def _defaults(spec: dict[str, Any]) -> dict[str, Any]:
    return {k: spec[k] for k in ("category", "priority", "action_url") if spec.get(k)}


def _publish_ack_event(run: WorkflowRun, notification_id: str, spec: dict[str, Any]) -> None:
    notification = Notification.objects.get(pk=notification_id)
    publish(
        event_type="workflow.escalation",
        category="notification",
        data={
            "notification_id": notification_id,
            "title": notification.title,
            "message": notification.message,
            "workflow": run.workflow.key,
            "workflow_run": run.pk,
        },
        visibility="private",
        user=run.user,
        priority="high",
        ack_required=True,
        ack_timeout=int(spec.get("ack_timeout", 30)),
        correlation_id=notification_id,
    )


def escalate_step(
    run: WorkflowRun, step: WorkflowRunStep, spec: dict[str, Any], now: datetime
) -> Outcome:
    detail = dict(step.detail or {})
    level = detail.get("level")
    notification_ids = list(step.notification_ids or [])
    delivery_ids = list(step.delivery_ids or [])
    if level is None:
        ids, deliveries = step_notify(
            run, step, spec["in_app"], ["in_app"], suffix=":in_app", defaults=_defaults(spec)
        )
        if spec.get("ack_required", True) and ids:
            _publish_ack_event(run, ids[0], spec)
        detail["level"] = "email"
        return Outcome(
            "wait",
            "in_app_sent",
            due_at=now + parse_duration(spec["email_after"], "email_after"),
            detail=detail,
            notification_ids=ids,
            delivery_ids=deliveries,
        )
    how = engaged(run.user_id, notification_ids)
    if how is not None:
        detail["engaged"] = how
        return Outcome(
            "next",
            "engaged",
            detail=detail,
            notification_ids=notification_ids,
            delivery_ids=delivery_ids,
        )
    content = spec[level]
    ids, deliveries = step_notify(
        run, step, content, [level], suffix=f":{level}", defaults=_defaults(spec)
    )
    notification_ids += ids
    delivery_ids += deliveries
    if level == "email" and "sms" in spec:
        detail["level"] = "sms"
        return Outcome(
            "wait",
            "escalated_email",
            due_at=now + parse_duration(spec["sms_after"], "sms_after"),
            detail=detail,
            notification_ids=notification_ids,
            delivery_ids=delivery_ids,
        )
    detail["level"] = "done"
    return Outcome(
        "next",
        f"escalated_{level}",
        detail=detail,
        notification_ids=notification_ids,
        delivery_ids=delivery_ids,
    )
