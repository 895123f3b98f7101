"""Queue depths read from the Celery broker, whichever it is (Redis lists, or RabbitMQ
queues through a passive declare that reports their message count)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings

from notifyplatform.conf.stores import broker_kind

logger = logging.getLogger(__name__)


def queue_depths(queues: Iterable[str]) -> dict[str, int] | None:
    """Messages waiting in each queue, or None when the broker does not answer."""
    url = str(getattr(settings, "CELERY_BROKER_URL", "") or settings.REDIS_URL)
    names = list(queues)
    try:
        if broker_kind(url) == "amqp":
            return _amqp_depths(names)
        return _redis_depths(url, names)
    except Exception as exc:  # noqa: BLE001 - a depth is advice: no answer is None
        logger.debug("queue depth not read: %r", exc)
        return None


def _redis_depths(url: str, names: list[str]) -> dict[str, int]:
    from notifyplatform.redis_pool import sentinel_client, sync_client

    if broker_kind(url) == "sentinel":
        options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
        client = sentinel_client(url, str(options.get("master_name", "")), timeout=1)
    else:
        client = sync_client(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return {name: int(client.llen(name)) for name in names}
    finally:
        client.close()


def _amqp_depths(names: list[str]) -> dict[str, int]:
    from amqp.exceptions import NotFound

    from notifyplatform.celery import app

    depths: dict[str, int] = {}
    with app.connection_for_read() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
        for name in names:
            channel = conn.channel()  # a failed passive declare closes its channel
            try:
                depths[name] = int(channel.queue_declare(queue=name, passive=True).message_count)
            except NotFound:
                depths[name] = 0  # not declared yet: nothing waits in it
            finally:
                channel.close()
    return depths
