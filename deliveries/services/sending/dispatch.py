"""Dispatcher: due rows to the send queue, at the sending rate."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from notifyplatform.broker import queue_depths

from ...models import DeliveryStatus, NotificationDelivery
from .enqueue import enqueue_deliveries
from .policy import _setting


def send_queue_backlog() -> int | None:
    """Deliveries waiting in the broker's send queue (an upper bound: messages × the ids a
    message carries), or None when it cannot be read (the broker does not answer)."""
    queue_name = str(getattr(settings, "NP_QUEUE_SEND", "send"))
    depths = queue_depths([queue_name])
    if depths is None:
        return None
    messages = depths[queue_name]
    return messages * int(_setting("NP_DELIVERY_ENQUEUE_CHUNK", 50))


_DUE_SQL = """
    WITH picked AS (
        SELECT id FROM notification_deliveries
        WHERE status = 'pending' AND scheduled_at <= %(now)s
          AND (updated_at <= %(settled)s OR updated_at < scheduled_at - interval '1 second')
        ORDER BY scheduled_at, id
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
    UPDATE notification_deliveries d SET updated_at = %(now)s
    FROM picked WHERE d.id = picked.id
    RETURNING d.id
"""


def deliveries_dispatch_due(
    *, now: datetime | None = None, limit: int | None = None
) -> dict[str, int]:
    """Move due pending deliveries to the send queue; run by beat every
    ``NP_DISPATCH_INTERVAL_SECONDS`` (and by the sweeper).

    Due means ``scheduled_at`` has come and nobody is about to enqueue the row: either it was
    scheduled ahead when last written (a retry's backoff, a scheduled send, quiet hours, a
    deferred frequency cap), or it has not been touched for ``NP_SWEEP_GRACE_SECONDS`` (its
    own on-commit enqueue was lost with the broker, or its message with a worker). Picked
    rows are touched in the same statement, so the next run does not pick them again while
    they wait in the queue. A run takes up to ``NP_DISPATCH_BATCH_SIZE`` rows and only while
    the send queue holds fewer than ``NP_DISPATCH_MAX_QUEUED``: the queue stays full enough
    for the workers to send at their rate, and a backlog stays in the database (the outbox),
    not in Redis. Returns ``{"due": picked, "enqueued": published, "backlog": queued}``.
    """
    now = now or timezone.now()
    limit = limit or int(_setting("NP_DISPATCH_BATCH_SIZE", 10_000))
    backlog = send_queue_backlog()
    if backlog is not None:
        limit = min(limit, int(_setting("NP_DISPATCH_MAX_QUEUED", 20_000)) - backlog)
        if limit <= 0:
            return {"due": 0, "enqueued": 0, "backlog": backlog}
    grace = timedelta(seconds=_setting("NP_SWEEP_GRACE_SECONDS", 30))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_DUE_SQL, {"now": now, "settled": now - grace, "limit": limit})
        due_ids = sorted(row[0] for row in cursor.fetchall())
    enqueued = enqueue_deliveries(due_ids) if due_ids else 0
    if enqueued < len(due_ids):
        # not published (broker down): make them due again for the next run
        NotificationDelivery.objects.filter(
            pk__in=due_ids[enqueued:], status=DeliveryStatus.PENDING
        ).update(updated_at=now - grace)
    return {"due": len(due_ids), "enqueued": enqueued, "backlog": backlog or 0}
