"""Enqueueing (the database is the outbox: a lost message is re-enqueued by the sweeper)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from notifyplatform.celery import app

from .policy import _setting

logger = logging.getLogger(__package__)  # one logger for the whole send path (JSON logs)

_broker_down_until = 0.0

# Sent by name (``send_task`` applies the same CELERY_TASK_ROUTES as ``.delay()``), so that
# deliveries.tasks, which wraps these services, is imported by nothing here: tasks → services
# stays one-way.
SEND_DELIVERY_TASK = "deliveries.send_delivery"
SEND_DELIVERIES_TASK = "deliveries.send_deliveries"


def enqueue_deliveries(delivery_ids: Iterable[int], *, chunk: int | None = None) -> int:
    """Publish send tasks; never raises. Returns how many were published.

    When the broker is down the rows simply stay ``pending`` for the sweeper, and for
    ``NP_BROKER_BACKOFF_SECONDS`` we do not even try, so API calls do not each pay the
    connection timeout while Redis is away.
    """
    global _broker_down_until
    ids = list(delivery_ids)
    if not ids:
        return 0
    if time.monotonic() < _broker_down_until:
        logger.warning("broker marked down; %d deliveries left for the sweeper", len(ids))
        return 0
    chunk = chunk or int(_setting("NP_DELIVERY_ENQUEUE_CHUNK", 50))
    published = 0
    try:
        if len(ids) == 1:
            app.send_task(SEND_DELIVERY_TASK, args=(ids[0],))
            published = 1
        else:
            for start in range(0, len(ids), chunk):
                part = ids[start : start + chunk]
                app.send_task(SEND_DELIVERIES_TASK, args=(part,))
                published += len(part)
    except Exception:  # noqa: BLE001 - any broker failure: the outbox keeps the rows
        _broker_down_until = time.monotonic() + _setting("NP_BROKER_BACKOFF_SECONDS", 5)
        logger.exception(
            "could not enqueue %d deliveries; left pending for the sweeper", len(ids) - published
        )
    return published
