"""Beat tasks of the real-time app (thin: the work is in ``realtime.services`` and ``realtime.retention``)."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="realtime.expire_stale_connections", ignore_result=True)
def expire_stale_connections() -> int:
    """Connections that missed two heartbeats → disconnected (heartbeat_timeout)."""
    return services.connection_expire_stale()


@shared_task(name="realtime.purge_expired_events", ignore_result=True)
def purge_expired_events() -> int:
    """Events past expires_at or their retention policy → deleted."""
    return services.event_purge_expired()
