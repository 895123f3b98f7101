"""Retention: old, finished rows are deleted in batches on beat, so the tables that grow
with traffic stay bounded by configuration.

Per table, ``NP_RETENTION_<TABLE>_DAYS`` (0 keeps everything):

- ``notifications`` (default 90 days): a notification created before the cutoff, not
  ``pending``, none of whose deliveries is still ``pending`` or ``sending`` (so nothing
  scheduled, held by quiet hours or retrying), is deleted with its deliveries.
- ``notification_deliveries`` (default 90 days): a finished delivery (sent, delivered,
  failed, bounced, complained, expired, skipped, cancelled) created before the cutoff whose
  notification (if any) owes no other delivery, e.g. an invitation's delivery.
- ``websocket_connections`` (default 30 days): ``disconnected`` rows that connected and
  disconnected before the cutoff (``realtime.retention``).
- ``real_time_events`` already expire by their retention class
  (``NP_RT_RETENTION_*_DAYS``, ``realtime.purge_expired_events``).

Each batch is one short transaction (``NP_RETENTION_BATCH_SIZE`` rows, picked with
``SKIP LOCKED`` so a worker recording a send is never waited for); a run stops at
``NP_RETENTION_MAX_SECONDS`` per table and the next run goes on. Every table's pass is a
``RetentionRun`` row, which the admin lists.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from realtime.retention import connections_delete_disconnected

from .models import RetentionRun

logger = logging.getLogger(__name__)

FINISHED_DELIVERY = (
    "sent",
    "delivered",
    "failed",
    "bounced",
    "complained",
    "expired",
    "skipped",
    "cancelled",
)

_NOTIFICATIONS_SQL = """
    WITH doomed AS (
        SELECT n.notification_id FROM notifications n
        WHERE n.created_at < %(cutoff)s AND n.status <> 'pending'
          AND NOT EXISTS (
              SELECT 1 FROM notification_deliveries d
              WHERE d.notification_id = n.notification_id
                AND d.status IN ('pending', 'sending')
          )
        ORDER BY n.created_at
        LIMIT %(limit)s
        FOR UPDATE OF n SKIP LOCKED
    ), gone AS (
        DELETE FROM notification_deliveries d USING doomed
        WHERE d.notification_id = doomed.notification_id
        RETURNING d.id
    )
    DELETE FROM notifications n USING doomed
    WHERE n.notification_id = doomed.notification_id
"""

_DELIVERIES_SQL = """
    DELETE FROM notification_deliveries WHERE id IN (
        SELECT d.id FROM notification_deliveries d
        WHERE d.created_at < %(cutoff)s AND d.status = ANY(%(finished)s)
          AND NOT EXISTS (
              SELECT 1 FROM notification_deliveries o
              WHERE o.notification_id = d.notification_id AND o.status IN ('pending', 'sending')
          )
        ORDER BY d.created_at
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
"""


def _delete_notifications(cutoff: datetime, limit: int) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_NOTIFICATIONS_SQL, {"cutoff": cutoff, "limit": limit})
        return cursor.rowcount


def _delete_deliveries(cutoff: datetime, limit: int) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _DELIVERIES_SQL,
            {"cutoff": cutoff, "limit": limit, "finished": list(FINISHED_DELIVERY)},
        )
        return cursor.rowcount


def _delete_connections(cutoff: datetime, limit: int) -> int:
    return connections_delete_disconnected(cutoff=cutoff, limit=limit)


# table -> (setting, default days, one batch)
TABLES: dict[str, tuple[str, int, Callable[[datetime, int], int]]] = {
    "notifications": ("NP_RETENTION_NOTIFICATIONS_DAYS", 90, _delete_notifications),
    "notification_deliveries": ("NP_RETENTION_DELIVERIES_DAYS", 90, _delete_deliveries),
    "websocket_connections": ("NP_RETENTION_CONNECTIONS_DAYS", 30, _delete_connections),
}


def retention_days() -> dict[str, int]:
    """Days kept per table (0: kept forever), from settings."""
    return {
        table: int(getattr(settings, name, default)) for table, (name, default, _) in TABLES.items()
    }


def retention_apply(*, now: datetime | None = None) -> list[RetentionRun]:
    """One retention pass over every table; a ``RetentionRun`` per table."""
    now = now or timezone.now()
    limit = max(1, int(getattr(settings, "NP_RETENTION_BATCH_SIZE", 5000)))
    budget = float(getattr(settings, "NP_RETENTION_MAX_SECONDS", 60))
    runs = []
    for table, days in retention_days().items():
        runs.append(_apply_one(table, days, now, limit, budget))
    return runs


def _apply_one(table: str, days: int, now: datetime, limit: int, budget: float) -> RetentionRun:
    started_at = timezone.now()
    run = RetentionRun(table_name=table, days=days, started_at=started_at)
    if days > 0:
        run.cutoff = now - timedelta(days=days)
        delete_batch = TABLES[table][2]
        deadline = time.monotonic() + budget
        try:
            while True:
                deleted = delete_batch(run.cutoff, limit)
                run.deleted += deleted
                run.batches += 1
                if deleted < limit:
                    break
                if time.monotonic() >= deadline:
                    run.finished = False  # the next run goes on
                    break
        except Exception as exc:  # noqa: BLE001 - recorded on the run; other tables go on
            logger.exception("retention of %s failed", table)
            run.error = f"{type(exc).__name__}: {exc}"[:2000]
            run.finished = False
    run.finished_at = timezone.now()
    run.save()
    if run.deleted:
        logger.info(
            "retention: %d rows of %s older than %s deleted", run.deleted, table, run.cutoff
        )
    return run
