"""The end-user preference page's reads and writes, on top of the preference services.

What the page shows per channel: a toggle per notification type (on when the row that would
decide it — ``preferences.preference_grid``, the same resolution ``notify`` uses — is
enabled, or when no row applies), and the channel's quiet hours, time zone and frequency cap.
The channel's settings live in the user's ``*`` row for that channel.

Saving writes only the user's own rows, each through ``preference_create`` /
``preference_update`` (the API's services, so the same rules and errors):

- the channel's settings go to its ``*`` row (created only when a setting is given, so an
  untouched page never shadows the platform's defaults);
- a type whose toggle differs from what would otherwise decide it gets a type row with that
  ``is_enabled``; an existing type row gets the new ``is_enabled``;
- a type row the page owns (written by it, or carrying no settings of its own, such as an
  unsubscribe's opt-out) also takes the channel's settings, so switching a type off and on
  again never drops quiet hours. Rows with their own settings (made through the API) keep
  them.

Everything is validated first and written in one transaction: bad input writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from notifyplatform.choices import Channel
from templates.services import template_type_list
from users.models import Device
from users.selectors import device_list
from users.services import device_delete

from ..errors import NotifyError
from ..models import UserNotificationPreference
from ..preferences import ANY_TYPE, preference_grid
from .preferences import preference_create, preference_update, preference_validate

MANAGED_BY = "preference_page"
SETTING_FIELDS = (
    "quiet_hours_start",
    "quiet_hours_end",
    "timezone",
    "frequency_limit",
    "frequency_period",
)
_OWN_SETTINGS = (*SETTING_FIELDS[:4], "preferred_providers", "blocked_providers")


class PreferencePageError(Exception):
    """Bad input: ``errors`` maps ``<channel>-<field>`` to a message; nothing was written."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class ChannelState:
    channel: str
    label: str
    enabled: dict[str, bool] = field(default_factory=dict)  # type → on
    custom: set[str] = field(default_factory=set)  # types with a row of their own settings
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass
class PageState:
    types: list[str]
    channels: list[ChannelState]
    devices: list[Device]


def page_channels() -> list[tuple[str, str]]:
    return [(str(value), str(label)) for value, label in Channel.choices]


def _user_rows(user: Any) -> dict[tuple[str, str], UserNotificationPreference]:
    rows = UserNotificationPreference.objects.filter(user=user)
    return {(r.invitation_type, r.delivery_method): r for r in rows}


def _owned(row: UserNotificationPreference) -> bool:
    extras = row.delivery_preferences or {}
    if extras.get("managed_by") == MANAGED_BY:
        return True
    return all(getattr(row, name) in (None, []) for name in _OWN_SETTINGS)


def _settings_of(row: UserNotificationPreference | None) -> dict[str, Any]:
    if row is None:
        return {name: None for name in SETTING_FIELDS} | {"frequency_period": "daily"}
    return {name: getattr(row, name) for name in SETTING_FIELDS}


def preference_page_state(user: Any) -> PageState:
    """What the page shows to ``user`` (only ``user``'s rows and devices)."""
    types = template_type_list()
    channels = page_channels()
    grid = preference_grid(user, types, [c for c, _label in channels])
    own = _user_rows(user)
    states = []
    for channel, label in channels:
        state = ChannelState(channel, label, settings=_settings_of(own.get((ANY_TYPE, channel))))
        for type_name in types:
            row = grid.get((type_name, channel))
            state.enabled[type_name] = row is None or row.is_enabled
            mine = own.get((type_name, channel))
            if mine is not None and not _owned(mine):
                state.custom.add(type_name)
        states.append(state)
    return PageState(types=types, channels=states, devices=list(device_list(user=user)))


def _has_settings(settings: dict[str, Any]) -> bool:
    return any(settings.get(name) not in (None, "") for name in SETTING_FIELDS[:4])


def _validate(settings_by_channel: dict[str, dict[str, Any]]) -> None:
    errors: dict[str, str] = {}
    for channel, settings in settings_by_channel.items():
        try:
            preference_validate(dict(settings))
        except NotifyError as exc:
            errors[f"{channel}-{exc.field or ''}"] = exc.message
    if errors:
        raise PreferencePageError(errors)


@transaction.atomic
def preference_page_save(
    *,
    user: Any,
    settings_by_channel: dict[str, dict[str, Any]],
    enabled: set[tuple[str, str]],
) -> None:
    """Apply the page's form: ``settings_by_channel`` (channel → quiet hours, time zone,
    cap) and ``enabled`` ((type, channel) pairs switched on; every other pair is off)."""
    _validate(settings_by_channel)
    types = template_type_list()
    own = _user_rows(user)
    for channel, settings in settings_by_channel.items():
        settings = {**settings, "frequency_period": settings.get("frequency_period") or "daily"}
        star = own.get((ANY_TYPE, channel))
        if star is not None:
            preference_update(preference=star, data=dict(settings))
        elif _has_settings(settings):
            preference_create(
                user=user,
                data={
                    "invitation_type": ANY_TYPE,
                    "delivery_method": channel,
                    **settings,
                    "delivery_preferences": {"managed_by": MANAGED_BY},
                },
            )
        fallback = preference_grid(user, types, [channel])
        for type_name in types:
            want = (type_name, channel) in enabled
            row = own.get((type_name, channel))
            if row is not None:
                data: dict[str, Any] = {"is_enabled": want}
                if _owned(row):
                    data.update(settings)
                if any(getattr(row, k) != v for k, v in data.items()):
                    preference_update(preference=row, data=data)
                continue
            decider = fallback.get((type_name, channel))
            if (decider is None or decider.is_enabled) == want:
                continue
            preference_create(
                user=user,
                data={
                    "invitation_type": type_name,
                    "delivery_method": channel,
                    "is_enabled": want,
                    **settings,
                    "delivery_preferences": {"managed_by": MANAGED_BY},
                },
            )


def preference_page_remove_device(*, user: Any, device_id: int) -> bool:
    """Remove one of ``user``'s devices; False when ``user`` has no such device."""
    device = device_list(user=user).filter(pk=device_id).first()
    if device is None:
        return False
    device_delete(device=device)
    return True
