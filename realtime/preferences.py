"""Per-connection real-time preferences (``websocket_connections.user_preferences``).

A client sets them in the connect URL (``?rate=5&event_types=a,b&categories=bid&
min_priority=high&latest=auction_price_changed&coalesce=1``), in ``hello
{preferences: {...}}`` or in a ``preferences`` frame (``{"type": "preferences",
"rate": 5, ...}``). A frame changes the fields it names (``null`` resets one to its
default) and is answered with a ``preferences`` frame carrying what is now in force;
a bad value is answered with an ``INVALID_PREFERENCES`` error frame naming the field
and the reason, and changes nothing.

The rules, in order, for every event a connection would otherwise receive (live,
replayed after ``since``, a pending-ack resend):

1. Filters: ``event_types`` (only these types), ``categories`` (only these), and
   ``min_priority`` (``low`` < ``normal`` < ``high`` < ``critical``; an event without a
   priority counts as ``normal``). A filtered event is not sent to this connection at
   all: the client asked not to receive it.
2. Rate: with ``rate`` = N the connection gets at most N deliveries a second. Events
   that arrive sooner are held and go out together at the next slot as coalesced
   frames (JSON arrays, ``coalesce`` is implied and cannot be turned off while a rate
   is set). Held events whose ``event_type`` is in ``latest`` (an auction price: only
   the newest matters) collapse to the newest per type and topics; the event kept
   lists the sequence numbers it replaces in ``"collapsed": [...]``, so nothing
   disappears without the client being told. ``ack_required`` events never collapse.
   At most ``NP_WS_MAX_HELD_EVENTS`` events are held: past that the held events are
   sent at once (the rate is exceeded rather than memory grown or events dropped).
3. Replies never overtake events: held events are sent before any other frame
   (``subscribed``, ``pong``, ``acked``...).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from django.utils import timezone

from . import conf
from .errors import RealtimeError
from .models import EventCategory, EventPriority, RealTimeEvent, WebsocketConnection

logger = logging.getLogger(__name__)

ERROR_CODE = "INVALID_PREFERENCES"
PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "critical": 3}
CATEGORIES = frozenset(EventCategory.values)
MAX_LIST = 50  # names in one filter list
MAX_RATE = 1000.0
MIN_RATE = 0.1
FIELDS = ("rate", "event_types", "categories", "min_priority", "latest", "coalesce")


@dataclass(frozen=True)
class Preferences:
    rate: float | None = None
    event_types: frozenset[str] | None = None
    categories: frozenset[str] | None = None
    min_priority: str | None = None
    latest: frozenset[str] = field(default_factory=frozenset)
    coalesce: bool = False

    def as_json(self) -> dict[str, Any]:
        """The stored and reported form."""
        rate = self.rate
        return {
            "rate": int(rate) if rate is not None and rate == int(rate) else rate,
            "event_types": sorted(self.event_types) if self.event_types is not None else None,
            "categories": sorted(self.categories) if self.categories is not None else None,
            "min_priority": self.min_priority,
            "latest": sorted(self.latest),
            "coalesce": self.coalesce,
        }

    @property
    def filters(self) -> bool:
        return (
            self.event_types is not None
            or self.categories is not None
            or self.min_priority is not None
        )

    def _passes(self, event_type: str, category: str, priority: str | None) -> bool:
        if self.event_types is not None and event_type not in self.event_types:
            return False
        if self.categories is not None and category not in self.categories:
            return False
        if self.min_priority is not None:
            rank = PRIORITY_RANK.get(priority or "normal", 1)
            if rank < PRIORITY_RANK[self.min_priority]:
                return False
        return True

    def wants(self, message: dict[str, Any]) -> bool:
        """Whether a layer message (``wire.layer_message``) passes the filters."""
        if not self.filters:
            return True
        meta = message_meta(message)
        return self._passes(meta["et"], meta["cat"], meta["pri"])

    def wants_event(self, event: RealTimeEvent) -> bool:
        if not self.filters:
            return True
        return self._passes(event.event_type, event.event_category, event.priority)


DEFAULT = Preferences()


def message_meta(message: dict[str, Any]) -> dict[str, Any]:
    """``et``/``cat``/``pri``/``tk`` of a layer message: set by ``wire.layer_message``
    and ``replay_message``; read from the frame's text (once) for a message built
    without them."""
    if "et" not in message:
        frame = json.loads(message["text"])
        message["et"] = frame.get("event_type") or ""
        message["cat"] = frame.get("category") or ""
        message["pri"] = frame.get("priority")
        message["tk"] = ",".join(frame.get("topics") or [])
    return message


# --- parsing and validation -----------------------------------------------------------


def _invalid(name: str, reason: str) -> RealtimeError:
    return RealtimeError(ERROR_CODE, f"{name}: {reason}", name)


def _rate(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        raise _invalid("rate", "must be a number of events per second")
    if not MIN_RATE <= value <= MAX_RATE:
        raise _invalid("rate", f"must be between {MIN_RATE:g} and {MAX_RATE:g} per second")
    return float(value)


def _names(name: str, value: Any, allowed: frozenset[str] | None = None) -> frozenset[str]:
    if not isinstance(value, list):
        raise _invalid(name, "must be a list of names")
    if len(value) > MAX_LIST:
        raise _invalid(name, f"at most {MAX_LIST} names")
    for item in value:
        if not isinstance(item, str) or not 1 <= len(item) <= 100:
            raise _invalid(name, "names are strings of 1-100 characters")
        if allowed is not None and item not in allowed:
            raise _invalid(name, f"{item!r} is not one of {', '.join(sorted(allowed))}")
    return frozenset(value)


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _invalid(name, "must be true or false")
    return value


def parse(raw: Any, current: Preferences = DEFAULT) -> Preferences:
    """``current`` with the fields of ``raw`` (a JSON object, or the connect URL's
    strings) applied; raises ``RealtimeError(INVALID_PREFERENCES)`` naming the field."""
    if not isinstance(raw, Mapping):
        raise _invalid("preferences", "must be an object")
    unknown = sorted(set(raw) - set(FIELDS))
    if unknown:
        raise _invalid(unknown[0], f"unknown preference (known: {', '.join(FIELDS)})")
    changes: dict[str, Any] = {}
    if "rate" in raw:
        changes["rate"] = _rate(raw["rate"])
    for name, allowed in (("event_types", None), ("categories", CATEGORIES)):
        if name in raw:
            value = raw[name]
            changes[name] = None if value is None else _names(name, value, allowed)
    if "min_priority" in raw:
        value = raw["min_priority"]
        if value is not None and value not in PRIORITY_RANK:
            raise _invalid("min_priority", f"must be one of {', '.join(EventPriority.values)}")
        changes["min_priority"] = value
    if "latest" in raw:
        changes["latest"] = (
            frozenset() if raw["latest"] is None else _names("latest", raw["latest"])
        )
    coalesce_given = "coalesce" in raw and raw["coalesce"] is not None
    if "coalesce" in raw:
        changes["coalesce"] = (
            False if raw["coalesce"] is None else _bool("coalesce", raw["coalesce"])
        )
    prefs = replace(current, **changes)
    if prefs.rate is not None and not prefs.coalesce:
        if coalesce_given:
            raise _invalid(
                "coalesce", "a rate limit sends the excess as coalesced frames; it needs coalesce"
            )
        prefs = replace(prefs, coalesce=True)
    return prefs


LIST_FIELDS = ("event_types", "categories", "latest")


def from_query(query: Mapping[str, list[str]], *, batch: bool) -> Preferences:
    """The preferences of a connect URL (lists comma-separated; ``?batch=1`` is
    ``coalesce``); raises ``RealtimeError`` like ``parse``."""
    raw: dict[str, Any] = {}
    for name in FIELDS:
        values = query.get(name)
        if not values:
            continue
        text = values[0]
        if name == "rate":
            try:
                raw[name] = float(text)
            except ValueError:
                raise _invalid("rate", "must be a number of events per second") from None
        elif name in LIST_FIELDS:
            raw[name] = [item for item in text.split(",") if item]
        elif name == "coalesce":
            if text.lower() not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise _invalid("coalesce", "must be true or false")
            raw[name] = text.lower() in ("1", "true", "yes", "on")
        else:
            raw[name] = text
    if batch and "coalesce" not in raw:
        raw["coalesce"] = True
    return parse(raw)


# --- storage --------------------------------------------------------------------------


def connection_set_preferences(*, connection_id: Any, preferences: Preferences) -> None:
    """Record what a client asked for (a ``hello``/``preferences`` frame)."""
    WebsocketConnection.objects.filter(pk=connection_id).update(
        user_preferences=preferences.as_json(), updated_at=timezone.now()
    )


# --- rate limiting and collapsing -----------------------------------------------------


def _with_collapsed(message: dict[str, Any], seqs: list[int]) -> dict[str, Any]:
    """A copy of ``message`` whose frame lists the events it stands for. The frame is
    our own compact JSON object, so the key is spliced in before its closing brace."""
    text = message["text"]
    text = text[:-1] + ',"collapsed":' + json.dumps(seqs, separators=(",", ":")) + "}"
    copy = {k: v for k, v in message.items() if k != "wire_frame"}
    copy["text"] = text
    copy["n"] = len(text.encode())
    return copy


def collapse(messages: list[dict[str, Any]], latest: frozenset[str]) -> list[dict[str, Any]]:
    """``messages`` (in sequence order) with the events of ``latest`` types reduced to
    the newest per type and topics; see the module's docstring."""
    if not latest or len(messages) < 2:
        return messages
    keys: list[tuple[str, str] | None] = []
    last: dict[tuple[str, str], int] = {}
    for index, message in enumerate(messages):
        meta = message_meta(message)
        key = (meta["et"], meta["tk"]) if meta["et"] in latest and not message.get("ack") else None
        keys.append(key)
        if key is not None:
            last[key] = index
    if len(last) == sum(1 for k in keys if k is not None):
        return messages  # nothing to collapse
    replaced: dict[tuple[str, str], list[int]] = {}
    out = []
    for index, message in enumerate(messages):
        key = keys[index]
        if key is None:
            out.append(message)
        elif last[key] != index:
            replaced.setdefault(key, []).append(message["seq"])
        elif key in replaced:
            out.append(_with_collapsed(message, replaced[key]))
        else:
            out.append(message)
    return out


class Throttle:
    """Holds a rate-limited connection's events until its next slot (see the module's
    docstring). ``send`` writes messages to the client at once, in order."""

    def __init__(self, send: Callable[[list[dict[str, Any]]], Awaitable[None]]) -> None:
        self.send = send
        self.interval = 0.0
        self.latest: frozenset[str] = frozenset()
        self.held: list[dict[str, Any]] = []
        self.next_slot = 0.0
        self.lock = asyncio.Lock()
        self.timer: asyncio.TimerHandle | None = None
        self.task: asyncio.Task[None] | None = None
        self.max_held: int = conf.get("NP_WS_MAX_HELD_EVENTS")
        self.collapsed = 0  # events replaced by a newer one (statistics)

    @property
    def active(self) -> bool:
        return self.interval > 0

    def configure(self, preferences: Preferences) -> None:
        self.interval = 1.0 / preferences.rate if preferences.rate else 0.0
        self.latest = preferences.latest

    async def offer(self, messages: list[dict[str, Any]]) -> None:
        """Send ``messages`` now if the connection's slot is free, else hold them."""
        if not self.active and not self.held:
            await self.send(messages)
            return
        self.held.extend(messages)
        now = asyncio.get_running_loop().time()
        if now >= self.next_slot or len(self.held) >= self.max_held or not self.active:
            await self.flush()
        else:
            self._arm()

    async def flush(self) -> None:
        """Send what is held (collapsed), and take the slot."""
        async with self.lock:
            if self.timer is not None:  # this flush takes the slot the timer waited for
                self.timer.cancel()
                self.timer = None
            if not self.held:
                return
            held = sorted(self.held, key=lambda m: m["seq"])
            self.held = []
            batch = collapse(held, self.latest)
            self.collapsed += len(held) - len(batch)
            self.next_slot = asyncio.get_running_loop().time() + self.interval
            await self.send(batch)
        if self.held:  # arrived while sending
            self._arm()

    def _arm(self) -> None:
        if self.timer is None:
            self.timer = asyncio.get_running_loop().call_at(self.next_slot, self._due)

    def _due(self) -> None:
        self.timer = None
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self._flush_logged())

    async def _flush_logged(self) -> None:
        try:
            await self.flush()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("realtime: throttled flush failed")

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.task is not None:
            self.task.cancel()
        self.held = []
