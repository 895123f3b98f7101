"""``notify()``: compose one notification and its deliveries, in one transaction.

Steps: idempotency check → validate input → pick and render a template per channel and
language → address each channel → apply preferences → write the ``notifications`` row and
one ``notification_deliveries`` row per channel → on commit, enqueue the due sends.

Deliveries are written un-routed (``provider_name=""``, ``provider_priority=0``): the provider
is chosen at send time, when health, circuit and rate limits are current, and recorded then.
The rendered message of each channel is kept in ``delivery_metadata["message"]`` so the send
never re-renders (a template edited in between cannot change a queued message).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator, URLValidator
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from psycopg import errors as psycopg_errors

from notifyplatform.bulk import COPY_NULL, copy_escape, copy_rows, copy_text, loaded_instance
from notifyplatform.choices import Channel, Priority
from templates import catalog
from templates.models import NotificationTemplate
from templates.rendering import (
    RenderedMessage,
    TemplateError,
    render_message,
)
from templates.services import (
    TemplateNotFoundError,
    template_render,
    template_type_of,
    templates_for_channels,
)

from .. import errors
from ..errors import NotifyError
from ..models import (
    DeliveryStatus,
    Notification,
    NotificationCategory,
    NotificationDelivery,
    NotificationStatus,
    RecipientType,
    UserNotificationPreference,
)
from ..preferences import decide, preferences_for
from ..types import Decision, NotifyResult, Recipient
from .status import notification_status_from

logger = logging.getLogger(__name__)

RECIPIENT_TYPES = {
    Channel.EMAIL: RecipientType.EMAIL,
    Channel.SMS: RecipientType.PHONE,
    Channel.PUSH: RecipientType.DEVICE_TOKEN,
    Channel.WEBHOOK: RecipientType.WEBHOOK,
    Channel.IN_APP: RecipientType.USER,
}
# Set by notify_many(): due delivery ids are collected and enqueued once, in chunks, when the
# whole fan-out commits, instead of one broker publish per notification.
_collected_due_ids: ContextVar[list[int] | None] = ContextVar("_collected_due_ids", default=None)
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
class _Address:
    recipient: str | None  # None → no address: the delivery is recorded as skipped
    skip_rule: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _push_address(prefs: Mapping[str, UserNotificationPreference], metadata: Mapping) -> _Address:
    options: dict[str, Any] = {}
    pref = prefs.get(Channel.PUSH)
    if pref is not None and pref.delivery_preferences:
        options.update(pref.delivery_preferences)
    for key in ("device_token", "push_subscription"):
        if metadata.get(key):
            options[key] = metadata[key]
    token = options.get("device_token")
    subscription = options.get("push_subscription") or options.get("subscription")
    if token:
        return _Address(str(token)[:255])
    if isinstance(subscription, dict) and subscription.get("endpoint"):
        return _Address(str(subscription["endpoint"])[:255], extra={"subscription": subscription})
    return _Address(None, {"rule": "no_address", "channel": "push", "reason": "no device token"})


def _user_address(
    user: Any,
    channel: str,
    *,
    webhook_url: str | None,
    prefs: Mapping[str, UserNotificationPreference],
    metadata: Mapping[str, Any],
) -> _Address:
    if channel == Channel.IN_APP:
        return _Address(str(user.pk))
    if channel == Channel.EMAIL:
        if user.email and valid_email(user.email):
            return _Address(user.email)
        return _Address(
            None, {"rule": "no_address", "channel": channel, "reason": "no valid email"}
        )
    if channel == Channel.SMS:
        phone = normalize_phone(user.phone) if user.phone else None
        if phone:
            return _Address(phone)
        reason = "invalid phone number" if user.phone else "no phone number"
        return _Address(None, {"rule": "no_address", "channel": channel, "reason": reason})
    if channel == Channel.PUSH:
        return _push_address(prefs, metadata)
    # webhook: the caller's URL, else the user's own endpoint
    url = webhook_url
    if url is None:
        pref = prefs.get(Channel.WEBHOOK)
        url = (pref.delivery_preferences or {}).get("url") if pref is not None else None
    if url and valid_url(str(url)):
        return _Address(str(url)[:255])
    return _Address(None, {"rule": "no_address", "channel": channel, "reason": "no webhook URL"})


def _recipient_address(recipient: Recipient, channel: str, *, webhook_url: str | None) -> _Address:
    """Addresses of an account-less recipient were given by the caller: bad ones are errors."""
    if channel == Channel.EMAIL:
        if not recipient.email:
            raise NotifyError(errors.INVALID_RECIPIENT, "required for the email channel", "email")
        return _Address(recipient.email)
    if channel == Channel.SMS:
        if not recipient.phone:
            raise NotifyError(errors.INVALID_RECIPIENT, "required for the sms channel", "phone")
        return _Address(normalize_phone(recipient.phone))
    if channel == Channel.WEBHOOK:
        if not webhook_url:
            raise NotifyError(
                errors.INVALID_RECIPIENT, "required for the webhook channel", "webhook_url"
            )
        return _Address(webhook_url)
    raise NotifyError(
        errors.INVALID_RECIPIENT,
        f"channel '{channel}' needs a user account; an address-only recipient has none",
        "channels",
    )


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


@dataclass
class _Rendered:
    template: NotificationTemplate | None
    message: RenderedMessage


def _template_error(exc: TemplateError, *, freeform: bool) -> NotifyError:
    if exc.variable:
        return NotifyError(exc.code, exc.message, f"context.{exc.variable}")
    field_name = {"subject_template": "title", "content_template": "message"}.get(
        exc.field or "", exc.field or "template_key"
    )
    return NotifyError(exc.code, exc.message, field_name if freeform else "template_key")


def _render(
    *,
    template_key: str | None,
    title: str | None,
    message: str | None,
    channels: list[str],
    locale: str | None,
    context: Mapping[str, Any],
) -> dict[str, _Rendered]:
    if template_key:
        try:
            chosen = templates_for_channels(template_key, channels, locale)
        except TemplateNotFoundError as exc:
            raise NotifyError(errors.TEMPLATE_NOT_FOUND, exc.message, "template_key") from exc
        rendered = {}
        for channel in channels:
            try:
                rendered[channel] = _Rendered(
                    chosen[channel], template_render(chosen[channel], context)
                )
            except TemplateError as exc:
                raise _template_error(exc, freeform=False) from exc
        return rendered
    try:
        text = render_message(
            subject=title, content=message or "", html=None, declarations=None, context=context
        )
    except TemplateError as exc:
        raise _template_error(exc, freeform=True) from exc
    return {channel: _Rendered(None, text) for channel in channels}


# --------------------------------------------------------------------------------------------
# notify()
# --------------------------------------------------------------------------------------------


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
) -> NotifyResult:
    """Compose and store one notification (see the module docstring). Raises NotifyError for
    bad input, with nothing written. ``category``/``priority`` default to the catalogue's
    values for the type (else ``system``/``normal``); ``channels=None`` means the catalogue's
    default channels (``in_app`` for a free-form title/message)."""
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
            return found

    plan = _plan(
        recipient,
        is_user=is_user,
        template_key=template_key,
        title=title,
        message=message,
        context=context,
        channels=channels,
        category=category,
        priority=priority,
        scheduled_at=scheduled_at,
        expires_at=expires_at,
        action_url=action_url,
        action_label=action_label,
        metadata=metadata,
        webhook_url=webhook_url,
    )
    try:
        with transaction.atomic():
            if idempotency_key is not None:
                _idempotency_lock(idempotency_key)
                found = _existing(idempotency_key, is_user=is_user, recipient=recipient)
                if found is not None:
                    return found
            return _write(
                plan,
                recipient,
                is_user=is_user,
                idempotency_key=idempotency_key,
                auction=auction,
                bid=bid,
                item=item,
                invitation=invitation,
            )
    except IntegrityError:
        # A concurrent notify with the same key committed between our check and insert (the
        # advisory lock makes this rare; the unique constraint makes it impossible to miss).
        if idempotency_key is None:
            raise
        found = _existing(idempotency_key, is_user=is_user, recipient=recipient)
        if found is None:
            raise
        return found


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


@dataclass
class _Plan:
    type_name: str | None
    channels: list[str]
    category: str
    priority: str
    rendered: dict[str, _Rendered]
    addresses: dict[str, _Address]
    context: dict[str, Any]
    metadata: dict[str, Any]
    scheduled_at: datetime | None
    expires_at: datetime | None
    action_url: str | None
    action_label: str | None
    locale: str
    timezone: str
    region: str | None
    prefs: dict[str, UserNotificationPreference]


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
    render_context = dict(context)
    if action_url and "action_url" not in render_context:
        render_context["action_url"] = action_url
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
    )


def _render_common(common: _Common, locale: str | None) -> dict[str, _Rendered]:
    return _render(
        template_key=common.template_key,
        title=common.title,
        message=common.message,
        channels=common.channels,
        locale=locale,
        context=common.render_context,
    )


def _plan(recipient: Any, *, is_user: bool, **kwargs: Any) -> _Plan:
    """Validate, render and address — every read, no write."""
    common = _common(**kwargs)
    if is_user:
        locale = recipient.locale or "en"
        tz_name = recipient.timezone or "UTC"
        region = recipient.region or None
    else:
        if recipient.email is not None and not valid_email(recipient.email):
            raise NotifyError(errors.INVALID_RECIPIENT, "not a valid email address", "email")
        if recipient.phone is not None and normalize_phone(recipient.phone) is None:
            raise NotifyError(
                errors.INVALID_RECIPIENT,
                "not a valid phone number in international (E.164) form",
                "phone",
            )
        locale, tz_name, region = recipient.locale, recipient.timezone, recipient.region

    rendered = _render_common(common, locale)
    channel_list = common.channels
    prefs: dict[str, UserNotificationPreference] = {}
    if is_user:
        prefs = preferences_for(recipient, common.type_name or "*", channel_list)
        addresses = {
            channel: _user_address(
                recipient,
                channel,
                webhook_url=common.webhook_url,
                prefs=prefs,
                metadata=common.metadata,
            )
            for channel in channel_list
        }
    else:
        addresses = {
            channel: _recipient_address(recipient, channel, webhook_url=common.webhook_url)
            for channel in channel_list
        }
    return _Plan(
        type_name=common.type_name,
        channels=channel_list,
        category=common.category,
        priority=common.priority,
        rendered=rendered,
        addresses=addresses,
        context=common.context,
        metadata=common.metadata,
        scheduled_at=common.scheduled_at,
        expires_at=common.expires_at,
        action_url=common.action_url,
        action_label=common.action_label,
        locale=locale,
        timezone=tz_name,
        region=region,
        prefs=prefs,
    )


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


def _decision(
    address: _Address,
    channel: str,
    *,
    is_user: bool,
    pref: UserNotificationPreference | None,
    user: Any,
    type_name: str | None,
    priority: str,
    due: datetime,
    user_timezone: str,
) -> Decision:
    if address.recipient is None:
        decision = Decision(action="skip", scheduled_at=due)
        decision.record(address.skip_rule or {"rule": "no_address", "channel": channel})
        return decision
    if is_user:
        return decide(
            pref,
            user=user,
            type_name=type_name or "*",
            channel=channel,
            priority=priority,
            when=due,
            user_timezone=user_timezone,
        )
    return Decision(scheduled_at=due)


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
) -> NotifyResult:
    now = timezone.now()
    due = plan.scheduled_at if plan.scheduled_at and plan.scheduled_at > now else now
    notification: Notification | None = None
    if is_user:
        fields = _notification_fields(
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
        )
        notification = Notification.objects.create(
            user=recipient,
            auction=auction,
            bid=bid,
            item=item,
            status=NotificationStatus.PENDING,
            idempotency_key=idempotency_key,
            **fields,
        )

    rows: list[NotificationDelivery] = []
    for channel in plan.channels:
        address = plan.addresses[channel]
        rendered = plan.rendered[channel]
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
        )
        delivery_metadata = _finish_delivery_metadata(
            _base_delivery_metadata(
                rendered=rendered,
                type_name=plan.type_name,
                category=plan.category,
                priority=plan.priority,
                locale=plan.locale,
                action_url=plan.action_url,
            ),
            address=address,
            decision=decision,
            idempotency_key=None if is_user else idempotency_key,
            metadata=plan.metadata,
        )
        rows.append(
            NotificationDelivery(
                notification=notification,
                invitation=invitation,
                delivery_type=channel,
                provider_type=channel,
                provider_name="",
                provider_priority=0,
                recipient=address.recipient or "",
                recipient_type=RECIPIENT_TYPES[channel],
                status=DeliveryStatus.SKIPPED
                if decision.action == "skip"
                else DeliveryStatus.PENDING,
                delivery_metadata=delivery_metadata,
                retry_count=0,
                max_retries=_max_retries(),
                scheduled_at=decision.scheduled_at or due,
                expires_at=plan.expires_at,
                geographic_region=plan.region,
            )
        )
    # one row at a time, not bulk_create: the frequency cap of a later channel counts rows
    # written earlier in this same transaction, and a notification has at most five.
    for row in rows:
        row.save(force_insert=True)

    if notification is not None:
        status = notification_status_from([row.status for row in rows])
        if status != notification.status:
            notification.status = status
            Notification.objects.filter(pk=notification.pk).update(status=status)

    due_ids = [
        row.id for row in rows if row.status == DeliveryStatus.PENDING and row.scheduled_at <= now
    ]
    collected = _collected_due_ids.get()
    if collected is not None:
        collected.extend(due_ids)
    elif due_ids:
        from .sending import enqueue_deliveries

        transaction.on_commit(lambda: enqueue_deliveries(due_ids))
    return NotifyResult(notification, rows, created=True)


# --------------------------------------------------------------------------------------------
# notify_many(): the bulk path
# --------------------------------------------------------------------------------------------

_NOTIFY_KWARGS = (
    "template_key",
    "title",
    "message",
    "context",
    "channels",
    "category",
    "priority",
    "scheduled_at",
    "expires_at",
    "action_url",
    "action_label",
    "metadata",
    "webhook_url",
)
_RELATION_KWARGS = ("auction", "bid", "item", "invitation")


def _bulk_chunk() -> int:
    return int(getattr(settings, "NP_NOTIFY_BULK_CHUNK", 10_000))


def notify_many(
    recipients: list[Any], *, idempotency_prefix: str | None = None, **kwargs: Any
) -> list[NotifyResult]:
    """Fan one notification out to many users, each with its own rows and preferences.

    Each recipient gets ``idempotency_key = f"{idempotency_prefix}:{user.pk}"`` when a
    prefix is given, so a re-run fan-out (e.g. a batch job resumed after a crash) skips those
    already done (their results come back with ``created=False``). The rows are exactly the
    ones ``notify()`` would write for each recipient, but written in bulk: the template is
    rendered once per language, preferences are loaded in one query per chunk of
    ``NP_NOTIFY_BULK_CHUNK`` recipients, the rows go in with ``COPY``, and the due sends are
    enqueued in chunks after the one commit. Recipients whose preference has a frequency cap
    (a count of earlier deliveries under a lock) and address-only ``Recipient``s go through
    ``notify()`` one by one inside the same transaction.
    """
    from .sending import enqueue_deliveries

    kwargs.pop("idempotency_key", None)
    recipients = list(recipients)
    unknown = set(kwargs) - set(_NOTIFY_KWARGS) - set(_RELATION_KWARGS)
    if unknown:
        raise TypeError(f"notify_many() got unexpected keyword arguments {sorted(unknown)}")
    results: list[NotifyResult | None] = [None] * len(recipients)
    due_ids: list[int] = []
    token = _collected_due_ids.set(due_ids)
    try:
        with transaction.atomic():
            if recipients:
                common = _common(**{name: kwargs.get(name) for name in _NOTIFY_KWARGS})
                writer = _BulkWriter(
                    common,
                    prefix=idempotency_prefix,
                    relations={name: kwargs.get(name) for name in _RELATION_KWARGS},
                    due_ids=due_ids,
                )
                chunk = max(1, _bulk_chunk())
                for start in range(0, len(recipients), chunk):
                    part = recipients[start : start + chunk]
                    slow = writer.write(part, results, start)
                    for index in slow:
                        recipient = recipients[index]
                        key = writer.key_for(recipient)
                        results[index] = notify(recipient, idempotency_key=key, **kwargs)
            if due_ids:
                chunk_size = int(getattr(settings, "NP_NOTIFY_BULK_ENQUEUE_CHUNK", 500))
                transaction.on_commit(lambda: enqueue_deliveries(due_ids, chunk=chunk_size))
    finally:
        _collected_due_ids.reset(token)
    return [result for result in results if result is not None]


# COPY text format: backslash, tab, newline and carriage return are escaped; \N is NULL.
_N_VARIABLE = ("id", "user_id", "status", "idempotency_key")
_D_VARIABLE = (
    "id",
    "notification_id",
    "recipient",
    "status",
    "scheduled_at",
    "delivery_metadata",
    "geographic_region",
)


def _columns(model: type, first: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(attnames, columns) of a model's concrete fields, ``first`` at the front."""
    fields = [f for f in model._meta.concrete_fields]  # type: ignore[attr-defined]
    by_attname = {f.attname: f for f in fields}
    ordered = [by_attname[name] for name in first] + [f for f in fields if f.attname not in first]
    return [f.attname for f in ordered], [f.column for f in ordered]


@dataclass
class _LocaleShare:
    """What every recipient with one locale shares: rendering and pre-encoded row parts."""

    rendered: dict[str, _Rendered]
    n_values: dict[str, Any]  # notification attnames → value (shared part)
    n_text: str  # COPY text of the shared notification columns
    d_values: dict[str, dict[str, Any]]  # channel → delivery attnames → value (shared part)
    d_text: dict[str, str]
    base_meta: dict[str, dict[str, Any]]  # channel → delivery_metadata without per-row keys
    base_meta_text: dict[str, str]


class _BulkWriter:
    def __init__(
        self,
        common: _Common,
        *,
        prefix: str | None,
        relations: dict[str, Any],
        due_ids: list[int],
    ) -> None:
        self.common = common
        self.prefix = prefix
        self.due_ids = due_ids
        self.relations = relations
        self.type_name = common.type_name or "*"
        self.max_retries = _max_retries()
        self.shares: dict[str, _LocaleShare] = {}
        self.n_attnames, n_columns = _columns(Notification, _N_VARIABLE)
        self.d_attnames, d_columns = _columns(NotificationDelivery, _D_VARIABLE)
        self.n_sql = f"COPY notifications ({', '.join(n_columns)}) FROM STDIN"
        self.d_sql = f"COPY notification_deliveries ({', '.join(d_columns)}) FROM STDIN"
        self.n_columns = n_columns
        self.written: dict[str, NotifyResult] = {}  # idempotency key → result, this call

    def key_for(self, recipient: Any) -> str | None:
        return f"{self.prefix}:{recipient.pk}" if self.prefix else None

    # -- shared per locale ------------------------------------------------------------
    def share(self, locale: str, now: datetime) -> _LocaleShare:
        found = self.shares.get(locale)
        if found is not None:
            return found
        common = self.common
        rendered = _render_common(common, locale)
        relations = self.relations
        n_values = _notification_fields(
            channels=common.channels,
            rendered=rendered,
            category=common.category,
            priority=common.priority,
            context=common.context,
            metadata=common.metadata,
            type_name=common.type_name,
            scheduled_at=common.scheduled_at,
            expires_at=common.expires_at,
            action_url=common.action_url,
            action_label=common.action_label,
        )
        n_values.update(
            auction_id=relations["auction"].pk if relations["auction"] is not None else None,
            bid_id=relations["bid"].pk if relations["bid"] is not None else None,
            item_id=relations["item"].pk if relations["item"] is not None else None,
            sent_at=None,
            delivered_at=None,
            read_at=None,
            clicked_at=None,
            delivery_attempts=0,
            max_attempts=3,
            error_message=None,
            provider_response=None,
            is_read=False,
            is_archived=False,
            in_inbox=False,  # the trigger sets it when the in-app delivery goes out
            tags=None,
            created_at=now,
            updated_at=now,
        )
        n_text = "\t".join(
            copy_text(n_values[name]) for name in self.n_attnames[len(_N_VARIABLE) :]
        )
        invitation = relations["invitation"]
        d_values: dict[str, dict[str, Any]] = {}
        d_text: dict[str, str] = {}
        base_meta: dict[str, dict[str, Any]] = {}
        base_meta_text: dict[str, str] = {}
        for channel in common.channels:
            values = {
                "invitation_id": invitation.pk if invitation is not None else None,
                "delivery_type": channel,
                "provider_type": channel,
                "provider_name": "",
                "provider_priority": 0,
                "recipient_type": RECIPIENT_TYPES[channel],
                "provider_message_id": None,
                "provider_response": None,
                "error_message": None,
                "error_code": None,
                "cost_per_message": None,
                "retry_count": 0,
                "max_retries": self.max_retries,
                "sent_at": None,
                "delivered_at": None,
                "failed_at": None,
                "expires_at": common.expires_at,
                "created_at": now,
                "updated_at": now,
            }
            d_values[channel] = values
            d_text[channel] = "\t".join(
                copy_text(values[name]) for name in self.d_attnames[len(_D_VARIABLE) :]
            )
            meta = _base_delivery_metadata(
                rendered=rendered[channel],
                type_name=common.type_name,
                category=common.category,
                priority=common.priority,
                locale=locale,
                action_url=common.action_url,
            )
            plain = _finish_delivery_metadata(
                dict(meta),
                address=_Address("x"),
                decision=Decision(),
                idempotency_key=None,
                metadata=common.metadata,
            )
            base_meta[channel] = meta
            base_meta_text[channel] = copy_text(plain)
        share = _LocaleShare(
            rendered, n_values, n_text, d_values, d_text, base_meta, base_meta_text
        )
        self.shares[locale] = share
        return share

    # -- preferences ------------------------------------------------------------------
    def preferences(self, users: list[Any]) -> dict[Any, dict[str, UserNotificationPreference]]:
        """The winning row per (user, channel) — preferences_for() for many users at once.
        Key None holds the platform defaults (users without rows of their own)."""
        user_ids = list({user.pk for user in users})
        rows = UserNotificationPreference.objects.raw(
            "SELECT * FROM user_notification_preferences"
            " WHERE (user_id = ANY(%s) OR user_id IS NULL)"
            " AND invitation_type = ANY(%s) AND delivery_method = ANY(%s)",
            [user_ids, [self.type_name, "*"], list(self.common.channels)],
        )
        ranked: dict[Any, dict[str, tuple[int, UserNotificationPreference]]] = {}
        platform: dict[str, tuple[int, UserNotificationPreference]] = {}
        for row in rows:
            rank = (0 if row.user_id is not None else 2) + (0 if row.invitation_type != "*" else 1)
            target = platform if row.user_id is None else ranked.setdefault(row.user_id, {})
            current = target.get(row.delivery_method)
            if current is None or rank < current[0]:
                target[row.delivery_method] = (rank, row)
        result: dict[Any, dict[str, UserNotificationPreference]] = {
            None: {channel: row for channel, (_r, row) in platform.items()}
        }
        for user_id, own in ranked.items():
            merged = dict(platform)
            for channel, item in own.items():
                if channel not in merged or item[0] < merged[channel][0]:
                    merged[channel] = item
            result[user_id] = {channel: row for channel, (_r, row) in merged.items()}
        return result

    def existing(self, keys: list[str]) -> dict[str, NotifyResult]:
        if not keys:
            return {}
        found = {
            n.idempotency_key: n
            for n in Notification.objects.raw(
                "SELECT * FROM notifications WHERE idempotency_key = ANY(%s)", [keys]
            )
        }
        if not found:
            return {}
        by_notification: dict[Any, list[NotificationDelivery]] = {n.pk: [] for n in found.values()}
        for row in NotificationDelivery.objects.raw(
            "SELECT * FROM notification_deliveries WHERE notification_id = ANY(%s) ORDER BY id",
            [list(by_notification)],
        ):
            by_notification[row.notification_id].append(row)
        return {
            key: NotifyResult(n, by_notification[n.pk], created=False) for key, n in found.items()
        }

    def allocate_ids(self, count: int) -> list[int]:
        if not count:
            return []
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('notification_deliveries', 'id'))"
                " FROM generate_series(1, %s)",
                [count],
            )
            return [row[0] for row in cursor.fetchall()]

    # -- one chunk --------------------------------------------------------------------
    def write(self, users: list[Any], results: list[NotifyResult | None], offset: int) -> list[int]:
        """Write the rows of one chunk; returns the indexes left for notify() one by one."""
        common = self.common
        slow: list[int] = []
        fast: list[int] = []
        keys: list[str | None] = []
        for i, user in enumerate(users):
            if isinstance(user, Recipient):
                slow.append(offset + i)
                keys.append(None)
                continue
            if user is None or getattr(user, "pk", None) is None:
                raise NotifyError(errors.INVALID_RECIPIENT, "a saved user is required", "user_id")
            key = self.key_for(user)
            if key is not None and len(key) > 255:
                raise NotifyError(
                    errors.VALIDATION_ERROR, "must be 1 to 255 characters", "idempotency_key"
                )
            keys.append(key)
            fast.append(i)
        if not fast:
            return slow
        prefix_keys = [k for k in keys if k is not None and k not in self.written]
        existing = self.existing(prefix_keys)
        prefs_by_user = self.preferences([users[i] for i in fast])
        platform_prefs = prefs_by_user[None]

        now = timezone.now()
        due = common.scheduled_at if common.scheduled_at and common.scheduled_at > now else now
        due_text = due.isoformat()
        priority = common.priority
        channels = common.channels
        webhook_url = common.webhook_url
        metadata = common.metadata
        pending, skipped = DeliveryStatus.PENDING, DeliveryStatus.SKIPPED
        n_lines: list[str] = []
        # per new notification: (result index, key, user, notification id, share, deliveries)
        planned: list[tuple[int, str | None, Any, uuid.UUID, _LocaleShare, list[tuple]]] = []
        pending_keys: dict[str, int] = {}  # key planned in this chunk → index of the first
        repeats: list[tuple[int, str]] = []
        for i in fast:
            user = users[i]
            key = keys[i]
            index = offset + i
            if key is not None:
                done = self.written.get(key) or existing.get(key)
                if done is not None:
                    results[index] = NotifyResult(done.notification, done.deliveries, False)
                    continue
                if key in pending_keys:
                    repeats.append((index, key))
                    continue
            prefs = prefs_by_user.get(user.pk, platform_prefs)
            if any(pref.frequency_limit is not None for pref in prefs.values()):
                slow.append(index)  # the cap counts earlier rows under a lock: one by one
                if key is not None:
                    pending_keys[key] = index
                continue
            locale = user.locale or "en"
            share = self.share(locale, now)
            tz_name = user.timezone or "UTC"
            region = user.region or None
            rows: list[tuple] = []
            statuses: list[str] = []
            for channel in channels:
                pref = prefs.get(channel)
                address = _user_address(
                    user, channel, webhook_url=webhook_url, prefs=prefs, metadata=metadata
                )
                if address.recipient is None or pref is not None:
                    decision = _decision(
                        address,
                        channel,
                        is_user=True,
                        pref=pref,
                        user=user,
                        type_name=common.type_name,
                        priority=priority,
                        due=due,
                        user_timezone=tz_name,
                    )
                    status = skipped if decision.action == "skip" else pending
                    scheduled = decision.scheduled_at or due
                    meta: dict[str, Any] | None = None
                    if (
                        address.extra
                        or decision.rules
                        or decision.preferred_providers
                        or (decision.blocked_providers)
                    ):
                        meta = _finish_delivery_metadata(
                            dict(share.base_meta[channel]),
                            address=address,
                            decision=decision,
                            idempotency_key=None,
                            metadata=metadata,
                        )
                else:
                    status, scheduled, meta = pending, due, None
                statuses.append(status)
                rows.append((channel, address.recipient or "", status, scheduled, meta, region))
            n_status = notification_status_from(statuses)
            notification_id = uuid.uuid4()
            n_lines.append(
                f"{notification_id}\t{user.pk}\t{n_status}\t"
                f"{copy_escape(key) if key is not None else COPY_NULL}\t{share.n_text}\n"
            )
            planned.append((index, key, user, notification_id, share, rows))
            if key is not None:
                pending_keys[key] = index

        ids = self.allocate_ids(sum(len(p[5]) for p in planned))
        d_lines_by_n: list[list[str]] = []
        cursor_id = 0
        for _index, _key, _user, notification_id, share, rows in planned:
            lines = []
            for channel, recipient, status, scheduled, meta, region in rows:
                meta_text = share.base_meta_text[channel] if meta is None else copy_text(meta)
                lines.append(
                    f"{ids[cursor_id]}\t{notification_id}\t{copy_escape(recipient)}\t{status}\t"
                    f"{due_text if scheduled is due else scheduled.isoformat()}\t{meta_text}\t"
                    f"{COPY_NULL if region is None else copy_escape(region)}\t{share.d_text[channel]}\n"
                )
                cursor_id += 1
            d_lines_by_n.append(lines)

        inserted = self.insert(n_lines, d_lines_by_n, planned)
        alias = connection.alias
        cursor_id = 0
        for position, (index, key, user, notification_id, share, rows) in enumerate(planned):
            first_id = cursor_id
            cursor_id += len(rows)
            if position not in inserted:
                continue
            notification = loaded_instance(
                Notification,
                {
                    **share.n_values,
                    "id": notification_id,
                    "user_id": user.pk,
                    "status": notification_status_from([r[2] for r in rows]),
                    "idempotency_key": key,
                },
                alias,
                {"user": user},
            )
            cache = {"notification": notification}
            deliveries = []
            for offset_id, (channel, recipient, status, scheduled, meta, region) in enumerate(rows):
                delivery_id = ids[first_id + offset_id]
                if meta is None:
                    meta = dict(share.base_meta[channel])
                    _finish_delivery_metadata(
                        meta,
                        address=_Address(recipient),
                        decision=Decision(),
                        idempotency_key=None,
                        metadata=metadata,
                    )
                deliveries.append(
                    loaded_instance(
                        NotificationDelivery,
                        {
                            **share.d_values[channel],
                            "id": delivery_id,
                            "notification_id": notification_id,
                            "recipient": recipient,
                            "status": status,
                            "scheduled_at": scheduled,
                            "delivery_metadata": meta,
                            "geographic_region": region,
                        },
                        alias,
                        cache,
                    )
                )
                if status == pending and scheduled <= now:
                    self.due_ids.append(delivery_id)
            result = NotifyResult(notification, deliveries, created=True)
            results[index] = result
            if key is not None:
                self.written[key] = result
        # keys another transaction wrote first (the ON CONFLICT path), then repeats of a key
        lost = [(p[0], p[1]) for n, p in enumerate(planned) if n not in inserted]
        if lost:
            found = self.existing([key for _i, key in lost if key is not None])
            for index, key in lost:
                results[index] = found[key]
                self.written[key] = found[key]
        for index, key in repeats:
            first = self.written.get(key)
            if first is not None:
                results[index] = NotifyResult(first.notification, first.deliveries, False)
            else:
                slow.append(index)  # its first occurrence went through notify()
        slow.sort()
        return slow

    def insert(
        self, n_lines: list[str], d_lines_by_n: list[list[str]], planned: list[tuple]
    ) -> set[int]:
        """COPY the rows; returns the positions (in ``planned``) whose notification went in.

        Without a prefix nothing can conflict. With one, keys already present were filtered
        out, so a unique violation means a concurrent writer took a key meanwhile: then the
        notifications go through a temp table and ``INSERT ... ON CONFLICT DO NOTHING``."""
        if not n_lines:
            return set()
        everything = set(range(len(planned)))
        if self.prefix is None:
            copy_rows(self.n_sql, n_lines)
            copy_rows(self.d_sql, [line for lines in d_lines_by_n for line in lines])
            return everything
        try:
            with transaction.atomic():
                copy_rows(self.n_sql, n_lines)
                copy_rows(self.d_sql, [line for lines in d_lines_by_n for line in lines])
            return everything
        except psycopg_errors.UniqueViolation:
            logger.info("notify_many: idempotency keys taken concurrently; using ON CONFLICT")
        with connection.cursor() as cursor:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS np_bulk_notifications"
                " (LIKE notifications INCLUDING DEFAULTS) ON COMMIT DROP"
            )
            cursor.execute("TRUNCATE np_bulk_notifications")
        copy_rows(self.n_sql.replace("COPY notifications", "COPY np_bulk_notifications"), n_lines)
        columns = ", ".join(self.n_columns)
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO notifications ({columns}) SELECT {columns} FROM"  # noqa: S608 - model columns
                " np_bulk_notifications ON CONFLICT (idempotency_key) DO NOTHING"
                " RETURNING notification_id"
            )
            went_in = {row[0] for row in cursor.fetchall()}
        inserted = {n for n, p in enumerate(planned) if p[3] in went_in}
        lines = [line for n in sorted(inserted) for line in d_lines_by_n[n]]
        if lines:
            copy_rows(self.d_sql, lines)
        return inserted
