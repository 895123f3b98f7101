"""Claim → send → record: one delivery (``delivery_send``) or a batch sent concurrently on
the process's sender event loop (``deliveries_send_batch``)."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from django.utils import timezone

from notifyplatform.logs import delivery_fields, log_fields
from providers import aio
from providers.services import SuccessTally
from providers.types import SendOutcome

from ...models import NotificationDelivery
from ...types import SendOutcomeSummary
from .claim import _claim, _claim_batch, _settle_unsendable
from .lease import leases_kept
from .policy import send_batch_size
from .record import _record, _record_batch
from .send import _route_groups, _route_key, _send, _send_all, build_message

logger = logging.getLogger(__package__)  # one logger for the whole send path (JSON logs)


def delivery_send(delivery_id: int, *, now: datetime | None = None) -> SendOutcomeSummary:
    """Claim, send and record one delivery. Safe to call any number of times, concurrently."""
    claimed = _claim(delivery_id, now or timezone.now())
    if isinstance(claimed, SendOutcomeSummary):
        return claimed
    token = claimed.delivery_metadata["lease"]["token"]  # type: ignore[index]  # claimed
    with log_fields(**delivery_fields(claimed)):  # on every line logged while sending it
        with leases_kept(token, [claimed.pk]):
            outcome = _send(claimed)
        return _record(claimed, outcome, timezone.now())


def deliveries_send_batch(
    delivery_ids: list[int] | None = None,
    *,
    limit: int | None = None,
    now: datetime | None = None,
) -> list[SendOutcomeSummary]:
    """Claim up to ``limit`` due pending deliveries at once (those of ``delivery_ids``, else
    the oldest due ones), send them concurrently on the process's sender event loop
    (``providers.aio``: pooled keep-alive connections, no thread per request), and record
    the outcomes in bulk as they come in.

    Same guarantees as ``delivery_send``: the claim commits a lease before any provider is
    called, a row locked or leased elsewhere is skipped, the record applies only while our
    lease holds, the idempotency key is ``delivery-<id>``. Ids that were not claimable
    (not pending, not due, locked) are left alone and not reported; expired ones are
    expired and reported, and so are those to an address suppressed since planning
    (skipped, decision ``suppressed``)."""
    now = now or timezone.now()
    limit = min(limit or send_batch_size(), send_batch_size())
    summaries: list[SendOutcomeSummary] = []
    ids = list(delivery_ids) if delivery_ids is not None else None
    if ids is not None:
        if not ids:
            return []
        summaries += _settle_unsendable(ids, now)
    claimed = _claim_batch(ids, limit, now)
    if not claimed:
        return summaries
    routes = _route_groups(claimed)
    jobs: list[tuple[NotificationDelivery, Any, list[Any] | Exception]] = []
    for delivery in claimed:
        try:
            message = build_message(delivery)
        except Exception as exc:  # noqa: BLE001 - becomes this delivery's crash outcome
            logger.exception(
                "building delivery %s crashed", delivery.pk, extra=delivery_fields(delivery)
            )
            jobs.append((delivery, None, exc))
            continue
        jobs.append((delivery, message, routes[_route_key(delivery)]))
    # one token per claim; a slow send keeps its lease while this worker lives (.lease)
    token = claimed[0].delivery_metadata["lease"]["token"]  # type: ignore[index]
    with leases_kept(token, [delivery.pk for delivery in claimed]):
        summaries += _send_and_record(jobs)
    return summaries


def _send_and_record(
    jobs: list[tuple[NotificationDelivery, Any, list[Any] | Exception]],
) -> list[SendOutcomeSummary]:
    summaries: list[SendOutcomeSummary] = []
    results: queue.SimpleQueue[tuple[NotificationDelivery, SendOutcome]] = queue.SimpleQueue()
    tally = SuccessTally()
    sending = aio.submit(_send_all(jobs, results, tally))
    # Record as sends complete, in groups: one slow provider call must not hold back the
    # record of the others (a crash would otherwise leave already-accepted messages
    # unrecorded for up to a provider timeout instead of milliseconds).
    remaining = len(jobs)
    try:
        while remaining:
            try:
                group = [results.get(timeout=1.0)]
            except queue.Empty:
                if sending.done():  # the loop died under us: nothing more will come
                    sending.result()
                    raise RuntimeError("sender loop ended with sends unreported") from None
                continue
            deadline = time.monotonic() + _RECORD_EVERY_SECONDS
            while len(group) < min(remaining, _RECORD_GROUP):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    group.append(results.get(timeout=left))
                except queue.Empty:
                    break
            remaining -= len(group)
            summaries += _record_batch(group)
    finally:
        tally.flush()
    return summaries


_RECORD_EVERY_SECONDS = 0.05


_RECORD_GROUP = 512


def deliveries_send(delivery_ids: Iterable[int]) -> list[SendOutcomeSummary]:
    """Send these deliveries through the batch path, ``NP_SEND_BATCH_SIZE`` at a time."""
    ids = list(dict.fromkeys(delivery_ids))
    size = send_batch_size()
    summaries: list[SendOutcomeSummary] = []
    for start in range(0, len(ids), size):
        summaries += deliveries_send_batch(ids[start : start + size], limit=size)
    return summaries
