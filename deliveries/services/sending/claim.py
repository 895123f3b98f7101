"""Claim: lease due pending deliveries (one, or a batch in one statement) before any send."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, transaction

from notifyplatform.choices import Channel

from ...models import DeliveryStatus, Notification, NotificationDelivery
from ...preferences import suppression_rule
from ...selectors import suppression_reasons
from ...types import SendOutcomeSummary
from .policy import _without, lease_seconds
from .record import _refresh_notification


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
        reason = (
            suppression_reasons(
                [(delivery.delivery_type, delivery.recipient)],
                (delivery.delivery_metadata or {}).get("category"),
            )
            if delivery.delivery_type != Channel.IN_APP
            else {}
        )
        if reason:
            _skip_suppressed(delivery, now, next(iter(reason.values())))
            return SendOutcomeSummary(delivery_id, "suppressed")
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


def _skip_suppressed(delivery: NotificationDelivery, now: datetime, reason: str) -> None:
    """A (locked) pending delivery whose address was suppressed after it was planned."""
    delivery.status = DeliveryStatus.SKIPPED
    delivery.delivery_metadata = {
        **_without(delivery.delivery_metadata, "lease"),
        "decision": {**suppression_rule(reason, delivery.delivery_type), "at": now.isoformat()},
    }
    delivery.save(update_fields=["status", "delivery_metadata", "updated_at"])
    if delivery.notification_id:
        _refresh_notification(delivery.notification_id)


# The pending deliveries of a batch that must not be sent: past ``expires_at``, or to an
# address with an active suppression (suppressions_active_unique). One query for both, as
# nearly every batch has neither; stored addresses are normalised as notify() plans them,
# so only an email needs lower-casing here.
_UNSENDABLE_AMONG_SQL = """
    SELECT d.id, 'expired' AS why, NULL AS reason, NULL AS category
    FROM notification_deliveries d
    WHERE d.id = ANY(%(ids)s) AND d.status = 'pending' AND d.expires_at <= %(now)s
    UNION ALL
    SELECT d.id, 'suppressed', s.reason, s.category FROM notification_deliveries d
    JOIN suppressions s ON s.lifted_at IS NULL AND s.channel = d.delivery_type
        AND s.address = CASE WHEN d.delivery_type = 'email'
                             THEN lower(btrim(d.recipient)) ELSE btrim(d.recipient) END
        AND (s.category IS NULL OR s.category = d.delivery_metadata->>'category')
    WHERE d.id = ANY(%(ids)s) AND d.status = 'pending'
    ORDER BY 2, 4 NULLS LAST  -- dict(): the every-category row (NULL) wins
"""


def _settle_unsendable(delivery_ids: list[int], now: datetime) -> list[SendOutcomeSummary]:
    """Expire the batch's pending deliveries past ``expires_at`` and skip those to an
    address suppressed since they were planned (the send-time re-check; planning already
    skipped the rest), before the claim."""
    with connection.cursor() as cursor:
        cursor.execute(_UNSENDABLE_AMONG_SQL, {"ids": delivery_ids, "now": now})
        found = cursor.fetchall()
    if not found:
        return []
    expired = [pk for pk, why, _reason, _category in found if why == "expired"]
    suppressed = {pk: reason for pk, why, reason, _category in found if why == "suppressed"}
    summaries = _expire_among(expired, now) if expired else []
    if suppressed:
        summaries += _suppress_among(suppressed, now)
    return summaries


def _suppress_among(hit: dict[int, str], now: datetime) -> list[SendOutcomeSummary]:
    """Skip these pending deliveries (id → suppression reason), each under its row lock."""
    with transaction.atomic():
        rows = list(
            NotificationDelivery.objects.select_for_update(skip_locked=True).filter(
                pk__in=list(hit), status=DeliveryStatus.PENDING
            )
        )
        for row in rows:
            _skip_suppressed(row, now, hit[row.pk])
    return [SendOutcomeSummary(row.pk, "suppressed") for row in rows]


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
    params: dict[str, Any] = {"now": now, "ids": delivery_ids, "limit": limit, **lease}
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


def _claimed_delivery(row: tuple[Any, ...]) -> NotificationDelivery:
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
