"""What a step handler returns, and the helpers every handler shares (the notify() call of a
step, the "has the user engaged" check)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from django.db import connection
from django.db.models import Q

from deliveries.models import Notification
from deliveries.services import notify
from realtime.models import RealTimeEvent

from ...models import WorkflowRun, WorkflowRunStep


@dataclass
class Outcome:
    """``next``: the step is done, go on; ``wait``: run it again at ``due_at``; ``stop``: the
    run ends here (``decision`` says why: throttled, digested, branch_not_taken, ...)."""

    kind: Literal["next", "wait", "stop"]
    decision: str
    due_at: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)
    notification_ids: list[str] = field(default_factory=list)
    delivery_ids: list[int] = field(default_factory=list)
    skipped: bool = False  # a stop that skipped the step (throttled, branch not taken)


def advisory_lock(*parts: Any) -> None:
    """A transaction-scoped lock on one (workflow, user, key): throttle counts and digest
    windows are decided by one transaction at a time."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            ["np-wf:" + ":".join(str(p) for p in parts)],
        )


def render_context(run: WorkflowRun) -> dict[str, Any]:
    """The trigger data, plus what earlier steps added (digest variables win)."""
    return {**(run.data or {}), **(run.variables or {})}


def step_notify(
    run: WorkflowRun,
    step: WorkflowRunStep,
    content: dict[str, Any],
    channels: list[str],
    *,
    suffix: str = "",
    defaults: dict[str, Any] | None = None,
) -> tuple[list[str], list[int]]:
    """Send through ``notify()`` exactly as any caller does (preferences, quiet hours,
    suppressions, the decision trace), with an idempotency key per run step (and level), so
    a step run again after a crash finds its notification instead of writing a second."""
    options = {**(defaults or {}), **content}
    metadata = {
        **(options.get("metadata") or {}),
        "workflow": run.workflow.key,
        "workflow_run": run.pk,
        "workflow_step": step.index,
    }
    result = notify(
        run.user,
        template_key=options.get("template"),
        title=options.get("title"),
        message=options.get("message"),
        context=render_context(run),
        channels=channels,
        category=options.get("category"),
        priority=options.get("priority"),
        action_url=options.get("action_url") or run.data.get("action_url") or None,
        metadata=metadata,
        webhook_url=options.get("webhook_url"),
        idempotency_key=f"wf-step:{step.pk}{suffix}",
    )
    notification_ids = [str(result.notification.pk)] if result.notification else []
    return notification_ids, [d.pk for d in result.deliveries]


def engaged(user_id: Any, notification_ids: list[str]) -> str | None:
    """How the user engaged with any of these notifications on any device — ``read``,
    ``clicked`` or ``acked`` (an acknowledgment of a real-time event about one) — or None."""
    if not notification_ids:
        return None
    row = (
        Notification.objects.filter(pk__in=notification_ids)
        .filter(Q(is_read=True) | Q(read_at__isnull=False) | Q(clicked_at__isnull=False))
        .values("clicked_at")
        .first()
    )
    if row is not None:
        return "clicked" if row["clicked_at"] else "read"
    acked = RealTimeEvent.objects.filter(
        correlation_id__in=notification_ids,
        acknowledgments__contains=[{"user_id": str(user_id)}],
    ).exists()
    return "acked" if acked else None
