"""Address each channel of a notification: a user's own addresses, or the caller's."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from notifyplatform.choices import Channel
from users.models import Device
from users.selectors import devices_by_user

from ... import errors
from ...errors import NotifyError
from ...models import UserNotificationPreference
from ...types import Recipient
from .validate import normalize_phone, valid_email, valid_url


@dataclass
class _Address:
    recipient: str | None  # None → no address: the delivery is recorded as skipped
    skip_rule: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _push_address(
    prefs: Mapping[str, UserNotificationPreference], metadata: Mapping[str, Any]
) -> _Address:
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


def _device_address(device: Device) -> _Address:
    """One registered device's push address; ``device_id`` lets a provider's ``UNREGISTERED``
    (410) answer disable it, ``subscription`` is what the Web Push adapter encrypts for."""
    if device.kind == Device.Kind.WEBPUSH and isinstance(device.subscription, dict):
        return _Address(
            device.address[:255],
            extra={"device_id": device.pk, "subscription": device.subscription},
        )
    return _Address(device.address[:255], extra={"device_id": device.pk})


def _push_devices(users: Iterable[Any], channels: Sequence[str]) -> dict[Any, list[Device]]:
    """The registered devices of ``users`` (one query), when push is asked for."""
    if Channel.PUSH not in channels:
        return {}
    return devices_by_user(user.pk for user in users)


def _user_addresses(
    user: Any,
    channel: str,
    *,
    webhook_url: str | None,
    prefs: Mapping[str, UserNotificationPreference],
    metadata: Mapping[str, Any],
    devices: Sequence[Device] = (),
) -> list[_Address]:
    """A channel's addresses: one per active registered device for push (unless the caller
    named a ``device_token``/``push_subscription`` in the metadata), else the one address.
    A user whose registered devices are all disabled gets none: the token in an old
    preference row is most likely the very one a provider said is gone."""
    if (
        channel == Channel.PUSH
        and devices
        and not metadata.get("device_token")
        and not metadata.get("push_subscription")
    ):
        active = [_device_address(device) for device in devices if device.disabled_at is None]
        return active or [
            _Address(
                None,
                {"rule": "no_address", "channel": channel, "reason": "every device is disabled"},
            )
        ]
    return [_user_address(user, channel, webhook_url=webhook_url, prefs=prefs, metadata=metadata)]


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
