"""The rows of a notification: the one builder both writers (``write`` and ``bulk``) use, so
the rows of ``notify()`` and ``notify_many()`` cannot drift apart."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

from notifyplatform.choices import Channel
from templates.rich import dropped_parts

from ...models import DeliveryStatus, RecipientType
from ...types import Decision
from .address import _Address
from .plan import _Rendered

RECIPIENT_TYPES: dict[str, str] = {
    Channel.EMAIL: RecipientType.EMAIL,
    Channel.SMS: RecipientType.PHONE,
    Channel.PUSH: RecipientType.DEVICE_TOKEN,
    Channel.WEBHOOK: RecipientType.WEBHOOK,
    Channel.IN_APP: RecipientType.USER,
}
_PENDING = DeliveryStatus.PENDING
_NO_RULE = Decision()  # read only: "no preference rule applied"
_NO_EXTRA = _Address("")  # read only: an address with no extra metadata keys


def _primary_channel(channels: list[str]) -> str:
    return Channel.IN_APP if Channel.IN_APP in channels else channels[0]


def _notification_fields(
    *,
    channels: list[str],
    rendered: dict[str, _Rendered],
    category: str,
    priority: str,
    context: dict[str, Any],
    metadata: dict[str, Any],
    type_name: str | None,
    scheduled_at: datetime | None,
    expires_at: datetime | None,
    action_url: str | None,
    action_label: str | None,
) -> dict[str, Any]:
    """The recipient-independent field values of a ``notifications`` row (model attnames)."""
    primary = _primary_channel(channels)
    shown = rendered[primary]
    title = (shown.message.subject or shown.message.text)[:255]
    if len(title) == 255:
        title = title[:254] + "…"
    if action_label is None and shown.template is not None:
        action_label = (shown.template.provider_specific_config or {}).get("action_label")
    return {
        "notification_type": primary,
        "category": category,
        "priority": priority,
        "title": title,
        "message": shown.message.text,
        "rich_content": shown.rich
        if shown.rich
        else ({"html": shown.message.html} if shown.message.html else None),
        "action_url": action_url,
        "action_label": action_label if action_url else None,
        "template_id": shown.template.pk if shown.template is not None else None,
        "template_data": context or None,
        "delivery_channels": channels,
        "scheduled_at": scheduled_at,
        "expires_at": expires_at,
        "metadata": metadata or None,
        "event_type": type_name,
    }


def _base_delivery_metadata(
    *,
    rendered: _Rendered,
    type_name: str | None,
    category: str,
    priority: str,
    locale: str,
    action_url: str | None,
) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "message": {
            "subject": rendered.message.subject,
            "text": rendered.message.text,
            "html": rendered.message.html,
        },
        "event_type": type_name,
        "category": category,
        "priority": priority,
        "locale": locale,
        "template_id": rendered.template.pk if rendered.template else None,
    }
    if action_url:
        meta["action_url"] = action_url
    if not rendered.track_links:
        meta["track_links"] = False
    if rendered.rich:
        meta["rich_content"] = rendered.rich
        channel = rendered.channel
        dropped = dropped_parts(channel, rendered.rich)
        if dropped:
            meta["rich_content_dropped"] = dropped
            meta["rules"] = [
                {"rule": "rich_content_dropped", "channel": channel, "dropped": dropped}
            ]
    return meta


def _finish_delivery_metadata(
    meta: dict[str, Any],
    *,
    address: _Address,
    decision: Decision,
    idempotency_key: str | None,
    metadata: dict[str, Any],
) -> dict[str, Any]:
    """Add the per-delivery keys (in the order notify() always wrote them)."""
    if address.extra:
        meta.update(address.extra)
    if decision.rules:
        meta["decision"] = decision.rule
        meta["rules"] = [*decision.rules, *meta.get("rules", ())]
    if decision.preferred_providers:
        meta["preferred_providers"] = decision.preferred_providers
    if decision.blocked_providers:
        meta["blocked_providers"] = decision.blocked_providers
    if idempotency_key:
        meta["idempotency_key"] = idempotency_key
    if metadata:
        meta["data"] = metadata
    return meta


def _delivery_constants(
    channel: str, *, expires_at: datetime | None, max_retries: int
) -> dict[str, Any]:
    """The fields of a delivery row shared by every recipient of one call (model attnames)."""
    return {
        "delivery_type": channel,
        "provider_type": channel,
        "provider_name": "",
        "provider_priority": 0,
        "recipient_type": RECIPIENT_TYPES[channel],
        "retry_count": 0,
        "max_retries": max_retries,
        "expires_at": expires_at,
    }


class _DeliveryRow(NamedTuple):
    """The per-recipient fields of one delivery row."""

    channel: str
    recipient: str
    status: str
    scheduled_at: datetime
    meta: dict[str, Any] | None  # None: the channel's plain metadata (see _row_metadata)


def _delivery_row(
    channel: str,
    address: _Address,
    decision: Decision | None,
    *,
    due: datetime,
    base_meta: dict[str, Any],
    idempotency_key: str | None,
    metadata: dict[str, Any],
) -> _DeliveryRow:
    """One channel's delivery for one recipient. ``decision`` None: no rule applied (see
    ``plan._decision``): pending at ``due``. ``base_meta`` is only copied, never changed."""
    if decision is None:
        if not address.extra and not idempotency_key:  # the common case, kept cheap
            return _DeliveryRow(channel, address.recipient or "", _PENDING, due, None)
        decision = _NO_RULE
    status = DeliveryStatus.SKIPPED if decision.action == "skip" else DeliveryStatus.PENDING
    meta: dict[str, Any] | None = None
    if (
        address.extra
        or decision.rules
        or decision.preferred_providers
        or decision.blocked_providers
        or idempotency_key
    ):
        meta = _finish_delivery_metadata(
            dict(base_meta),
            address=address,
            decision=decision,
            idempotency_key=idempotency_key,
            metadata=metadata,
        )
    return _DeliveryRow(
        channel, address.recipient or "", status, decision.scheduled_at or due, meta
    )


def _plain_metadata(base_meta: dict[str, Any], metadata: dict[str, Any]) -> dict[str, Any]:
    """The metadata of a row no rule, address extra or idempotency key touched."""
    return _finish_delivery_metadata(
        dict(base_meta),
        address=_NO_EXTRA,
        decision=_NO_RULE,
        idempotency_key=None,
        metadata=metadata,
    )


def _row_metadata(
    row: _DeliveryRow, base_meta: dict[str, Any], metadata: dict[str, Any]
) -> dict[str, Any]:
    return row.meta if row.meta is not None else _plain_metadata(base_meta, metadata)
