"""``notify()``: one notification, its rows written through the ORM in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ... import errors
from ...errors import NotifyError
from ...models import DeliveryStatus, Notification, NotificationDelivery, NotificationStatus
from ...types import NotifyResult, Recipient
from ..sending import enqueue_deliveries, publish_in_app
from ..status import notification_status_from
from .bulk_store import allocate_delivery_ids
from .inapp_sent import InAppSentNow
from .plan import _decision, _Plan, _plan
from .rows import (
    _base_delivery_metadata,
    _delivery_constants,
    _delivery_row,
    _DeliveryRow,
    _notification_fields,
    _row_metadata,
)
from .validate import _max_retries
from .workflow import notify_workflow


def _existing(idempotency_key: str, *, is_user: bool, recipient: Any) -> NotifyResult | None:
    if is_user:
        notification = Notification.objects.filter(idempotency_key=idempotency_key).first()
        if notification is None:
            return None
        if notification.user_id != recipient.pk:
            # never hand one user's notification to a call for another
            raise NotifyError(
                errors.IDEMPOTENCY_KEY_REUSED,
                "this idempotency key already names another user's notification",
                "idempotency_key",
                status=422,
            )
        return NotifyResult(
            notification, list(notification.deliveries.order_by("id")), created=False
        )
    rows = list(
        NotificationDelivery.objects.filter(
            notification__isnull=True, delivery_metadata__idempotency_key=idempotency_key
        ).order_by("id")
    )
    return NotifyResult(None, rows, created=False) if rows else None


def _idempotency_lock(idempotency_key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"np-idem:{idempotency_key}"])


def notify(
    recipient: Any,
    *,
    template_key: str | None = None,
    title: str | None = None,
    message: str | None = None,
    context: dict[str, Any] | None = None,
    channels: list[str] | None = None,
    category: str | None = None,
    priority: str | None = None,
    idempotency_key: str | None = None,
    scheduled_at: datetime | None = None,
    expires_at: datetime | None = None,
    auction: Any = None,
    bid: Any = None,
    item: Any = None,
    invitation: Any = None,
    action_url: str | None = None,
    action_label: str | None = None,
    metadata: dict[str, Any] | None = None,
    webhook_url: str | None = None,
    rich_content: dict[str, Any] | None = None,
    workflow: str | None = None,
) -> NotifyResult:
    """Compose and store one notification (see the package docstring). Raises NotifyError for
    bad input, with nothing written. ``category``/``priority`` default to the catalogue's
    values for the type (else ``system``/``normal``); ``channels=None`` means the catalogue's
    default channels (``in_app`` for a free-form title/message). ``rich_content`` (image,
    buttons, text, html; README "Rich content") is validated, stored and rendered per
    channel; without it a template's ``rich_content_template`` is used.

    ``workflow=key`` starts that workflow for the user instead (``context`` is its data,
    ``scheduled_at`` its ``send_at``): the result has no notification yet and carries
    ``workflow`` (the runs started). See ``notify/workflow.py``."""
    relations = {"auction": auction, "bid": bid, "item": item, "invitation": invitation}
    if workflow is not None:
        return notify_workflow(
            recipient,
            workflow,
            idempotency_key=idempotency_key,
            relations=relations,
            fields={
                "template_key": template_key,
                "title": title,
                "message": message,
                "context": context,
                "channels": channels,
                "scheduled_at": scheduled_at,
                "action_url": action_url,
                "action_label": action_label,
                "webhook_url": webhook_url,
                "rich_content": rich_content,
            },
        )
    result, due_ids = _notify(
        recipient,
        idempotency_key=idempotency_key,
        relations=relations,
        fields={
            "template_key": template_key,
            "title": title,
            "message": message,
            "context": context,
            "channels": channels,
            "category": category,
            "priority": priority,
            "scheduled_at": scheduled_at,
            "expires_at": expires_at,
            "action_url": action_url,
            "action_label": action_label,
            "metadata": metadata,
            "webhook_url": webhook_url,
            "rich_content": rich_content,
        },
    )
    if due_ids:
        transaction.on_commit(lambda: enqueue_deliveries(due_ids))
    return result


def _notify(
    recipient: Any,
    *,
    idempotency_key: str | None,
    relations: dict[str, Any],
    fields: dict[str, Any],
) -> tuple[NotifyResult, list[int]]:
    """notify() without the enqueue: also returns the ids of the deliveries due now, which the
    caller enqueues after commit (notify_many() enqueues a whole fan-out's at once)."""
    is_user = not isinstance(recipient, Recipient)
    if is_user and (recipient is None or getattr(recipient, "pk", None) is None):
        raise NotifyError(errors.INVALID_RECIPIENT, "a saved user is required", "user_id")
    if idempotency_key is not None:
        if (
            not isinstance(idempotency_key, str)
            or not idempotency_key
            or len(idempotency_key) > 255
        ):
            raise NotifyError(
                errors.VALIDATION_ERROR, "must be 1 to 255 characters", "idempotency_key"
            )
        found = _existing(idempotency_key, is_user=is_user, recipient=recipient)
        if found is not None:
            return found, []

    plan = _plan(recipient, is_user=is_user, **fields)
    try:
        with transaction.atomic():
            if idempotency_key is not None:
                _idempotency_lock(idempotency_key)
                found = _existing(idempotency_key, is_user=is_user, recipient=recipient)
                if found is not None:
                    return found, []
            return _write(
                plan, recipient, is_user=is_user, idempotency_key=idempotency_key, **relations
            )
    except IntegrityError:
        # A concurrent notify with the same key committed between our check and insert (the
        # advisory lock makes this rare; the unique constraint makes it impossible to miss).
        if idempotency_key is None:
            raise
        found = _existing(idempotency_key, is_user=is_user, recipient=recipient)
        if found is None:
            raise
        return found, []


def _write(
    plan: _Plan,
    recipient: Any,
    *,
    is_user: bool,
    idempotency_key: str | None,
    auction: Any,
    bid: Any,
    item: Any,
    invitation: Any,
) -> tuple[NotifyResult, list[int]]:
    """Write the rows of one planned notification; returns it and its deliveries due now."""
    now = timezone.now()
    due = plan.scheduled_at if plan.scheduled_at and plan.scheduled_at > now else now
    notification: Notification | None = None
    if is_user:
        notification = Notification.objects.create(
            user=recipient,
            auction=auction,
            bid=bid,
            item=item,
            status=NotificationStatus.PENDING,
            idempotency_key=idempotency_key,
            **_notification_fields(
                channels=plan.channels,
                rendered=plan.rendered,
                category=plan.category,
                priority=plan.priority,
                context=plan.context,
                metadata=plan.metadata,
                type_name=plan.type_name,
                scheduled_at=plan.scheduled_at,
                expires_at=plan.expires_at,
                action_url=plan.action_url,
                action_label=plan.action_label,
            ),
        )
    built = _delivery_rows(
        plan, recipient, is_user=is_user, idempotency_key=idempotency_key, due=due
    )
    # a due, plain in-app row is written as sent, its event published after commit
    sent_now = InAppSentNow(plan.channels if is_user else [], plan.expires_at)
    marked = sent_now.apply([row for row, _meta in built], plan.region, now)
    rows = [
        NotificationDelivery(
            notification=notification,
            invitation=invitation,
            **_delivery_constants(
                row.channel, expires_at=plan.expires_at, max_retries=_max_retries()
            ),
            recipient=row.recipient,
            status=row.status,
            delivery_metadata=meta,
            scheduled_at=row.scheduled_at,
            geographic_region=plan.region,
        )
        for row, meta in built
    ]
    # one row at a time, not bulk_create: the frequency cap of a later channel counts rows
    # written earlier in this same transaction, and a notification has a handful.
    sent_in_app: NotificationDelivery | None = None
    for delivery, (row, _meta), mark in zip(rows, built, marked, strict=True):
        if notification is not None and mark.status != row.status:
            sent_in_app = delivery
            [delivery.pk] = allocate_delivery_ids(1)  # its values name it
            for name, value in sent_now.delivery_values(
                plan.region, delivery.pk, recipient.pk, now
            ).items():
                setattr(delivery, name, value)
        delivery.save(force_insert=True)

    if notification is not None:
        status = notification_status_from([delivery.status for delivery in rows])
        fields: dict[str, Any] = {}
        if sent_in_app is not None:
            fields = sent_now.notification_values(
                plan.region, sent_in_app.pk, recipient.pk, status in ("sent", "delivered"), now
            )
            notification_id = notification.pk
            delivery_id = sent_in_app.pk
            transaction.on_commit(lambda: publish_in_app(delivery_id, notification_id))
        if status != notification.status:
            fields["status"] = status
        if fields:
            for name, value in fields.items():
                setattr(notification, name, value)
            Notification.objects.filter(pk=notification.pk).update(**fields)

    due_ids = [
        delivery.id
        for delivery, (row, _meta) in zip(rows, built, strict=True)
        if delivery.status == DeliveryStatus.PENDING and row.scheduled_at <= now
    ]
    return NotifyResult(notification, rows, created=True), due_ids


def _delivery_rows(
    plan: _Plan, recipient: Any, *, is_user: bool, idempotency_key: str | None, due: datetime
) -> list[tuple[_DeliveryRow, dict[str, Any]]]:
    """Each channel's rows (the builder notify_many() uses too) and their full metadata:
    one per address, so push has one per active registered device."""
    built = []
    for channel in plan.channels:
        for address in plan.addresses[channel]:
            decision = _decision(
                address,
                channel,
                is_user=is_user,
                pref=plan.prefs.get(channel),
                user=recipient,
                type_name=plan.type_name,
                priority=plan.priority,
                due=due,
                user_timezone=plan.timezone,
                suppressed=plan.suppressed.get((channel, address.recipient or "")),
            )
            base_meta = _base_delivery_metadata(
                rendered=plan.rendered[channel],
                type_name=plan.type_name,
                category=plan.category,
                priority=plan.priority,
                locale=plan.locale,
                action_url=plan.action_url,
            )
            row = _delivery_row(
                channel,
                address,
                decision,
                due=due,
                base_meta=base_meta,
                idempotency_key=None if is_user else idempotency_key,
                metadata=plan.metadata,
            )
            built.append((row, _row_metadata(row, base_meta, plan.metadata)))
    return built
