"""The bulk writer's working records: what one locale's recipients share, one planned
notification, and one chunk of ``notify_many()`` (see ``bulk.py``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from users.models import Device

from ...models import UserNotificationPreference
from ...types import NotifyResult
from .plan import _Rendered
from .rows import _DeliveryRow


@dataclass
class _LocaleShare:
    """What every recipient with one locale shares: rendering and pre-encoded row parts."""

    rendered: dict[str, _Rendered]
    n_values: dict[str, Any]  # notification attnames → value (shared part)
    n_text: str  # COPY text of the shared notification columns
    d_values: dict[str, dict[str, Any]]  # channel → delivery attnames → value (shared part)
    d_text: dict[str, str]
    base_meta: dict[str, dict[str, Any]]  # channel → delivery_metadata without per-row keys
    base_meta_text: dict[str, str]  # channel → COPY text of its plain metadata


@dataclass(slots=True)
class _Planned:
    """One new notification of a chunk, before it is written."""

    index: int  # in the results list
    key: str | None
    user: Any
    notification_id: uuid.UUID
    share: _LocaleShare
    region: str | None
    rows: list[_DeliveryRow]


@dataclass
class _Chunk:
    """One chunk: what was read for it, what goes in, and what is left to settle after."""

    now: datetime
    due: datetime  # when its deliveries are due (scheduled_at if later than now)
    existing: dict[str, NotifyResult]  # keys written before this call
    prefs: dict[Any, dict[str, UserNotificationPreference]]  # see _BulkWriter.preferences
    devices: dict[Any, list[Device]]  # user id → active push devices (one query a chunk)
    slow: list[int]  # indexes left for notify() one by one
    # user pk → its suppressed (channel, address) pairs → the suppression's reason
    suppressed: dict[Any, dict[tuple[str, str], str]] = field(default_factory=dict)
    planned: list[_Planned] = field(default_factory=list)
    n_lines: list[str] = field(default_factory=list)
    pending_keys: dict[str, int] = field(default_factory=dict)  # key → index of the first
    repeats: list[tuple[int, str]] = field(default_factory=list)  # later uses of a key
