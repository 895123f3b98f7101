"""Retention of ``websocket_connections`` (driven by ``deliveries.retention``): a connection
row is deleted once it is ``disconnected`` and both its connect and disconnect are older
than the cutoff. Open connections are never touched. Events past their expiry or their
retention policy's window are purged by ``event_purge_expired`` (a beat task)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from . import conf
from .models import RealTimeEvent

_SQL = """
    DELETE FROM websocket_connections WHERE connection_id IN (
        SELECT connection_id FROM websocket_connections
        WHERE connected_at < %(cutoff)s AND connection_status = 'disconnected'
          AND COALESCE(disconnected_at, last_heartbeat, connected_at) < %(cutoff)s
        ORDER BY connected_at
        LIMIT %(limit)s
        FOR UPDATE SKIP LOCKED
    )
"""


def connections_delete_disconnected(*, cutoff: datetime, limit: int) -> int:
    """Delete up to ``limit`` old disconnected rows in one transaction; how many went."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SQL, {"cutoff": cutoff, "limit": limit})
        return cursor.rowcount


def event_purge_expired(*, now: datetime | None = None, batch_size: int = 10_000) -> int:
    """Delete events past ``expires_at`` or their retention policy's window, in batches
    so one sweep never holds long locks. Returns the number deleted."""
    now = now or timezone.now()
    days: dict[str, int] = conf.get("NP_RT_RETENTION_DAYS")
    default_days = days.get("standard", 7)
    by_policy = Q(
        retention_policy__isnull=True, generated_at__lt=now - timedelta(days=default_days)
    )
    for policy, policy_days in days.items():
        by_policy |= Q(retention_policy=policy, generated_at__lt=now - timedelta(days=policy_days))
    # unknown policies (written by hand or by an older version) keep the standard window
    by_policy |= Q(generated_at__lt=now - timedelta(days=default_days)) & ~Q(
        retention_policy__in=list(days)
    )
    condition = Q(expires_at__lt=now) | by_policy
    total = 0
    while True:
        ids = list(
            RealTimeEvent.objects.filter(condition)
            .order_by()
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return total
        deleted, _ = RealTimeEvent.objects.filter(pk__in=ids).delete()
        total += deleted
        if len(ids) < batch_size:
            return total
