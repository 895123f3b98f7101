"""The workflow dispatcher: due step rows to the ``batch`` queue, run by beat every
``NP_DISPATCH_INTERVAL_SECONDS`` beside the deliveries' dispatcher (no Celery countdowns:
the due time lives in ``workflow_run_steps.due_at``).

Due rows are picked with ``FOR UPDATE SKIP LOCKED`` and leased for
``NP_WORKFLOW_LEASE_SECONDS`` in the same statement, so the next run does not hand them out
again while their message waits in the queue. A message lost with a worker or the broker
costs one lease: then the rows are due again. Running a step twice is harmless: the run
claims it with a row lock and checks it is still waiting (``engine.step_execute``).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from notifyplatform.celery import app

from ...models import WorkflowRunStep

RUN_STEPS_TASK = "campaigns.run_workflow_steps"
CHUNK = 50  # steps per message: the workers' threads share a burst

_DUE_SQL = """
    WITH picked AS (
        SELECT id FROM workflow_run_steps
        WHERE state = 'waiting' AND due_at <= %(now)s
          AND (leased_until IS NULL OR leased_until <= %(now)s)
        ORDER BY due_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    UPDATE workflow_run_steps s SET leased_until = %(lease)s
    FROM picked WHERE s.id = picked.id
    RETURNING s.id
"""


def steps_enqueue(step_ids: list[int]) -> int:
    """Hand steps to the batch queue in chunks; how many were published."""
    published = 0
    for start in range(0, len(step_ids), CHUNK):
        chunk = step_ids[start : start + CHUNK]
        try:
            app.send_task(RUN_STEPS_TASK, args=(chunk,))
        except Exception:  # noqa: BLE001 - the broker is away: the lease makes them due again
            break
        published += len(chunk)
    return published


def workflow_steps_dispatch_due(
    *, now: datetime | None = None, limit: int | None = None
) -> dict[str, int]:
    """Lease due waiting steps and enqueue them; ``{"due": n, "enqueued": m}``."""
    now = now or timezone.now()
    limit = limit or int(getattr(settings, "NP_WORKFLOW_DISPATCH_BATCH_SIZE", 5000))
    lease = timedelta(seconds=float(getattr(settings, "NP_WORKFLOW_LEASE_SECONDS", 30)))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_DUE_SQL, {"now": now, "limit": limit, "lease": now + lease})
        due_ids = sorted(row[0] for row in cursor.fetchall())
    enqueued = steps_enqueue(due_ids) if due_ids else 0
    if enqueued < len(due_ids):
        WorkflowRunStep.objects.filter(pk__in=due_ids[enqueued:]).update(leased_until=None)
    return {"due": len(due_ids), "enqueued": enqueued}
