"""The ``digest`` step: collect every trigger for one user and digest key in a window, then
continue ONCE with the items.

The first run to reach the step opens a window (a ``workflow_digests`` row) and becomes its
leader: its step waits until the window closes. Runs arriving while the window is open add
their trigger data to the row and end (decision ``digested``, pointing at the leader's run).
When the leader's step comes due it closes the row (under the same advisory lock the
arrivals take, so no item lands in a closed window) and continues with ``digest_count``,
``digest_items`` (one line per item, at most ``max_items``; ``digest_more`` counts the rest)
in its run's variables — also as ``digest.count``, ``digest.items`` and ``digest.more``
(templates read dotted names as dict keys).

``mode: sliding`` moves the close to ``window`` after the latest arrival, never later than
``max_wait`` after the first. ``send_first: true`` (Knock's digest-on-first) lets the run
that opens the window continue at once with its own item; the next arrival becomes the
leader of the rest.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from templates.rendering import TemplateError, render_text

from ...models import WorkflowDigest, WorkflowRun, WorkflowRunStep
from .outcome import Outcome, advisory_lock
from .spec import parse_duration
from .steps import group_key


def _item_line(spec: dict[str, Any], data: dict[str, Any]) -> str:
    source = spec.get("item")
    if not source:
        return ", ".join(f"{k}: {v}" for k, v in data.items() if not isinstance(v, dict | list))
    try:
        return render_text(source, data)
    except TemplateError:
        return ", ".join(f"{k}: {v}" for k, v in data.items() if not isinstance(v, dict | list))


def _variables(spec: dict[str, Any], items: list[dict[str, Any]], count: int) -> dict[str, Any]:
    lines = [_item_line(spec, item) for item in items]
    flat = {
        "digest_count": count,
        "digest_items": "\n".join(lines),
        "digest_more": max(0, count - len(items)),
    }
    # the same values for ``{{ digest.count }}`` / ``{{ digest.items }}`` / ``{{ digest.more }}``
    return {**flat, "digest": {name.removeprefix("digest_"): value for name, value in flat.items()}}


def _close(digest: WorkflowDigest, run: WorkflowRun, spec: dict[str, Any]) -> Outcome:
    digest.is_open = False
    digest.save(update_fields=["is_open"])
    run.variables = {**(run.variables or {}), **_variables(spec, digest.items, digest.count)}
    return Outcome("next", "digest_sent", detail={"digest": digest.pk, "count": digest.count})


def digest_step(
    run: WorkflowRun, step: WorkflowRunStep, spec: dict[str, Any], now: datetime
) -> Outcome:
    group = group_key(run, spec.get("key"))
    step.group_key = group
    advisory_lock("digest", run.workflow_id, run.user_id, step.index, group)
    digest_id = step.detail.get("digest")
    if digest_id is not None:  # the leader, come due
        leading = WorkflowDigest.objects.get(pk=digest_id)
        if leading.due_at > now:  # a sliding window moved on since
            return Outcome("wait", "collecting", due_at=leading.due_at, detail=step.detail)
        return _close(leading, run, spec)

    window = parse_duration(spec["window"], "window")
    max_wait = parse_duration(spec.get("max_wait", spec["window"]), "max_wait")
    cap = int(spec.get("max_items", 50))
    item = dict(run.data or {})
    digest: WorkflowDigest | None = (
        WorkflowDigest.objects.select_for_update()
        .filter(
            workflow_id=run.workflow_id,
            user_id=run.user_id,
            step_index=step.index,
            digest_key=group,
            is_open=True,
        )
        .first()
    )
    if digest is not None and digest.leader_id is None and digest.due_at <= now:
        digest.is_open = False  # a send-first window nobody else joined: over
        digest.save(update_fields=["is_open"])
        digest = None
    if digest is None:
        first = bool(spec.get("send_first"))
        digest = WorkflowDigest.objects.create(
            workflow_id=run.workflow_id,
            user_id=run.user_id,
            step_index=step.index,
            digest_key=group,
            opened_at=now,
            due_at=now + window,
            max_due_at=now + max_wait,
            # send-first: this run goes on with its own item; the window collects the rest
            leader=None if first else step,
            items=[] if first else [item],
            count=0 if first else 1,
        )
        if first:
            run.variables = {**(run.variables or {}), **_variables(spec, [item], 1)}
            return Outcome("next", "sent_first", detail={"digest": digest.pk, "count": 1})
        return Outcome("wait", "collecting", due_at=digest.due_at, detail={"digest": digest.pk})

    if len(digest.items) < cap:
        digest.items.append(item)
    digest.count += 1
    if spec.get("mode") == "sliding":
        digest.due_at = max(digest.due_at, min(now + window, digest.max_due_at))
    if digest.leader_id is None:  # after a send-first: this run leads the rest
        digest.leader = step
        digest.save(update_fields=["items", "count", "due_at", "leader"])
        return Outcome("wait", "collecting", due_at=digest.due_at, detail={"digest": digest.pk})
    digest.save(update_fields=["items", "count", "due_at"])
    return Outcome(
        "stop",
        "digested",
        detail={"digest": digest.pk, "leader_step": digest.leader_id},
        skipped=True,
    )
