"""The simple steps: ``channel``, ``delay``, ``throttle`` and ``branch``. Each handler gets the
locked run and step and returns an ``Outcome``; the engine records it."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta
from typing import Any

from deliveries.preferences import preferences_for

from ...models import WorkflowRun, WorkflowRunStep
from .outcome import Outcome, advisory_lock, engaged, step_notify
from .spec import parse_clock, parse_duration


def user_zone(user: Any) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(getattr(user, "timezone", None) or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def next_clock_time(now: datetime, hour: int, minute: int, tz: zoneinfo.ZoneInfo) -> datetime:
    """The next ``hour:minute`` wall-clock time in ``tz`` at or after ``now``."""
    local = now.astimezone(tz)
    candidate = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if candidate < local:
        candidate = (local + timedelta(days=1)).replace(
            hour=hour, minute=minute, second=0, microsecond=0
        )
    # through the wall clock again: a date across a DST change keeps its local time
    return datetime.combine(candidate.date(), candidate.timetz().replace(tzinfo=None), tzinfo=tz)


def group_key(run: WorkflowRun, key: str | None) -> str:
    """The per-user group a throttle or digest counts under: ``<field>=<value>`` or ""."""
    if not key:
        return ""
    return f"{key}={run.data.get(key, '')}"[:255]


def channel_step(
    run: WorkflowRun, step: WorkflowRunStep, spec: dict[str, Any], now: datetime
) -> Outcome:
    channels = spec.get("channels") or [spec["channel"]]
    notification_ids, delivery_ids = step_notify(run, step, spec, channels)
    return Outcome(
        "next",
        "sent",
        detail={"channels": channels},
        notification_ids=notification_ids,
        delivery_ids=delivery_ids,
    )


def delay_step(
    run: WorkflowRun, step: WorkflowRunStep, spec: dict[str, Any], now: datetime
) -> Outcome:
    until = step.detail.get("until")
    if until is None:
        if "duration" in spec:
            target = now + parse_duration(spec["duration"], "duration")
        else:
            hour, minute = parse_clock(spec["until"], "until")
            tz = (
                user_zone(run.user)
                if spec.get("timezone", "user") == "user"
                else zoneinfo.ZoneInfo("UTC")
            )
            target = next_clock_time(now, hour, minute, tz)
        if target > now:
            return Outcome("wait", "waiting", due_at=target, detail={"until": target.isoformat()})
    return Outcome("next", "waited")


def throttle_step(
    run: WorkflowRun, step: WorkflowRunStep, spec: dict[str, Any], now: datetime
) -> Outcome:
    group = group_key(run, spec.get("key"))
    advisory_lock("throttle", run.workflow_id, run.user_id, step.index, group)
    window = parse_duration(spec["window"], "window")
    used = WorkflowRunStep.objects.filter(
        run__workflow_id=run.workflow_id,
        run__user_id=run.user_id,
        step_type="throttle",
        index=step.index,
        group_key=group,
        decision="passed",
        finished_at__gt=now - window,
    ).count()
    step.group_key = group
    detail = {"limit": spec["limit"], "window_s": window.total_seconds(), "used": used}
    if used >= spec["limit"]:
        return Outcome("stop", "throttled", detail=detail, skipped=True)
    return Outcome("next", "passed", detail=detail)


_OPS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and a > b,
    "gte": lambda a, b: a is not None and a >= b,
    "lt": lambda a, b: a is not None and a < b,
    "lte": lambda a, b: a is not None and a <= b,
}


def _referenced_notifications(
    run: WorkflowRun, step: WorkflowRunStep, ref: int | None
) -> list[str]:
    earlier = WorkflowRunStep.objects.filter(run=run, index__lt=step.index).order_by("-index")
    if ref is not None:
        earlier = earlier.filter(index=ref)
    for notification_ids in earlier.values_list("notification_ids", flat=True):
        if notification_ids:
            return list(notification_ids)
    return []


def _holds(
    run: WorkflowRun, step: WorkflowRunStep, spec: dict[str, Any]
) -> tuple[bool, dict[str, Any]]:
    when = spec["when"]
    if when in ("unread", "unclicked", "unacked"):
        ids = _referenced_notifications(run, step, spec.get("step"))
        how = engaged(run.user_id, ids)
        if when == "unread":
            holds = how is None  # a click or an ack reads it too
        elif when == "unclicked":
            holds = how != "clicked"
        else:
            holds = how != "acked"
        return holds, {"notifications": ids, "engaged": how}
    if when == "preference":
        channel = spec["channel"]
        pref = preferences_for(run.user, spec.get("type") or "*", [channel]).get(channel)
        return pref is None or bool(pref.is_enabled), {"channel": channel}
    field_name, op = spec["field"], spec.get("op", "eq")
    present = field_name in (run.data or {})
    value = (run.data or {}).get(field_name)
    if op == "exists":
        return present, {"field": field_name}
    if op == "missing":
        return not present, {"field": field_name}
    try:
        return bool(_OPS[op](value, spec.get("value"))), {"field": field_name, "value": value}
    except TypeError:  # a number compared with a text: the condition does not hold
        return False, {"field": field_name, "value": value}


def branch_step(
    run: WorkflowRun, step: WorkflowRunStep, spec: dict[str, Any], now: datetime
) -> Outcome:
    holds, detail = _holds(run, step, spec)
    if holds:
        return Outcome("next", "condition_met", detail=detail)
    return Outcome("stop", "branch_not_taken", detail=detail, skipped=True)
