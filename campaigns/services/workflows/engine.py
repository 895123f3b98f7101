"""Running a run's steps: claim a due step, run it, record what it decided — in ONE transaction.

A step is claimed with ``SELECT … FOR UPDATE SKIP LOCKED`` on the step and its run together
(a second worker, or a cancellation, never waits on it and never runs it too). Its work (the
notification it wrote, the digest row it joined) and its new state commit together, so a
worker killed mid-step leaves the step exactly as it was: the dispatcher hands it out again
when its lease lapses, and it runs as if for the first time. ``notify()`` calls carry an
idempotency key per run step as a second guard.

When a step is done the next step's row is written due now and run in the same
transaction, until a step waits (delay, digest window, escalation level) or the run ends.
A step that raises is retried with a backoff (``attempts``) and after ``MAX_ATTEMPTS`` fails
its run (decision ``error``; the message is in the step's detail).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from notifyplatform.errors import DomainError

from ...models import RunState, StepState, WorkflowRun, WorkflowRunStep
from .digest import digest_step
from .escalate import escalate_step
from .outcome import Outcome
from .steps import branch_step, channel_step, delay_step, throttle_step

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
MAX_STEPS_PER_CALL = 60
Handler = Callable[[WorkflowRun, WorkflowRunStep, dict[str, Any], datetime], Outcome]
HANDLERS: dict[str, Handler] = {
    "channel": channel_step,
    "delay": delay_step,
    "digest": digest_step,
    "throttle": throttle_step,
    "branch": branch_step,
    "escalate": escalate_step,
}


def _claim(step_id: int, now: datetime) -> WorkflowRunStep | None:
    return (
        WorkflowRunStep.objects.select_for_update(skip_locked=True, of=("self", "run"))
        .select_related("run", "run__workflow", "run__version", "run__user")
        .filter(pk=step_id, state=StepState.WAITING, due_at__lte=now, run__state=RunState.WAITING)
        .first()
    )


def _finish_run(run: WorkflowRun, state: str, decision: str, now: datetime) -> None:
    run.state, run.decision, run.finished_at = state, decision, now
    run.save(
        update_fields=["state", "decision", "finished_at", "variables", "step_index", "updated_at"]
    )


def _record(step: WorkflowRunStep, outcome: Outcome, now: datetime) -> None:
    step.decision = outcome.decision
    step.detail = outcome.detail or step.detail
    if outcome.notification_ids:
        step.notification_ids = outcome.notification_ids
    if outcome.delivery_ids:
        step.delivery_ids = outcome.delivery_ids
    step.started_at = step.started_at or now
    step.leased_until = None
    if outcome.kind == "wait":
        step.due_at = outcome.due_at or now
    else:
        step.state = StepState.SKIPPED if outcome.skipped else StepState.DONE
        step.finished_at = now
    step.save()


def _run_claimed(step: WorkflowRunStep, now: datetime) -> WorkflowRunStep | None:
    """Run one claimed step; the next step's row (due now) when the run goes on."""
    run = step.run
    steps = run.version.steps
    outcome = HANDLERS[step.step_type](run, step, steps[step.index], now)
    _record(step, outcome, now)
    if outcome.kind == "wait":
        return None
    if outcome.kind == "stop":
        _finish_run(run, RunState.COMPLETED, outcome.decision, now)
        return None
    if step.index + 1 >= len(steps):
        run.step_index = step.index
        _finish_run(run, RunState.COMPLETED, "completed", now)
        return None
    run.step_index = step.index + 1
    run.save(update_fields=["step_index", "variables", "updated_at"])
    nxt = WorkflowRunStep.objects.create(
        run=run, index=step.index + 1, step_type=steps[step.index + 1]["type"], due_at=now
    )
    nxt.run = run
    return nxt


def step_execute(step_id: int, *, now: datetime | None = None) -> str:
    """Run the step if it is due and nobody else holds it, then the steps after it that are
    due at once. Returns what happened to the first: ``ran``, ``busy`` (locked, not due,
    finished or cancelled) or ``error``."""
    now = now or timezone.now()
    try:
        with transaction.atomic():
            step = _claim(step_id, now)
            if step is None:
                return "busy"
            for _ in range(MAX_STEPS_PER_CALL):
                step = _run_claimed(step, now)
                if step is None:
                    break
        return "ran"
    except Exception as exc:  # noqa: BLE001 - recorded on the step, retried with a backoff
        logger.warning("workflow step %s failed", step_id, exc_info=True)
        _note_failure(step_id, exc, timezone.now())
        return "error"


def steps_execute_inline(steps: list[WorkflowRunStep]) -> None:
    """Run steps due now that the caller's transaction just wrote (a trigger's own runs:
    nobody else can see them yet, so no claim is needed), each in a savepoint: one run's
    failure is recorded on it and leaves the others alone."""
    for first in steps:
        now = timezone.now()
        try:
            with transaction.atomic():
                step: WorkflowRunStep | None = first
                for _ in range(MAX_STEPS_PER_CALL):
                    if step is None:
                        break
                    step = _run_claimed(step, now)
        except Exception as exc:  # noqa: BLE001 - the dispatcher retries it
            logger.warning("workflow step %s failed inline", first.pk, exc_info=True)
            _note_failure(first.pk, exc, now)


def _note_failure(step_id: int, exc: Exception, now: datetime) -> None:
    code = exc.code if isinstance(exc, DomainError) else type(exc).__name__
    message = exc.message if isinstance(exc, DomainError) else str(exc)
    with transaction.atomic():
        step = (
            WorkflowRunStep.objects.select_for_update()
            .select_related("run")
            .filter(pk=step_id, state=StepState.WAITING)
            .first()
        )
        if step is None:
            return
        step.attempts += 1
        step.detail = {**(step.detail or {}), "error": {"code": code, "message": message[:500]}}
        permanent = isinstance(exc, DomainError) and exc.status < 500
        if permanent or step.attempts >= MAX_ATTEMPTS:
            step.state, step.decision, step.finished_at = StepState.FAILED, "error", now
            step.save()
            _finish_run(step.run, RunState.FAILED, "error", now)
            return
        step.due_at = now + timedelta(seconds=2**step.attempts)
        step.leased_until = None
        step.save()
