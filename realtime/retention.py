"""Retention of ``websocket_connections`` (driven by ``deliveries.retention``): a connection
row is deleted once it is ``disconnected`` and both its connect and disconnect are older
than the cutoff. Open connections are never touched."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction

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
