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


def _existing(idempotency_key: str, *, is_user: bool) -> NotifyResult | None:
    if is_user:
        notification = Notification.objects.filter(idempotency_key=idempotency_key).first()
        if notification is None:
            return None
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
        found = _existing(idempotency_key, is_user=is_user)
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
                found = _existing(idempotency_key, is_user=is_user)
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
        found = _existing(idempotency_key, is_user=is_user)
        if found is None:
            raise
        return found


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


def _plan(
    recipient: Any,
    *,
    is_user: bool,
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
) -> _Plan:
    """Validate, render and address — every read, no write."""
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

    render_context = dict(context)
    if action_url and "action_url" not in render_context:
        render_context["action_url"] = action_url
    rendered = _render(
        template_key=template_key,
        title=title,
        message=message,
        channels=channel_list,
        locale=locale,
        context=render_context,
    )
    prefs: dict[str, UserNotificationPreference] = {}
    if is_user:
        prefs = preferences_for(recipient, type_name or "*", channel_list)
        addresses = {
            channel: _user_address(
                recipient, channel, webhook_url=webhook_url, prefs=prefs, metadata=metadata
            )
            for channel in channel_list
        }
    else:
        addresses = {
            channel: _recipient_address(recipient, channel, webhook_url=webhook_url)
            for channel in channel_list
        }
    return _Plan(
        type_name=type_name,
        channels=channel_list,
        category=category,
        priority=priority,
        rendered=rendered,
        addresses=addresses,
        context=context,
        metadata=metadata,
        scheduled_at=scheduled_at,
        expires_at=expires_at,
        action_url=action_url,
        action_label=action_label,
        locale=locale,
        timezone=tz_name,
        region=region,
        prefs=prefs,
    )


def _primary_channel(channels: list[str]) -> str:
    return Channel.IN_APP if Channel.IN_APP in channels else channels[0]


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
        primary = _primary_channel(plan.channels)
        shown = plan.rendered[primary]
        title = (shown.message.subject or shown.message.text)[:255]
        if len(title) == 255:
            title = title[:254] + "…"
        action_label = plan.action_label
        if action_label is None and shown.template is not None:
            action_label = (shown.template.provider_specific_config or {}).get("action_label")
        notification = Notification.objects.create(
            user=recipient,
            notification_type=primary,
            category=plan.category,
            priority=plan.priority,
            auction=auction,
            bid=bid,
            item=item,
            title=title,
            message=shown.message.text,
            rich_content={"html": shown.message.html} if shown.message.html else None,
            action_url=plan.action_url,
            action_label=action_label if plan.action_url else None,
            template=shown.template,
            template_data=plan.context or None,
            delivery_channels=plan.channels,
            scheduled_at=plan.scheduled_at,
            expires_at=plan.expires_at,
            status=NotificationStatus.PENDING,
            metadata=plan.metadata or None,
            event_type=plan.type_name,
            idempotency_key=idempotency_key,
        )

    rows: list[NotificationDelivery] = []
    for channel in plan.channels:
        address = plan.addresses[channel]
        rendered = plan.rendered[channel]
        decision: Decision
        if address.recipient is None:
            decision = Decision(action="skip", scheduled_at=due)
            decision.record(address.skip_rule or {"rule": "no_address", "channel": channel})
        elif is_user:
            decision = decide(
                plan.prefs.get(channel),
                user=recipient,
                type_name=plan.type_name or "*",
                channel=channel,
                priority=plan.priority,
                when=due,
                user_timezone=plan.timezone,
            )
        else:
            decision = Decision(scheduled_at=due)
        delivery_metadata: dict[str, Any] = {
            "message": {
                "subject": rendered.message.subject,
                "text": rendered.message.text,
                "html": rendered.message.html,
            },
            "event_type": plan.type_name,
            "category": plan.category,
            "priority": plan.priority,
            "locale": plan.locale,
            "template_id": rendered.template.pk if rendered.template else None,
        }
        if plan.action_url:
            delivery_metadata["action_url"] = plan.action_url
        if address.extra:
            delivery_metadata.update(address.extra)
        if decision.rules:
            delivery_metadata["decision"] = decision.rule
            delivery_metadata["rules"] = decision.rules
        if decision.preferred_providers:
            delivery_metadata["preferred_providers"] = decision.preferred_providers
        if decision.blocked_providers:
            delivery_metadata["blocked_providers"] = decision.blocked_providers
        if not is_user and idempotency_key:
            delivery_metadata["idempotency_key"] = idempotency_key
        if plan.metadata:
            delivery_metadata["data"] = plan.metadata
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


def notify_many(
    recipients: list[Any], *, idempotency_prefix: str | None = None, **kwargs: Any
) -> list[NotifyResult]:
    """Fan one notification out to many users, each with its own rows and preferences.

    Each recipient gets ``idempotency_key = f"{idempotency_prefix}:{user.pk}"`` when a
    prefix is given, so a re-run fan-out (e.g. a batch job resumed after a crash) skips those
    already done. One ``notify()`` per recipient inside one transaction (one commit), the due
    sends enqueued in chunks after commit; a COPY-based bulk insert is the next step for
    very large fan-outs.
    """
    from .sending import enqueue_deliveries

    kwargs.pop("idempotency_key", None)
    results: list[NotifyResult] = []
    due_ids: list[int] = []
    token = _collected_due_ids.set(due_ids)
    try:
        with transaction.atomic():
            for recipient in recipients:
                key = f"{idempotency_prefix}:{recipient.pk}" if idempotency_prefix else None
                results.append(notify(recipient, idempotency_key=key, **kwargs))
            if due_ids:
                transaction.on_commit(lambda: enqueue_deliveries(due_ids))
    finally:
        _collected_due_ids.reset(token)
    return results
