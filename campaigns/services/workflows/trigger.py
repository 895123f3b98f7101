"""Starting runs (``workflow_trigger``) and stopping them (``workflow_cancel``).

A trigger starts one run per recipient on the workflow's current version, each with its
first step row due at ``send_at`` (now when absent). Runs due now are run at once in the
caller's transaction when there are at most ``NP_WORKFLOW_INLINE_MAX`` of them (a digest
join is then one short transaction per trigger); larger fan-outs (a broadcast) are handed
to the batch queue after commit. Runs due later wait for the dispatcher.

``send_at``: an ISO 8601 time with a zone, or a wall-clock time in each recipient's own
timezone: ``"09:00 local"`` (the next 09:00 there) or ``"2026-12-03T09:00 local"``.

``idempotency_key`` (internal callers, e.g. ``bid:42``): one run per (key, recipient) ever;
a repeat returns the existing run. API callers' ``Idempotency-Key`` is handled per caller
in ``campaigns.services.workflows.requests``.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from users.models import User

from ...audience import saved_audience_get, saved_audience_users
from ...errors import BatchError
from ...models import RunState, StepState, Workflow, WorkflowRun, WorkflowRunStep
from .definitions import workflow_current_version
from .dispatch import steps_enqueue
from .engine import steps_execute_inline
from .errors import INVALID_TRIGGER, WORKFLOW_INACTIVE, WORKFLOW_NOT_FOUND, WorkflowError
from .ingest import bulk_digest_applies, digest_join_bulk
from .steps import next_clock_time, user_zone

MAX_RECIPIENTS = 100_000
_LOCAL_RE = re.compile(r"^(?P<when>.+?)\s+local$", re.IGNORECASE)
_CLOCK_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass
class TriggerResult:
    runs: list[WorkflowRun]
    created: bool


def send_at_validate(value: Any) -> None:
    """Raise WorkflowError(field send_at) unless ``value`` is a time ``send_at_for`` reads."""
    send_at_for(value, None)


def send_at_for(value: Any, user: Any, now: datetime | None = None) -> datetime | None:
    """The moment ``send_at`` names for this recipient (None: now)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        if timezone.is_naive(value):
            raise WorkflowError(INVALID_TRIGGER, "must include a time zone", "send_at")
        return value
    if not isinstance(value, str):
        raise WorkflowError(INVALID_TRIGGER, "must be a date-time text", "send_at")
    now = now or timezone.now()
    local = _LOCAL_RE.match(value.strip())
    if local is None:
        parsed = _parse(value.strip())
        if timezone.is_naive(parsed):
            raise WorkflowError(
                INVALID_TRIGGER,
                "must include a time zone, or end with ' local' for the recipient's own",
                "send_at",
            )
        return parsed
    when = local.group("when").strip()
    tz = user_zone(user) if user is not None else zoneinfo.ZoneInfo("UTC")
    clock = _CLOCK_RE.match(when)
    if clock:
        return next_clock_time(now, int(clock.group(1)), int(clock.group(2)), tz)
    parsed = _parse(when)
    if not timezone.is_naive(parsed):
        raise WorkflowError(INVALID_TRIGGER, "a ' local' time carries no zone", "send_at")
    return parsed.replace(tzinfo=tz)


def _parse(text: str) -> datetime:
    try:
        parsed = parse_datetime(text)
    except ValueError:
        parsed = None
    if parsed is None:
        raise WorkflowError(
            INVALID_TRIGGER,
            "not a date-time: use ISO 8601 with a zone, 'HH:MM local' or '<date>THH:MM local'",
            "send_at",
        )
    return parsed


def _users(user_ids: list[Any] | None) -> list[User]:
    if not isinstance(user_ids, list) or not user_ids:
        raise WorkflowError(INVALID_TRIGGER, "one user id or a non-empty list", "recipients")
    if len(user_ids) > MAX_RECIPIENTS:
        raise WorkflowError(INVALID_TRIGGER, f"at most {MAX_RECIPIENTS} recipients", "recipients")
    wanted = list(dict.fromkeys(str(getattr(u, "pk", u)) for u in user_ids))
    found = {str(u.pk): u for u in User.objects.filter(pk__in=wanted, is_active=True)}
    missing = [uid for uid in wanted if uid not in found]
    if missing:
        raise WorkflowError(INVALID_TRIGGER, f"no such user: {missing[0]}", "recipients")
    return [found[uid] for uid in wanted]


def audience_recipients(audience: Any) -> list[str]:
    """The user ids of a saved audience (by id or name), for a trigger; raises
    WorkflowError(field audience) for an unknown one, an empty or an oversized one."""
    try:
        saved = saved_audience_get(str(audience).strip())
    except BatchError as exc:
        raise WorkflowError(INVALID_TRIGGER, exc.message, "audience") from exc
    ids = [str(pk) for pk in saved_audience_users(saved).values_list("pk", flat=True)]
    if not ids:
        raise WorkflowError(INVALID_TRIGGER, f"audience {saved.name!r} has no users", "audience")
    if len(ids) > MAX_RECIPIENTS:
        raise WorkflowError(
            INVALID_TRIGGER,
            f"more than {MAX_RECIPIENTS} users: send a broadcast with workflow_key instead",
            "audience",
        )
    return ids


def workflow_trigger(
    key: str,
    *,
    recipients: list[Any] | None = None,
    audience: Any = None,
    data: dict[str, Any] | None = None,
    send_at: Any = None,
    cancellation_key: str | None = None,
    idempotency_key: str | None = None,
) -> TriggerResult:
    """Start the workflow ``key`` for each recipient (users or user ids); see the module
    doc. ``audience`` (a saved audience's id or name) instead of ``recipients`` starts one
    run per user it selects now. Raises WorkflowError (nothing written) for an unknown or
    inactive workflow or bad input. ``notify(..., workflow=key)`` and broadcasts call this."""
    if (recipients is None) == (audience is None):
        raise WorkflowError(INVALID_TRIGGER, "give recipients or an audience", "recipients")
    data = dict(data or {})
    if cancellation_key is not None and (not cancellation_key or len(cancellation_key) > 255):
        raise WorkflowError(INVALID_TRIGGER, "1 to 255 characters", "cancellation_key")
    send_at_validate(send_at)
    with transaction.atomic():
        workflow = Workflow.objects.filter(key=key).first()
        if workflow is None:
            raise WorkflowError(WORKFLOW_NOT_FOUND, f"no workflow {key!r}", "key")
        if not workflow.is_active:
            raise WorkflowError(WORKFLOW_INACTIVE, f"workflow {key!r} is not active", "key")
        version = workflow_current_version(workflow)
        if version is None:
            raise WorkflowError(WORKFLOW_NOT_FOUND, f"workflow {key!r} has no steps", "key")
        users = _users(audience_recipients(audience) if audience is not None else recipients)
        now = timezone.now()
        existing: dict[str, WorkflowRun] = {}
        if idempotency_key:
            keys = [f"{idempotency_key}:{u.pk}" for u in users]
            existing = {
                str(r.idempotency_key): r
                for r in WorkflowRun.objects.filter(idempotency_key__in=keys)
            }
        runs, steps = [], []
        first_type = version.steps[0]["type"]
        for user in users:
            run_key = f"{idempotency_key}:{user.pk}" if idempotency_key else None
            if run_key in existing:
                runs.append(existing[run_key])
                continue
            due = send_at_for(send_at, user, now) or now
            run = WorkflowRun(
                workflow=workflow,
                version=version,
                user=user,
                data=data,
                cancellation_key=cancellation_key,
                idempotency_key=run_key,
                send_at=due if send_at else None,
            )
            runs.append(run)
            steps.append((run, due))
        fresh = [run for run, _ in steps]
        WorkflowRun.objects.bulk_create(fresh)
        rows = WorkflowRunStep.objects.bulk_create(
            [
                WorkflowRunStep(run=run, index=0, step_type=first_type, due_at=due)
                for run, due in steps
            ]
        )
        due_now = [row for row, (_, due) in zip(rows, steps, strict=True) if due <= now]
        first = version.steps[0]
        if due_now and len(due_now) == len(rows) and bulk_digest_applies(first):
            # a digest first: every run joins its window in a few statements (ingest.py)
            digest_join_bulk(fresh, rows, first, now)
            due_now = []
        inline_max = int(getattr(settings, "NP_WORKFLOW_INLINE_MAX", 100))
        if due_now and len(due_now) <= inline_max:
            steps_execute_inline(due_now)
        elif due_now:
            due_ids = [row.pk for row in due_now]
            transaction.on_commit(lambda: steps_enqueue(due_ids))
    return TriggerResult(runs=runs, created=bool(fresh))


@transaction.atomic
def workflow_cancel(
    *, cancellation_key: str, workflow_key: str | None = None, user_ids: list[Any] | None = None
) -> int:
    """Cancel the runs with this cancellation key that have not finished: their waiting
    steps never run. Returns how many runs were cancelled."""
    if not isinstance(cancellation_key, str) or not cancellation_key:
        raise WorkflowError(INVALID_TRIGGER, "required", "cancellation_key")
    runs = WorkflowRun.objects.filter(cancellation_key=cancellation_key, state=RunState.WAITING)
    if workflow_key:
        runs = runs.filter(workflow__key=workflow_key)
    if user_ids:
        runs = runs.filter(user_id__in=[str(u) for u in user_ids])
    return runs_cancel(list(runs.values_list("pk", flat=True)))


def runs_cancel(run_ids: list[int]) -> int:
    """Cancel these runs (those still waiting) and their waiting steps."""
    if not run_ids:
        return 0
    now = timezone.now()
    with transaction.atomic():
        locked = list(
            WorkflowRun.objects.select_for_update()
            .filter(pk__in=run_ids, state=RunState.WAITING)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        WorkflowRunStep.objects.filter(run_id__in=locked, state=StepState.WAITING).update(
            state=StepState.CANCELLED, decision="cancelled", finished_at=now
        )
        return WorkflowRun.objects.filter(pk__in=locked).update(
            state=RunState.CANCELLED, decision="cancelled", finished_at=now, updated_at=now
        )
