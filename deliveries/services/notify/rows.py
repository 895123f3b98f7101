"""The rows of a notification: the one builder both writers (``write`` and ``bulk``) use, so
the rows of ``notify()`` and ``notify_many()`` cannot drift apart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from notifyplatform.choices import Channel

from ...types import Decision
from .address import _Address
from .plan import _Rendered


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
        "rich_content": {"html": shown.message.html} if shown.message.html else None,
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
        meta["rules"] = decision.rules
    if decision.preferred_providers:
        meta["preferred_providers"] = decision.preferred_providers
    if decision.blocked_providers:
        meta["blocked_providers"] = decision.blocked_providers
    if idempotency_key:
        meta["idempotency_key"] = idempotency_key
    if metadata:
        meta["data"] = metadata
    return meta
