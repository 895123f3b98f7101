"""Sending one delivery, crash-safe and at most once per claim; retries; the sweeper.

The send is split in three steps so no database transaction is open during a network call
and a crash at any point leaves a state the sweeper can repair:

1. **Claim** (short transaction): ``SELECT … FOR UPDATE SKIP LOCKED`` the row; only a
   ``pending`` row that is due is taken; past ``expires_at`` it becomes ``expired``. The row
   becomes ``sending`` with a *lease* (``delivery_metadata.lease = {token, until, worker}``)
   and that is committed **before** the provider is called. A second task for the same
   delivery (a duplicate message, a sweeper re-enqueue, Celery's redelivery after a worker
   died) finds it locked or not pending and does nothing.
2. **Send** (no transaction): route (``providers.routing.candidates``) and
   ``providers.services.send_with_failover`` with the idempotency key ``delivery-<id>``.
3. **Record** (short transaction): a conditional UPDATE that only applies while *our* lease
   holds, then the notification's status is recomputed under its row lock.

If the worker dies between 1 and 3 the row stays ``sending`` until the lease runs out
(``NP_DELIVERY_LEASE_SECONDS``, longer than any provider timeout × candidates); the sweeper
then puts it back to ``pending`` (counting an attempt, so a message that crashes workers ends
``failed`` instead of looping) and it is sent again with the **same** idempotency key.
Trade-off, stated plainly: a crash *after* the provider accepted the message but *before*
step 3 committed means the outcome is unknown; we choose at-least-once for that window (a
few milliseconds) over losing the message. Providers that honour idempotency keys
(HTTP APIs with ``Idempotency-Key``, webhook receivers deduplicating on ``webhook-id``)
turn the re-send into a no-op; plain SMTP cannot, and the SMTP adapter puts the delivery id
in a header so a duplicate is at least recognisable downstream.

Retryable failures are rescheduled in the database (``scheduled_at`` = now + exponential
backoff with full jitter, ``NP_DELIVERY_RETRY_BASE_SECONDS``/``_CAP_SECONDS``) up to
``max_retries``; the dispatcher (beat, every second) enqueues them when due (no long Celery
countdowns).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import queue
import random
import socket
import time
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from notifyplatform.logs import delivery_fields, log_fields

from ..models import DeliveryStatus, Notification, NotificationDelivery
from ..types import SendOutcomeSummary
from .status import USER_STATUSES, notification_status_from

logger = logging.getLogger(__name__)

LEASE_EXPIRED = "LEASE_EXPIRED"
SEND_CRASHED = "UNKNOWN"
_broker_down_until = 0.0


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def lease_seconds() -> float:
    return _setting("NP_DELIVERY_LEASE_SECONDS", 120)


def retry_delay(retry_count: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base · 2^n)), never less than
    what the provider asked for (``Retry-After``)."""
    base = _setting("NP_DELIVERY_RETRY_BASE_SECONDS", 30)
    cap = _setting("NP_DELIVERY_RETRY_CAP_SECONDS", 3600)
    delay = random.uniform(0, min(cap, base * (2**retry_count)))
    return max(delay, retry_after or 0.0)


# --------------------------------------------------------------------------------------------
# Enqueueing (the database is the outbox: a lost message is re-enqueued by the sweeper)
# --------------------------------------------------------------------------------------------


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
    from ..tasks import send_deliveries, send_delivery

    chunk = chunk or int(_setting("NP_DELIVERY_ENQUEUE_CHUNK", 50))
    published = 0
    try:
        if len(ids) == 1:
            send_delivery.delay(ids[0])
            published = 1
        else:
            for start in range(0, len(ids), chunk):
                part = ids[start : start + chunk]
                send_deliveries.delay(part)
                published += len(part)
    except Exception:  # noqa: BLE001 - any broker failure: the outbox keeps the rows
        _broker_down_until = time.monotonic() + _setting("NP_BROKER_BACKOFF_SECONDS", 5)
        logger.exception(
            "could not enqueue %d deliveries; left pending for the sweeper", len(ids) - published
        )
    return published


# --------------------------------------------------------------------------------------------
# Claim → send → record
# --------------------------------------------------------------------------------------------


def _without(meta: dict[str, Any] | None, *keys: str) -> dict[str, Any]:
    return {k: v for k, v in (meta or {}).items() if k not in keys}


def _claim(delivery_id: int, now: datetime) -> NotificationDelivery | SendOutcomeSummary:
    with transaction.atomic():
        delivery = (
            NotificationDelivery.objects.select_for_update(skip_locked=True)
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return SendOutcomeSummary(delivery_id, "skipped_locked")
        if delivery.status != DeliveryStatus.PENDING:
            return SendOutcomeSummary(delivery_id, "not_pending", delivery.status)
        if delivery.scheduled_at is not None and delivery.scheduled_at > now:
            return SendOutcomeSummary(delivery_id, "not_due", delivery.scheduled_at.isoformat())
        if delivery.expires_at is not None and delivery.expires_at <= now:
            _expire(delivery, now)
            return SendOutcomeSummary(delivery_id, "expired")
        lease = {
            "token": uuid.uuid4().hex,
            "until": (now + timedelta(seconds=lease_seconds())).timestamp(),
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "attempt": delivery.retry_count + 1,
        }
        delivery.status = DeliveryStatus.SENDING
        delivery.delivery_metadata = {
            **_without(delivery.delivery_metadata, "lease"),
            "lease": lease,
        }
        delivery.save(update_fields=["status", "delivery_metadata", "updated_at"])
        return delivery


def _expire(delivery: NotificationDelivery, now: datetime) -> None:
    """Mark a (locked) delivery expired and record why."""
    delivery.status = DeliveryStatus.EXPIRED
    delivery.delivery_metadata = {
        **_without(delivery.delivery_metadata, "lease"),
        "decision": {
            "rule": "expired",
            "expires_at": delivery.expires_at.isoformat() if delivery.expires_at else None,
            "at": now.isoformat(),
        },
    }
    delivery.error_code = "EXPIRED"
    delivery.error_message = "expired before it could be sent"
    delivery.save(
        update_fields=["status", "delivery_metadata", "error_code", "error_message", "updated_at"]
    )
    if delivery.notification_id:
        _refresh_notification(delivery.notification_id)


def build_message(delivery: NotificationDelivery) -> Any:
    from providers.types import OutboundMessage

    meta = delivery.delivery_metadata or {}
    rendered = meta.get("message") or {}
    notification = delivery.notification if delivery.notification_id else None
    data: dict[str, Any] = {
        "event_type": meta.get("event_type"),
        "category": meta.get("category"),
        "priority": meta.get("priority"),
        "notification_id": str(delivery.notification_id) if delivery.notification_id else None,
        "invitation_id": delivery.invitation_id,
        "action_url": meta.get("action_url"),
        "context": (notification.template_data if notification else None) or {},
    }
    if meta.get("data"):
        data["metadata"] = meta["data"]
    if meta.get("subscription"):
        data["subscription"] = meta["subscription"]
    return OutboundMessage(
        delivery_id=delivery.pk,
        channel=delivery.delivery_type,
        recipient=delivery.recipient,
        recipient_type=delivery.recipient_type,
        subject=rendered.get("subject"),
        text=rendered.get("text") or "",
        html=rendered.get("html"),
        data=data,
        idempotency_key=f"delivery-{delivery.pk}",
        user_id=str(notification.user_id) if notification else None,
        metadata={
            "event_type": meta.get("event_type"),
            "priority": meta.get("priority"),
            "locale": meta.get("locale"),
        },
    )


def _send(delivery: NotificationDelivery, routed: list[Any] | None = None) -> Any:
    """Route (unless ``routed`` gives the candidates already) and send; returns a
    providers.types.SendOutcome (never raises)."""
    from providers import errors as perrors
    from providers.errors import ProviderError
    from providers.routing import candidates
    from providers.services import send_with_failover
    from providers.types import SendOutcome

    meta = delivery.delivery_metadata or {}
    try:
        providers = routed
        if providers is None:
            providers = candidates(
                channel=delivery.delivery_type,
                region=delivery.geographic_region,
                preferred=meta.get("preferred_providers") or (),
                blocked=meta.get("blocked_providers") or (),
            )
        if not providers:
            error = ProviderError(
                f"no enabled, healthy provider for channel '{delivery.delivery_type}'",
                error_code=perrors.NO_PROVIDER,
                retryable=True,
            )
            return SendOutcome(result=None, provider=None, attempts=[], error=error)
        return send_with_failover(build_message(delivery), providers)
    except Exception as exc:  # noqa: BLE001 - a bug or outage must not strand the row in sending
        logger.exception("sending delivery %s crashed", delivery.pk)
        error = ProviderError(
            f"send crashed: {type(exc).__name__}: {exc}", error_code=SEND_CRASHED, retryable=True
        )
        return SendOutcome(result=None, provider=None, attempts=[], error=error)


def _ours(delivery_id: int, token: str) -> Q:
    """Our lease still holds — or it ran out and the sweeper re-queued the row, but nobody
    claimed it again yet (then our result is still the truth and must be recorded)."""
    return Q(pk=delivery_id) & (
        Q(status=DeliveryStatus.SENDING, delivery_metadata__lease__token=token)
        | Q(status=DeliveryStatus.PENDING, delivery_metadata__lease_expired__token=token)
    )


def _outcome_fields(
    delivery: NotificationDelivery, outcome: Any, now: datetime
) -> tuple[dict[str, Any], SendOutcomeSummary]:
    """The column values a send outcome writes to its (claimed) delivery, and its summary.
    Shared by the single and the batch path so both record exactly the same thing."""
    meta = _without(delivery.delivery_metadata, "lease", "lease_expired")
    attempts = [a.to_dict() for a in outcome.attempts]
    fields: dict[str, Any] = {"updated_at": now}
    provider = outcome.provider
    if provider is not None:
        fields.update(
            provider_name=provider.provider_name,
            provider_type=provider.provider_type,
            provider_priority=provider.priority,
        )
    if outcome.result is not None:
        result = outcome.result
        cost = result.cost if result.cost is not None else provider.cost_per_message
        fields.update(
            status=DeliveryStatus.SENT,
            provider_message_id=(result.provider_message_id or "")[:255] or None,
            provider_response={"response": result.response, "attempts": attempts},
            cost_per_message=Decimal(cost) if cost is not None else None,
            sent_at=now,
            error_code=None,
            error_message=None,
            delivery_metadata=meta,
        )
        summary = SendOutcomeSummary(delivery.pk, "sent", provider.provider_name)
    else:
        error = outcome.error
        fields.update(
            error_code=(error.error_code or "UNKNOWN")[:50],
            error_message=error.message,
            provider_response={"error": error.to_dict(), "attempts": attempts},
        )
        deferred_to = _spend_cap_deferral(outcome, now)
        if deferred_to is not None:
            meta["decision"] = {
                "rule": "spend_cap",
                "providers": [a.provider_name for a in outcome.attempts],
                "next_attempt_at": deferred_to.isoformat(),
            }
            # deferred, not retried: the retry budget is for failures, and a cap is none
            fields.update(
                status=DeliveryStatus.PENDING, scheduled_at=deferred_to, delivery_metadata=meta
            )
            summary = SendOutcomeSummary(delivery.pk, "deferred", error.error_code)
        elif error.retryable and delivery.retry_count < delivery.max_retries:
            delay = retry_delay(delivery.retry_count, error.retry_after)
            next_at = now + timedelta(seconds=delay)
            meta["decision"] = {
                "rule": "retry",
                "attempt": delivery.retry_count + 1,
                "error_code": error.error_code,
                "next_attempt_at": next_at.isoformat(),
            }
            fields.update(
                status=DeliveryStatus.PENDING,
                retry_count=delivery.retry_count + 1,
                scheduled_at=next_at,
                delivery_metadata=meta,
            )
            summary = SendOutcomeSummary(delivery.pk, "retry", error.error_code)
        else:
            if error.retryable:
                meta["decision"] = {"rule": "max_retries", "max_retries": delivery.max_retries}
            fields.update(status=DeliveryStatus.FAILED, failed_at=now, delivery_metadata=meta)
            summary = SendOutcomeSummary(delivery.pk, "failed", error.error_code)
    return fields, summary


def _spend_cap_deferral(outcome: Any, now: datetime) -> datetime | None:
    """When every provider tried refused the message for its daily spend cap
    (``providers.spendcap``): when to try again — the cap's next window, or sooner
    (``NP_SPEND_CAP_RECHECK_SECONDS``) so a raised cap takes effect. Else None."""
    from providers import spendcap
    from providers.errors import SPEND_CAP

    attempts = outcome.attempts
    if not attempts or any(attempt.error_code != SPEND_CAP for attempt in attempts):
        return None
    wait = min(outcome.error.retry_after or spendcap.recheck_seconds(), spendcap.recheck_seconds())
    return now + timedelta(seconds=max(wait, 1.0))


def _record(delivery: NotificationDelivery, outcome: Any, now: datetime) -> SendOutcomeSummary:
    token = delivery.delivery_metadata["lease"]["token"]
    fields, summary = _outcome_fields(delivery, outcome, now)
    with transaction.atomic():
        updated = NotificationDelivery.objects.filter(_ours(delivery.pk, token)).update(**fields)
        if not updated:
            # Someone else owns the row now (our lease ran out and it was claimed again).
            logger.error(
                "delivery %s: lease lost before recording %s", delivery.pk, summary.outcome
            )
            return SendOutcomeSummary(delivery.pk, "lease_lost", summary.outcome)
        _log_recorded(delivery, summary)
        if delivery.notification_id:
            _refresh_notification(
                delivery.notification_id,
                attempted=True,
                error_message=fields.get("error_message"),
                provider_response=fields.get("provider_response"),
            )
        if summary.outcome == "sent" and delivery.delivery_type == "in_app":
            notification_id = delivery.notification_id
            transaction.on_commit(lambda: publish_in_app(delivery.pk, notification_id))
    return summary


def delivery_send(delivery_id: int, *, now: datetime | None = None) -> SendOutcomeSummary:
    """Claim, send and record one delivery. Safe to call any number of times, concurrently."""
    claimed = _claim(delivery_id, now or timezone.now())
    if isinstance(claimed, SendOutcomeSummary):
        return claimed
    with log_fields(**delivery_fields(claimed)):  # on every line logged while sending it
        outcome = _send(claimed)
        return _record(claimed, outcome, timezone.now())


def _log_recorded(delivery: NotificationDelivery, summary: SendOutcomeSummary) -> None:
    """One INFO line per recorded send: the delivery, its notification, the outcome."""
    if logger.isEnabledFor(logging.INFO):
        logger.info(
            "delivery %s %s%s",
            delivery.pk,
            summary.outcome,
            f" ({summary.detail})" if summary.detail else "",
            extra={**delivery_fields(delivery), "outcome": summary.outcome},
        )


# --------------------------------------------------------------------------------------------
# Batch path: claim many, send concurrently, record in bulk
# --------------------------------------------------------------------------------------------


def send_concurrency() -> int:
    """Sends in flight at once per process (the sender loop's connection pool)."""
    from providers import aio

    return aio.concurrency()


def send_batch_size() -> int:
    """Deliveries claimed at once: never more than can be in flight at once, so every
    claimed delivery is sent as soon as it is claimed and its lease only has to outlast one
    send (with failover), exactly as in the single path. A bigger claim would leave rows
    leased but waiting for a connection, and a short lease could expire before they even
    started."""
    return max(1, min(int(_setting("NP_SEND_BATCH_SIZE", 256)), send_concurrency()))


def _claim_batch(
    delivery_ids: list[int] | None, limit: int, now: datetime
) -> list[NotificationDelivery]:
    """Lease up to ``limit`` due pending deliveries (those of ``delivery_ids``, or the oldest
    due ones) in one statement; rows another worker holds are skipped, never waited for."""
    lease = {
        "token": uuid.uuid4().hex,  # one token per claim: the record checks (id, token)
        "until": (now + timedelta(seconds=lease_seconds())).timestamp(),
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }
    where = (
        "status = 'pending' AND (scheduled_at IS NULL OR scheduled_at <= %(now)s)"
        " AND (expires_at IS NULL OR expires_at > %(now)s)"
    )
    if delivery_ids is not None:
        where += " AND id = ANY(%(ids)s)"
        order = "id"
    else:
        order = "scheduled_at, id"  # idx_notification_deliveries_due (partial, pending)
    # Claim and read in one statement: the UPDATE returns the columns a send reads (and
    # the notification's), so no second query reloads the rows through the ORM.
    columns = ", ".join(f"d.{name}" for name in _CLAIM_COLUMNS)  # defined below
    sql = f"""
        WITH picked AS (
            SELECT id FROM notification_deliveries WHERE {where}
            ORDER BY {order} LIMIT %(limit)s FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE notification_deliveries d
            SET status = 'sending',
                delivery_metadata = (COALESCE(d.delivery_metadata, '{{}}'::jsonb) - 'lease')
                    || jsonb_build_object('lease', jsonb_build_object(
                        'token', %(token)s::text, 'until', %(until)s::float8,
                        'worker', %(worker)s::text, 'attempt', d.retry_count + 1)),
                updated_at = %(now)s
            FROM picked WHERE d.id = picked.id
            RETURNING {columns}
        )
        SELECT c.*, n.user_id, n.template_data
        FROM claimed c LEFT JOIN notifications n ON n.notification_id = c.notification_id
        ORDER BY c.id
    """  # noqa: S608 - fixed fragments, values are parameters
    params = {"now": now, "ids": delivery_ids, "limit": limit, **lease}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return [_claimed_delivery(row) for row in rows]


# The fields of a claimed delivery that building, routing and recording its send read;
# the rest of the row stays deferred (loading it would be a query per row: nothing does).
# In model order: ``Model.from_db`` matches values to fields by position.
_CLAIM_WANTED = {
    "id",
    "status",
    "notification_id",
    "invitation_id",
    "delivery_type",
    "recipient",
    "recipient_type",
    "geographic_region",
    "delivery_metadata",
    "retry_count",
    "max_retries",
}
_CLAIM_FIELDS = [
    f for f in NotificationDelivery._meta.concrete_fields if f.attname in _CLAIM_WANTED
]
_CLAIM_COLUMNS = [f.column for f in _CLAIM_FIELDS]
_CLAIM_ATTNAMES = [f.attname for f in _CLAIM_FIELDS]
_NOTIFICATION_FIELDS = [
    f for f in Notification._meta.concrete_fields if f.attname in {"id", "user_id", "template_data"}
]


def _claimed_delivery(row: tuple) -> NotificationDelivery:
    """A deferred-fields model instance from a claim row (as ``.only()`` would build it),
    with its notification's user and template data attached."""
    count = len(_CLAIM_FIELDS)
    values = [
        field.from_db_value(value, None, connection)
        if value is not None and hasattr(field, "from_db_value")
        else value
        for field, value in zip(_CLAIM_FIELDS, row[:count], strict=True)
    ]
    delivery = NotificationDelivery.from_db(DEFAULT_DB_ALIAS, _CLAIM_ATTNAMES, values)
    extra = dict(zip(("user_id", "template_data"), row[count:], strict=True))
    if delivery.notification_id is not None:
        extra["id"] = delivery.notification_id
        values = [
            field.from_db_value(extra[field.attname], None, connection)
            if extra[field.attname] is not None and hasattr(field, "from_db_value")
            else extra[field.attname]
            for field in _NOTIFICATION_FIELDS
        ]
        delivery.notification = Notification.from_db(
            DEFAULT_DB_ALIAS, [f.attname for f in _NOTIFICATION_FIELDS], values
        )
    return delivery


def _expire_among(delivery_ids: list[int], now: datetime) -> list[SendOutcomeSummary]:
    with transaction.atomic():
        rows = list(
            NotificationDelivery.objects.select_for_update(skip_locked=True).filter(
                pk__in=delivery_ids, status=DeliveryStatus.PENDING, expires_at__lte=now
            )
        )
        for row in rows:
            _expire(row, now)
    return [SendOutcomeSummary(row.pk, "expired") for row in rows]


def _route_groups(deliveries: list[NotificationDelivery]) -> dict[tuple, list[Any] | Exception]:
    """Candidates per (channel, region, preferred, blocked): one routing per group and batch
    instead of one per delivery."""
    from providers.routing import candidates

    routes: dict[tuple, list[Any] | Exception] = {}
    for delivery in deliveries:
        key = _route_key(delivery)
        if key in routes:
            continue
        try:
            routes[key] = candidates(
                channel=key[0], region=key[1], preferred=key[2], blocked=key[3]
            )
        except Exception as exc:  # noqa: BLE001 - becomes each delivery's crash outcome
            routes[key] = exc
    return routes


def _route_key(delivery: NotificationDelivery) -> tuple:
    meta = delivery.delivery_metadata or {}
    return (
        delivery.delivery_type,
        delivery.geographic_region,
        tuple(meta.get("preferred_providers") or ()),
        tuple(meta.get("blocked_providers") or ()),
    )


def _crashed(exc: BaseException) -> Any:
    from providers.errors import ProviderError
    from providers.types import SendOutcome

    error = ProviderError(
        f"send crashed: {type(exc).__name__}: {exc}", error_code=SEND_CRASHED, retryable=True
    )
    return SendOutcome(result=None, provider=None, attempts=[], error=error)


async def _send_one(message: Any, route: list[Any] | Exception, tally: Any) -> Any:
    """``_send`` on the sender loop: never raises, an outcome for every delivery."""
    from providers import errors as perrors
    from providers.errors import ProviderError
    from providers.services import send_with_failover_async
    from providers.types import SendOutcome

    if isinstance(route, Exception):
        return _crashed(route)
    if not route:
        error = ProviderError(
            f"no enabled, healthy provider for channel '{message.channel}'",
            error_code=perrors.NO_PROVIDER,
            retryable=True,
        )
        return SendOutcome(result=None, provider=None, attempts=[], error=error)
    try:
        return await send_with_failover_async(message, list(route), tally)
    except Exception as exc:  # noqa: BLE001 - a bug or outage must not strand the row in sending
        logger.exception("sending delivery %s crashed", message.delivery_id)
        return _crashed(exc)


async def _send_all(
    jobs: list[tuple[NotificationDelivery, Any, list[Any] | Exception]],
    results: queue.SimpleQueue,
    tally: Any,
) -> None:
    """Send every job concurrently; each outcome goes to ``results`` as soon as it is known
    (the calling thread records them while the others are still in flight)."""

    async def one(delivery: NotificationDelivery, message: Any, route: Any) -> None:
        try:
            # each gather() task runs in its own copy of the context: these ids are its own
            with log_fields(**delivery_fields(delivery)):
                outcome = await _send_one(message, route, tally)
        except BaseException as exc:  # noqa: BLE001 - cancelled: still report the row
            outcome = _crashed(exc)
            results.put((delivery, outcome))
            raise
        results.put((delivery, outcome))

    await asyncio.gather(*(one(*job) for job in jobs))


_PG_TYPES = {
    "CharField": "text",
    "TextField": "text",
    "IntegerField": "integer",
    "DecimalField": "numeric",
    "DateTimeField": "timestamptz",
    "JSONField": "jsonb",
}


def _bulk_record(
    items: list[tuple[NotificationDelivery, dict[str, Any], SendOutcomeSummary]],
) -> set[int]:
    """UPDATE every outcome's delivery, guarded by its lease, in one statement per shape of
    outcome (sent / retry / failed); returns the ids whose lease still held.

    The rows travel as ONE JSON document (``jsonb_to_recordset``) rather than one array
    parameter per column: psycopg quotes array elements in Python, a regular expression per
    element, which cost more than the UPDATE itself for JSON-heavy columns; one JSON string
    is encoded in C on both ends."""
    groups: dict[tuple[str, ...], list[tuple[NotificationDelivery, dict[str, Any]]]] = {}
    for delivery, fields, _summary in items:
        groups.setdefault(tuple(sorted(fields)), []).append((delivery, fields))
    recorded: set[int] = set()
    meta = NotificationDelivery._meta
    for names, rows in groups.items():
        columns = [meta.get_field(name) for name in names]
        sets = [f"{f.column} = v.{f.column}" for f in columns]
        types = [f"{f.column} {_PG_TYPES[f.get_internal_type()]}" for f in columns]
        document = json.dumps(
            [
                {
                    "id": delivery.pk,
                    "token": delivery.delivery_metadata["lease"]["token"],
                    **{f.column: fields[f.name] for f in columns},
                }
                for delivery, fields in rows
            ],
            separators=(",", ":"),
            default=str,  # datetimes (ISO-like, with offset), Decimals (exact text)
        )
        sql = f"""
            UPDATE notification_deliveries d SET {", ".join(sets)}
            FROM jsonb_to_recordset(%s::jsonb) AS v(id integer, token text, {", ".join(types)})
            WHERE d.id = v.id AND (
                (d.status = 'sending' AND d.delivery_metadata -> 'lease' ->> 'token' = v.token)
                OR (d.status = 'pending'
                    AND d.delivery_metadata -> 'lease_expired' ->> 'token' = v.token))
            RETURNING d.id
        """  # noqa: S608 - column names and types come from the model
        with connection.cursor() as cursor:
            cursor.execute(sql, [document])
            recorded.update(row[0] for row in cursor.fetchall())
    return recorded


def _bulk_refresh_notifications(
    attempts: dict[Any, tuple[int, str | None, dict[str, Any] | None]], now: datetime
) -> None:
    """``_refresh_notification(attempted=True, ...)`` for many notifications: lock them in a
    stable order, read their deliveries' statuses in one query, write in one UPDATE.
    ``attempts`` maps notification id → (attempts recorded, last error, last response).
    Sets ``in_inbox`` too (in the same row version; see ``_record_batch``)."""
    ids = sorted(attempts, key=str)
    # one array literal, not a list parameter: psycopg would quote each element in Python
    id_array = "{" + ",".join(str(pk) for pk in ids) + "}"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT notification_id, status FROM notifications"
            " WHERE notification_id = ANY(%s::uuid[]) ORDER BY notification_id FOR UPDATE",
            [id_array],
        )
        current = dict(cursor.fetchall())
        cursor.execute(
            "SELECT notification_id, status, delivery_type FROM notification_deliveries"
            " WHERE notification_id = ANY(%s::uuid[])",
            [id_array],
        )
        statuses: dict[Any, list[str]] = {}
        in_inbox: set[Any] = set()
        for notification_id, status, delivery_type in cursor.fetchall():
            statuses.setdefault(notification_id, []).append(status)
            if delivery_type == "in_app" and status in ("sent", "delivered"):
                in_inbox.add(notification_id)
        rows = []
        for notification_id in ids:
            if notification_id not in current:
                continue
            status = notification_status_from(statuses.get(notification_id, []))
            new_status = (
                status
                if current[notification_id] not in USER_STATUSES
                and status != current[notification_id]
                else None
            )
            count, error_message, response = attempts[notification_id]
            rows.append(
                {
                    "id": str(notification_id),
                    "status": new_status,
                    "inc": count,
                    "err": error_message or None,
                    "pr": response,
                    "sent": status in ("sent", "delivered"),
                    "inbox": notification_id in in_inbox,
                }
            )
        if not rows:
            return
        cursor.execute(
            """
            UPDATE notifications n SET
                status = COALESCE(v.status, n.status),
                delivery_attempts = n.delivery_attempts + v.inc,
                error_message = COALESCE(v.err, n.error_message),
                provider_response = COALESCE(v.pr, n.provider_response),
                sent_at = CASE WHEN v.sent THEN COALESCE(n.sent_at, %s) ELSE n.sent_at END,
                in_inbox = v.inbox,
                updated_at = %s
            FROM jsonb_to_recordset(%s::jsonb) AS v(
                id uuid, status text, inc integer, err text, pr jsonb, sent boolean,
                inbox boolean)
            WHERE n.notification_id = v.id
            """,
            [now, now, json.dumps(rows, separators=(",", ":"), default=str)],
        )


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
    expired and reported."""
    from providers import aio
    from providers.services import SuccessTally

    now = now or timezone.now()
    limit = min(limit or send_batch_size(), send_batch_size())
    summaries: list[SendOutcomeSummary] = []
    ids = list(delivery_ids) if delivery_ids is not None else None
    if ids is not None:
        if not ids:
            return []
        summaries += _expire_among(ids, now)
    claimed = _claim_batch(ids, limit, now)
    if not claimed:
        return summaries
    routes = _route_groups(claimed)
    jobs = []
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
    results: queue.SimpleQueue = queue.SimpleQueue()
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


def _record_batch(done: list[tuple[NotificationDelivery, Any]]) -> list[SendOutcomeSummary]:
    """Record finished sends in bulk: one lease-guarded UPDATE per outcome shape, one
    notification refresh, in-app publishes after commit."""
    recorded_at = timezone.now()
    summaries: list[SendOutcomeSummary] = []
    items = []
    for delivery, outcome in done:
        fields, summary = _outcome_fields(delivery, outcome, recorded_at)
        items.append((delivery, fields, summary))
    with transaction.atomic():
        # This transaction refreshes every recorded delivery's notification, in_inbox
        # included, in one UPDATE: the per-row inbox trigger (migration 0004) would write
        # each notification a second time (a non-HOT update through all its indexes).
        # The setting is switched off again before the block ends: inside a caller's
        # transaction SET LOCAL would otherwise outlive this block (a rollback of the
        # block's savepoint undoes it anyway).
        # Only in-app rows fire the trigger: other batches skip both round trips.
        in_app = any(delivery.delivery_type == "in_app" for delivery, _f, _s in items)
        if in_app:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL notifyplatform.inbox_synced = 'on'")
        recorded = _bulk_record(items)
        attempts: dict[Any, tuple[int, str | None, dict[str, Any] | None]] = {}
        published: list[tuple[int, Any]] = []
        for delivery, fields, summary in items:
            if delivery.pk not in recorded:
                logger.error(
                    "delivery %s: lease lost before recording %s",
                    delivery.pk,
                    summary.outcome,
                    extra=delivery_fields(delivery),
                )
                summaries.append(SendOutcomeSummary(delivery.pk, "lease_lost", summary.outcome))
                continue
            summaries.append(summary)
            _log_recorded(delivery, summary)
            if delivery.notification_id:
                count, error_message, _response = attempts.get(
                    delivery.notification_id, (0, None, None)
                )
                attempts[delivery.notification_id] = (
                    count + 1,
                    fields.get("error_message") or error_message,
                    fields.get("provider_response"),
                )
            if summary.outcome == "sent" and delivery.delivery_type == "in_app":
                published.append((delivery.pk, delivery.notification_id))
        if attempts:
            _bulk_refresh_notifications(attempts, recorded_at)
        if in_app:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL notifyplatform.inbox_synced = 'off'")
        if published:
            transaction.on_commit(lambda: _publish_in_app_group(published))
    return summaries


def _publish_in_app_group(published: list[tuple[int, Any]]) -> None:
    """``publish_in_app`` for a recorded group, at once: the notifications are read in one
    query and turned into payloads without a serializer per row, and realtime's
    ``publish_many`` writes the group's events in one transaction (the global advisory
    lock that orders event commits is taken once, one INSERT, one WAL flush) and fans
    them out after commit with one Redis round trip and one bookkeeping UPDATE. One
    ``publish`` per event cost ~4 ms of worker CPU each (the batch_100k profile).

    If the group cannot be published as a whole (a database error, one event's bad
    input), its transaction wrote nothing, so each is published again on its own: none
    lost to a neighbour's error, none twice."""
    if len(published) == 1:
        publish_in_app(*published[0])
        return
    try:
        from realtime.services import publish_many
    except ImportError:  # realtime app not built yet: the inbox still has the notification
        logger.warning("realtime.services.publish_many unavailable; in-app events not published")
        return
    from ..api.serializers import inbox_payload_rows

    try:
        by_id = {
            row["id"]: (row, payload)
            for row, payload in inbox_payload_rows(
                {notification_id for _, notification_id in published},
                columns=("auction_id",),
            )
        }
        events = []
        for delivery_id, notification_id in published:
            found = by_id.get(notification_id)
            if found is None:  # deleted since it was sent: nothing to show
                continue
            row, payload = found
            events.append(
                {
                    "event_type": "notification.created",
                    "category": "notification",
                    "data": payload,
                    "visibility": "private",
                    "user": row["user_id"],
                    "auction": row["auction_id"],
                    "priority": _REALTIME_PRIORITY.get(row["priority"], "normal"),
                    "correlation_id": str(notification_id),
                    "metadata": {"delivery_id": delivery_id},
                }
            )
        publish_many(events)
    except Exception:  # noqa: BLE001 - never fail a recorded send because of the live feed
        logger.warning(
            "publishing %d in-app events together failed; one by one", len(published), exc_info=True
        )
        for delivery_id, notification_id in published:
            publish_in_app(delivery_id, notification_id)


def deliveries_send(delivery_ids: Iterable[int]) -> list[SendOutcomeSummary]:
    """Send these deliveries through the batch path, ``NP_SEND_BATCH_SIZE`` at a time."""
    ids = list(dict.fromkeys(delivery_ids))
    size = send_batch_size()
    summaries: list[SendOutcomeSummary] = []
    for start in range(0, len(ids), size):
        summaries += deliveries_send_batch(ids[start : start + size], limit=size)
    return summaries


def _refresh_notification(
    notification_id: Any,
    *,
    attempted: bool = False,
    error_message: str | None = None,
    provider_response: dict[str, Any] | None = None,
) -> None:
    """Recompute a notification's status from its deliveries, under the notification's row
    lock so two deliveries finishing together cannot each miss the other's update."""
    notification = (
        Notification.objects.select_for_update().filter(pk=notification_id).only("status").first()
    )
    if notification is None:
        return
    statuses = list(
        NotificationDelivery.objects.filter(notification_id=notification_id).values_list(
            "status", flat=True
        )
    )
    status = notification_status_from(statuses)
    fields: dict[str, Any] = {}
    if notification.status not in USER_STATUSES and status != notification.status:
        fields["status"] = status
    if attempted:
        fields["delivery_attempts"] = F("delivery_attempts") + 1
        if provider_response is not None:
            fields["provider_response"] = provider_response
        if error_message:
            fields["error_message"] = error_message
    now = timezone.now()
    if status in ("sent", "delivered"):
        fields["sent_at"] = Coalesce(F("sent_at"), Value(now))
    if fields:
        Notification.objects.filter(pk=notification_id).update(**fields, updated_at=now)


# --------------------------------------------------------------------------------------------
# In-app: publish the notification to the user's private real-time stream
# --------------------------------------------------------------------------------------------

_REALTIME_PRIORITY = {"low": "low", "normal": "normal", "high": "high", "urgent": "critical"}


def publish_in_app(delivery_id: int, notification_id: Any) -> None:
    """Best effort: the inbox row is the truth; the event is the live nudge."""
    try:
        from realtime.services import publish
    except ImportError:  # realtime app not built yet: the inbox still has the notification
        logger.warning("realtime.services.publish unavailable; in-app event not published")
        return
    from ..api.serializers import inbox_payload

    try:
        notification = Notification.objects.select_related("user").get(pk=notification_id)
        publish(
            event_type="notification.created",
            category="notification",
            data=inbox_payload(notification),
            visibility="private",
            user=notification.user,
            auction=notification.auction_id and notification.auction,
            priority=_REALTIME_PRIORITY.get(notification.priority, "normal"),
            correlation_id=str(notification.pk),
            metadata={"delivery_id": delivery_id},
        )
    except Exception:  # noqa: BLE001 - never fail a recorded send because of the live feed
        logger.exception("publishing in-app notification %s failed", notification_id)


# --------------------------------------------------------------------------------------------
# Sweeper
# --------------------------------------------------------------------------------------------


def _release_expired_leases(now: datetime, batch_size: int) -> int:
    released = 0
    with transaction.atomic():
        rows = list(
            NotificationDelivery.objects.select_for_update(skip_locked=True)
            .filter(
                status=DeliveryStatus.SENDING, delivery_metadata__lease__until__lt=now.timestamp()
            )
            .order_by("id")[:batch_size]
        )
        for row in rows:
            lease = (row.delivery_metadata or {}).get("lease") or {}
            meta = _without(row.delivery_metadata, "lease")
            meta["lease_expired"] = lease
            meta["lease_expiries"] = int(meta.get("lease_expiries", 0)) + 1
            if row.retry_count >= row.max_retries:
                meta["decision"] = {"rule": "max_retries", "max_retries": row.max_retries}
                NotificationDelivery.objects.filter(pk=row.pk).update(
                    status=DeliveryStatus.FAILED,
                    failed_at=now,
                    error_code=LEASE_EXPIRED,
                    error_message="the worker sending it vanished (lease expired) too often",
                    delivery_metadata=meta,
                    updated_at=now,
                )
                if row.notification_id:
                    _refresh_notification(row.notification_id)
            else:
                NotificationDelivery.objects.filter(pk=row.pk).update(
                    status=DeliveryStatus.PENDING,
                    retry_count=row.retry_count + 1,
                    scheduled_at=now,
                    delivery_metadata=meta,
                    # old enough that this same sweep re-enqueues it
                    updated_at=now - timedelta(days=1),
                )
            released += 1
    return released


def _expire_pending(now: datetime, batch_size: int) -> int:
    with transaction.atomic():
        rows = list(
            NotificationDelivery.objects.select_for_update(skip_locked=True)
            .filter(status=DeliveryStatus.PENDING, expires_at__lte=now)
            .order_by("id")[:batch_size]
        )
        for row in rows:
            _expire(row, now)
    return len(rows)


def deliveries_sweep(
    *, batch_size: int | None = None, now: datetime | None = None
) -> dict[str, int]:
    """Repair and re-drive the outbox: expired leases → pending, past ``expires_at`` →
    expired, then a dispatcher run (:func:`deliveries_dispatch_due`) for what is due.

    The grace period keeps the sweeper from re-enqueueing rows whose own on-commit enqueue is
    still in flight; a duplicate enqueue would be harmless anyway (the claim is idempotent).
    """
    now = now or timezone.now()
    batch_size = batch_size or int(_setting("NP_SWEEP_BATCH_SIZE", 5000))
    released = _release_expired_leases(now, batch_size)
    expired = _expire_pending(now, batch_size)
    dispatched = deliveries_dispatch_due(now=now, limit=batch_size)
    return {
        "released": released,
        "expired": expired,
        "due": dispatched["due"],
        "enqueued": dispatched["enqueued"],
    }


# --------------------------------------------------------------------------------------------
# Dispatcher: due rows to the send queue, at the sending rate
# --------------------------------------------------------------------------------------------


def send_queue_backlog() -> int | None:
    """Deliveries waiting in the broker's send queue (an upper bound: messages × the ids a
    message carries), or None when it cannot be read (not a Redis broker, or no answer)."""
    import redis

    broker = str(getattr(settings, "CELERY_BROKER_URL", "") or settings.REDIS_URL)
    if not broker.startswith(("redis://", "rediss://", "unix://")):
        return None
    queue_name = str(getattr(settings, "NP_QUEUE_SEND", "send"))
    client = redis.Redis.from_url(broker, socket_connect_timeout=1, socket_timeout=1)
    try:
        messages = int(client.llen(queue_name))
    except redis.RedisError:
        return None
    finally:
        client.close()
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


def deliveries_dispatch_due(*, now: datetime | None = None, limit: int | None = None) -> dict:
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
