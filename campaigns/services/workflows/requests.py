"""API ``Idempotency-Key`` for triggers, scoped to the caller — the same rules as
``POST /notifications/`` (``deliveries.services.idempotency``): the first request with a key
is remembered with a fingerprint of its body for ``NP_IDEMPOTENCY_KEY_TTL_HOURS``; a repeat
with the same body returns the first request's runs (nothing more starts); the same key with
another body is 422 ``IDEMPOTENCY_KEY_REUSED``. Concurrent repeats are serialised by an
advisory lock on (scope, key), backed by the unique constraint."""

from __future__ import annotations

from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from deliveries.services.idempotency import window

from ...models import WorkflowRun, WorkflowTriggerRequest
from .errors import IDEMPOTENCY_KEY_REUSED, INVALID_TRIGGER, WorkflowError
from .trigger import TriggerResult, workflow_trigger


def workflow_trigger_idempotent(
    key: str, *, scope: str, idempotency_key: str, fingerprint: str, **kwargs: Any
) -> TriggerResult:
    if not idempotency_key or len(idempotency_key) > 255:
        raise WorkflowError(INVALID_TRIGGER, "must be 1 to 255 characters", "idempotency_key")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                [f"np-wf-idem:{scope}:{idempotency_key}"],
            )
        now = timezone.now()
        row = WorkflowTriggerRequest.objects.filter(scope=scope, key=idempotency_key).first()
        if row is not None and row.created_at >= now - window():
            if row.fingerprint != fingerprint:
                raise WorkflowError(
                    IDEMPOTENCY_KEY_REUSED,
                    "this Idempotency-Key was already used with a different request",
                    "idempotency_key",
                )
            runs = list(WorkflowRun.objects.filter(pk__in=row.run_ids).order_by("pk"))
            return TriggerResult(runs=runs, created=False)
        if row is not None:
            row.delete()  # expired: the key is free again
        result = workflow_trigger(key, **kwargs)
        WorkflowTriggerRequest.objects.create(
            scope=scope,
            key=idempotency_key,
            fingerprint=fingerprint,
            run_ids=[run.pk for run in result.runs],
            created_at=now,
        )
        WorkflowTriggerRequest.objects.filter(created_at__lt=now - window()).delete()
        return result
