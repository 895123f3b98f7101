"""Validate a notify() call's recipient-independent input (raises NotifyError; no read, no
write)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.utils import timezone

from notifyplatform.choices import Channel, Priority
from templates import catalog
from templates.rich import RichContentError, validate_rich_content
from templates.services import template_type_of

from ... import errors
from ...errors import NotifyError
from ...models import NotificationCategory

_email_validator = EmailValidator()
_url_validator = URLValidator(schemes=["http", "https"])


def _max_payload() -> int:
    return int(getattr(settings, "NP_NOTIFY_MAX_PAYLOAD_BYTES", 64 * 1024))


def _max_retries() -> int:
    return int(getattr(settings, "NP_DELIVERY_MAX_RETRIES", 3))


# --------------------------------------------------------------------------------------------
# Validation helpers (raise NotifyError; nothing written yet)
# --------------------------------------------------------------------------------------------


def normalize_phone(value: str) -> str | None:
    """E.164 form of ``value`` or None when it is not a valid international number."""
    try:
        parsed = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def valid_email(value: str) -> bool:
    try:
        _email_validator(value)
    except ValidationError:
        return False
    return True


def valid_url(value: str) -> bool:
    try:
        _url_validator(value)
    except ValidationError:
        return False
    return len(value) <= 500


def _check_size(name: str, value: Any) -> None:
    try:
        size = len(json.dumps(value, default=str).encode())
    except (TypeError, ValueError) as exc:
        raise NotifyError(
            errors.VALIDATION_ERROR, f"must be JSON-serialisable: {exc}", name
        ) from exc
    if size > _max_payload():
        raise NotifyError(
            errors.PAYLOAD_TOO_LARGE,
            f"is {size} bytes; the limit is {_max_payload()} bytes",
            name,
        )


def _check_channels(channels: Iterable[Any]) -> list[str]:
    if isinstance(channels, str) or not isinstance(channels, Iterable):
        raise NotifyError(errors.UNKNOWN_CHANNEL, "must be a list of channel names", "channels")
    result: list[str] = []
    for channel in channels:
        if channel not in Channel.values:
            raise NotifyError(
                errors.UNKNOWN_CHANNEL,
                f"unknown channel {channel!r}; expected one of {', '.join(Channel.values)}",
                "channels",
            )
        if channel not in result:
            result.append(channel)
    if not result:
        raise NotifyError(errors.UNKNOWN_CHANNEL, "at least one channel is required", "channels")
    return result


@dataclass
class _Common:
    """Everything of a notify() call that does not depend on the recipient (validated)."""

    template_key: str | None
    title: str | None
    message: str | None
    type_name: str | None
    channels: list[str]
    category: str
    priority: str
    context: dict[str, Any]
    render_context: dict[str, Any]
    metadata: dict[str, Any]
    scheduled_at: datetime | None
    expires_at: datetime | None
    action_url: str | None
    action_label: str | None
    webhook_url: str | None
    rich_content: dict[str, Any] | None = None


def _rich_content(value: object) -> dict[str, Any] | None:
    try:
        return validate_rich_content(value)
    except RichContentError as exc:
        raise NotifyError(exc.code, exc.message, exc.field) from exc


def _common(
    *,
    template_key: str | None,
    title: str | None,
    message: str | None,
    context: dict[str, Any] | None,
    channels: list[str] | None,
    category: str | None,
    priority: str | None,
    scheduled_at: datetime | None,
    expires_at: datetime | None,
    action_url: str | None,
    action_label: str | None,
    metadata: dict[str, Any] | None,
    webhook_url: str | None,
    rich_content: dict[str, Any] | None = None,
) -> _Common:
    """Validate the recipient-independent input (raises NotifyError; no read, no write)."""
    if template_key is not None and (not isinstance(template_key, str) or not template_key):
        raise NotifyError(errors.TEMPLATE_NOT_FOUND, "must be a template name", "template_key")
    if not template_key:
        if not message:
            raise NotifyError(
                errors.VALIDATION_ERROR,
                "either template_key or title and message are required",
                "template_key" if title is None else "message",
            )
        if not title:
            raise NotifyError(errors.VALIDATION_ERROR, "required with message", "title")
        if len(title) > 255:
            raise NotifyError(errors.VALIDATION_ERROR, "at most 255 characters", "title")
    type_name = template_type_of(template_key) if template_key else None
    context = dict(context or {})
    if not isinstance(context, dict):
        raise NotifyError(errors.VALIDATION_ERROR, "must be an object", "context")
    metadata = dict(metadata or {})
    _check_size("context", context)
    _check_size("metadata", metadata)
    if message is not None:
        _check_size("message", message)

    channel_list = _check_channels(
        channels if channels is not None else catalog.default_channels(type_name)
    )
    priority = priority or catalog.default_priority(type_name)
    if priority not in Priority.values:
        raise NotifyError(errors.VALIDATION_ERROR, f"unknown priority {priority!r}", "priority")
    category = category or catalog.default_category(type_name)
    if category not in NotificationCategory.values:
        raise NotifyError(errors.VALIDATION_ERROR, f"unknown category {category!r}", "category")
    for name, url in (("action_url", action_url), ("webhook_url", webhook_url)):
        if url is not None and not valid_url(url):
            raise NotifyError(errors.INVALID_URL, "must be a valid http(s) URL", name)
    if action_label is not None and len(action_label) > 100:
        raise NotifyError(errors.VALIDATION_ERROR, "at most 100 characters", "action_label")
    if scheduled_at is not None and timezone.is_naive(scheduled_at):
        raise NotifyError(errors.VALIDATION_ERROR, "must include a time zone", "scheduled_at")
    if expires_at is not None and timezone.is_naive(expires_at):
        raise NotifyError(errors.VALIDATION_ERROR, "must include a time zone", "expires_at")
    rich = _rich_content(rich_content)
    render_context = dict(context)
    if action_url and "action_url" not in render_context:
        render_context["action_url"] = action_url
    if action_url and "tracked_action_url" not in render_context:
        # the action URL itself: the sender turns it into the tracked link (links.py)
        render_context["tracked_action_url"] = action_url
    return _Common(
        template_key=template_key,
        title=title,
        message=message,
        type_name=type_name,
        channels=channel_list,
        category=category,
        priority=priority,
        context=context,
        render_context=render_context,
        metadata=metadata,
        scheduled_at=scheduled_at,
        expires_at=expires_at,
        action_url=action_url,
        action_label=action_label,
        webhook_url=webhook_url,
        rich_content=rich,
    )
