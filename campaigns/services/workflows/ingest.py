"""Bulk ingestion of a trigger whose workflow starts with a ``digest`` step.

``workflow_trigger`` writes every run and its first step with one multi-row INSERT each;
for a first step ``digest`` that is due now, this module then joins all of those runs to
their digest windows in a fixed number of statements, whatever the number of recipients:

1. one ``SELECT pg_advisory_xact_lock`` over the sorted (workflow, user, step, key) locks —
   the same locks ``digest.digest_step`` takes, so a leader closing a window and a bulk join
   never interleave;
2. one ``INSERT … ON CONFLICT (workflow, user, step, key) WHERE is_open DO UPDATE`` that
   opens a window per user (this run's step leads it) or appends to the open one (the item
   up to ``max_items``, ``count`` + 1, a sliding close moved on, never past ``max_wait``);
3. one ``UPDATE`` of the steps from ``unnest`` arrays: a leader waits (``collecting``, due
   at the window's close), an arrival is ``digested`` into the leader's run;
4. one ``UPDATE`` ending the digested runs.

The outcome of every step is exactly what ``digest_step`` would have recorded run by run
(same decisions, details, group keys, due times). ``send_first`` windows keep the step-by-
step path: their first arrival continues at once with its own item.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.db import connection

from ...models import RunState, StepState, WorkflowRun, WorkflowRunStep
from .spec import parse_duration
from .steps import group_key

_LOCKS_SQL = """
    SELECT count(pg_advisory_xact_lock(h)) FROM (
        SELECT hashtextextended(k, 0) AS h FROM unnest(%(keys)s::text[]) AS k ORDER BY k
    ) AS ordered
"""

_UPSERT_SQL = """
    INSERT INTO workflow_digests AS d (
        workflow_id, user_id, step_index, digest_key, is_open, leader_id, items, count,
        opened_at, due_at, max_due_at
    )
    SELECT %(workflow)s, u.user_id, %(index)s, %(key)s, true, u.step_id,
           jsonb_build_array(%(item)s::jsonb), 1, %(now)s, %(due)s, %(max_due)s
    FROM unnest(%(users)s::uuid[], %(steps)s::bigint[]) AS u(user_id, step_id)
    ON CONFLICT (workflow_id, user_id, step_index, digest_key) WHERE is_open
    DO UPDATE SET
        items = CASE WHEN jsonb_array_length(d.items) < %(cap)s
                     THEN d.items || EXCLUDED.items ELSE d.items END,
        count = d.count + 1,
        due_at = CASE WHEN %(sliding)s
                      THEN GREATEST(d.due_at, LEAST(EXCLUDED.due_at, d.max_due_at))
                      ELSE d.due_at END,
        leader_id = COALESCE(d.leader_id, EXCLUDED.leader_id)
    RETURNING d.id, d.user_id, d.leader_id, d.due_at
"""

_STEPS_SQL = """
    UPDATE workflow_run_steps AS s SET
        decision = v.decision, state = v.state, detail = v.detail::jsonb,
        due_at = COALESCE(v.due_at, s.due_at), finished_at = v.finished_at,
        started_at = %(now)s, group_key = %(group)s, leased_until = NULL
    FROM unnest(%(ids)s::bigint[], %(decisions)s::text[], %(states)s::text[],
                %(details)s::text[], %(dues)s::timestamptz[], %(finished)s::timestamptz[])
         AS v(id, decision, state, detail, due_at, finished_at)
    WHERE s.id = v.id
"""


def bulk_digest_applies(spec: dict[str, Any]) -> bool:
    return spec.get("type") == "digest" and not spec.get("send_first")


def digest_join_bulk(
    runs: list[WorkflowRun], steps: list[WorkflowRunStep], spec: dict[str, Any], now: datetime
) -> None:
    """Join these runs (one trigger's: same workflow, same data, distinct users; their first
    steps ``steps`` are due now) to their digest windows; see the module doc."""
    if not runs:
        return
    workflow_id, index = runs[0].workflow_id, steps[0].index
    group = group_key(runs[0], spec.get("key"))
    window = parse_duration(spec["window"], "window")
    max_wait = parse_duration(spec.get("max_wait", spec["window"]), "max_wait")
    step_of_user = {str(run.user_id): step for run, step in zip(runs, steps, strict=True)}
    run_of_step = {step.pk: run for run, step in zip(runs, steps, strict=True)}
    users = sorted(step_of_user)
    with connection.cursor() as cursor:
        cursor.execute(
            _LOCKS_SQL,
            {"keys": [f"np-wf:digest:{workflow_id}:{u}:{index}:{group}" for u in users]},
        )
        cursor.execute(
            _UPSERT_SQL,
            {
                "workflow": workflow_id,
                "index": index,
                "key": group,
                "item": json.dumps(dict(runs[0].data or {})),
                "now": now,
                "due": now + window,
                "max_due": now + max_wait,
                "users": users,
                "steps": [step_of_user[u].pk for u in users],
                "cap": int(spec.get("max_items", 50)),
                "sliding": spec.get("mode") == "sliding",
            },
        )
        joined = cursor.fetchall()
        ids: list[int] = []
        decisions: list[str] = []
        states: list[str] = []
        details: list[str] = []
        dues: list[datetime | None] = []
        finished: list[datetime | None] = []
        digested: list[int] = []
        for digest_id, user_id, leader_id, due_at in joined:
            step = step_of_user[str(user_id)]
            ids.append(step.pk)
            if leader_id == step.pk:  # opened the window, or leads it after a send-first
                decisions.append("collecting")
                states.append(StepState.WAITING)
                details.append(json.dumps({"digest": digest_id}))
                dues.append(due_at)
                finished.append(None)
            else:
                decisions.append("digested")
                states.append(StepState.SKIPPED)
                details.append(json.dumps({"digest": digest_id, "leader_step": leader_id}))
                dues.append(None)
                finished.append(now)
                run = run_of_step[step.pk]
                run.state, run.decision, run.finished_at = RunState.COMPLETED, "digested", now
                digested.append(run.pk)
        cursor.execute(
            _STEPS_SQL,
            {
                "now": now,
                "group": group,
                "ids": ids,
                "decisions": decisions,
                "states": states,
                "details": details,
                "dues": dues,
                "finished": finished,
            },
        )
    if digested:
        WorkflowRun.objects.filter(pk__in=digested).update(
            state=RunState.COMPLETED, decision="digested", finished_at=now, updated_at=now
        )
