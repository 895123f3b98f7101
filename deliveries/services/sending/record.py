"""Record: write a send's outcome while our lease holds, one or many at once, and refresh
the notifications' status."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django.db import connection, transaction
from django.db.models import F, Field, Q, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from notifyplatform.logs import delivery_fields
from providers import spendcap
from providers.errors import FEATURE_UNSUPPORTED, INVALID_RECIPIENT, SPEND_CAP
from providers.types import SendOutcome
from users.services import device_disable

from ...models import DeliveryStatus, Notification, NotificationDelivery
from ...types import SendOutcomeSummary
from ..status import USER_STATUSES, notification_status_from
from .inapp import publish_in_app, publish_in_app_groups
from .policy import _without, retry_delay

logger = logging.getLogger(__package__)  # one logger for the whole send path (JSON logs)


def _ours(delivery_id: int, token: str) -> Q:
    """Our lease still holds — or it ran out and the sweeper re-queued the row, but nobody
    claimed it again yet (then our result is still the truth and must be recorded)."""
    return Q(pk=delivery_id) & (
        Q(status=DeliveryStatus.SENDING, delivery_metadata__lease__token=token)
        | Q(status=DeliveryStatus.PENDING, delivery_metadata__lease_expired__token=token)
    )


def _outcome_fields(
    delivery: NotificationDelivery, outcome: SendOutcome, now: datetime
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
        assert provider is not None  # SendOutcome: a result names the provider that sent it
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
        if outcome.skipped:
            # sent, but not by every routed provider: the trace says who lacked what
            meta["decision"] = {"rule": "provider_features", "skipped": outcome.skipped}
    else:
        error = outcome.error
        assert error is not None  # SendOutcome: no result, then the last error
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
            elif error.error_code == FEATURE_UNSUPPORTED:
                meta["decision"] = {"rule": "no_capable_provider", "skipped": outcome.skipped}
            fields.update(status=DeliveryStatus.FAILED, failed_at=now, delivery_metadata=meta)
            summary = SendOutcomeSummary(delivery.pk, "failed", error.error_code)
    return fields, summary


def _disable_gone_device(delivery: NotificationDelivery, outcome: SendOutcome) -> None:
    """A push provider's permanent INVALID_RECIPIENT (FCM ``UNREGISTERED``, Web Push
    404/410) for a registered device: the token or subscription is gone for good, so the
    device is disabled and gets no further push until it registers again."""
    error = outcome.error
    if (
        error is None
        or error.retryable
        or error.error_code != INVALID_RECIPIENT
        or delivery.delivery_type != "push"
    ):
        return
    device_id = (delivery.delivery_metadata or {}).get("device_id")
    if isinstance(device_id, int):
        provider = outcome.provider.provider_name if outcome.provider is not None else "provider"
        if device_disable(device_id=device_id, reason=f"{provider}: {error.message}"):
            logger.info(
                "delivery %s: device %s disabled (%s)",
                delivery.pk,
                device_id,
                error.error_code,
                extra=delivery_fields(delivery),
            )


def _spend_cap_deferral(outcome: SendOutcome, now: datetime) -> datetime | None:
    """When every provider tried refused the message for its daily spend cap
    (``providers.spendcap``): when to try again — the cap's next window, or sooner
    (``NP_SPEND_CAP_RECHECK_SECONDS``) so a raised cap takes effect. Else None."""
    attempts = outcome.attempts
    if not attempts or any(attempt.error_code != SPEND_CAP for attempt in attempts):
        return None
    retry_after = outcome.error.retry_after if outcome.error is not None else None
    wait = min(retry_after or spendcap.recheck_seconds(), spendcap.recheck_seconds())
    return now + timedelta(seconds=max(wait, 1.0))


def _record(
    delivery: NotificationDelivery, outcome: SendOutcome, now: datetime
) -> SendOutcomeSummary:
    token = delivery.delivery_metadata["lease"]["token"]  # type: ignore[index]  # claimed
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
        _disable_gone_device(delivery, outcome)
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
        columns = cast("list[Field[Any, Any]]", [meta.get_field(name) for name in names])
        sets = [f"{f.column} = v.{f.column}" for f in columns]
        types = [f"{f.column} {_PG_TYPES[f.get_internal_type()]}" for f in columns]
        document = json.dumps(
            [
                {
                    "id": delivery.pk,
                    "token": delivery.delivery_metadata["lease"]["token"],  # type: ignore[index]
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


def _record_batch(done: list[tuple[NotificationDelivery, SendOutcome]]) -> list[SendOutcomeSummary]:
    """Record finished sends in bulk: one lease-guarded UPDATE per outcome shape, one
    notification refresh, in-app publishes after commit."""
    recorded_at = timezone.now()
    summaries: list[SendOutcomeSummary] = []
    items = []
    outcomes: dict[int, SendOutcome] = {}
    for delivery, outcome in done:
        fields, summary = _outcome_fields(delivery, outcome, recorded_at)
        items.append((delivery, fields, summary))
        outcomes[delivery.pk] = outcome
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
            _disable_gone_device(delivery, outcomes[delivery.pk])
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
            transaction.on_commit(lambda: publish_in_app_groups(published))
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
