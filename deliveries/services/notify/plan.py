"""Plan one notification: render per channel and language, address, and apply preferences —
every read, no write."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from templates.models import NotificationTemplate
from templates.rendering import RenderedMessage, TemplateError, render_message
from templates.rich import RichContentError, render_rich_template
from templates.services import TemplateNotFoundError, template_render, templates_for_channels

from ... import errors
from ...errors import NotifyError
from ...models import UserNotificationPreference
from ...preferences import decide, preferences_for, suppression_rule
from ...selectors import suppression_reasons
from ...types import Decision
from .address import _Address, _push_devices, _recipient_address, _user_addresses
from .validate import _Common, _common, normalize_phone, valid_email


@dataclass
class _Rendered:
    template: NotificationTemplate | None
    message: RenderedMessage
    # the call's rich_content, else the template's rich_content_template rendered
    rich: dict[str, Any] | None = None
    channel: str = ""

    @property
    def track_links(self) -> bool:
        return self.template is None or bool(self.template.track_links)


def _template_rich(
    template: NotificationTemplate, context: Mapping[str, Any]
) -> dict[str, Any] | None:
    try:
        return render_rich_template(
            template.rich_content_template, context, template.template_variables
        )
    except RichContentError as exc:
        raise NotifyError(
            exc.code,
            f"template {template.template_key!r}: {exc.field}: {exc.message}",
            "template_key",
        ) from exc


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
    rich_content: dict[str, Any] | None = None,
) -> dict[str, _Rendered]:
    if template_key:
        try:
            chosen = templates_for_channels(template_key, channels, locale)
        except TemplateNotFoundError as exc:
            raise NotifyError(errors.TEMPLATE_NOT_FOUND, exc.message, "template_key") from exc
        rendered = {}
        for channel in channels:
            template = chosen[channel]
            try:
                rendered[channel] = _Rendered(
                    template,
                    template_render(template, context),
                    rich_content if rich_content is not None else _template_rich(template, context),
                    channel,
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
    return {channel: _Rendered(None, text, rich_content, channel) for channel in channels}


@dataclass
class _Plan:
    type_name: str | None
    channels: list[str]
    category: str
    priority: str
    rendered: dict[str, _Rendered]
    addresses: dict[str, list[_Address]]  # push: one per active device
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
    # the (channel, address) pairs that are suppressed → the suppression's reason (push: one
    # address per device)
    suppressed: Mapping[tuple[str, str], str] = field(default_factory=dict)


def _render_common(common: _Common, locale: str | None) -> dict[str, _Rendered]:
    return _render(
        template_key=common.template_key,
        title=common.title,
        message=common.message,
        channels=common.channels,
        locale=locale,
        context=common.render_context,
        rich_content=common.rich_content,
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
        devices = _push_devices([recipient], channel_list).get(recipient.pk, [])
        addresses = {
            channel: _user_addresses(
                recipient,
                channel,
                webhook_url=common.webhook_url,
                prefs=prefs,
                metadata=common.metadata,
                devices=devices,
            )
            for channel in channel_list
        }
    else:
        addresses = {
            channel: [_recipient_address(recipient, channel, webhook_url=common.webhook_url)]
            for channel in channel_list
        }
    suppressed = suppression_reasons(
        [
            (channel, address.recipient)
            for channel, channel_addresses in addresses.items()
            for address in channel_addresses
            if address.recipient is not None
        ],
        common.category,
    )
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
        suppressed=suppressed,
    )


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
    suppressed: str | None = None,
) -> Decision | None:
    """What applies to one channel's delivery; None when nothing does (an address and no
    preference row: pending at ``due``, what ``decide(None, ...)`` would say). A suppressed
    address (``suppressed``: its suppression's reason, looked up by the caller in bulk) is
    skipped whatever the preferences say: decision ``unsubscribed`` when the address was
    unsubscribed (an address-level one-click opt-out, an ESP's unsubscribe), else
    ``suppressed``."""
    if address.recipient is None:
        decision = Decision(action="skip", scheduled_at=due)
        decision.record(address.skip_rule or {"rule": "no_address", "channel": channel})
        return decision
    if suppressed:
        decision = Decision(action="skip", scheduled_at=due)
        decision.record(suppression_rule(suppressed, channel))
        return decision
    if is_user and pref is not None:
        return decide(
            pref,
            user=user,
            type_name=type_name or "*",
            channel=channel,
            priority=priority,
            when=due,
            user_timezone=user_timezone,
        )
    return None
