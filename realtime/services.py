"""Write paths of the real-time app: publishing events, acknowledgments, the
connection row's life cycle and the beat-driven clean-ups.

Publishing
    ``publish`` writes one ``real_time_events`` row in the caller's transaction and,
    once that transaction commits, sends it to the channel-layer groups its
    visibility allows (see ``realtime.groups``). The event's JSON frame is
    serialised once per publish and travels through the layer as text, so each
    consumer forwards it without decoding or re-encoding it.

Sequence numbers and commit order
    Replay after a reconnect asks for "every event after sequence N". If a
    transaction drew sequence 10 and committed after another one that drew 11, a
    client that saw 11 and resumed from 11 would never see 10. ``publish`` therefore
    takes one transaction-level advisory lock before drawing its number, which makes
    events commit in sequence order. The lock is held until the caller's transaction
    commits, so publish LAST in a transaction (after any loop of notifications, as
    ``auctions.services`` does): then it covers the sequence draw, the insert and the
    commit only, and no publish on the platform waits for unrelated work
    (``NP_RT_ORDERED_COMMIT=0`` turns it off where throughput matters more than
    gapless resumption). The server processes rely on this order: an event visible
    in the table means every smaller number is settled (``realtime.hub``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from channels.layers import get_channel_layer
from django.contrib.auth import get_user_model
from django.core.serializers.json import DjangoJSONEncoder
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Case, DurationField, ExpressionWrapper, F, JSONField, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import client_info, conf, groups
from .errors import RealtimeError
from .models import (
    EVENT_SEQUENCE,
    ConnectionStatus,
    EventCategory,
    EventPriority,
    RealTimeEvent,
    Visibility,
    WebsocketConnection,
)

logger = logging.getLogger(__name__)

ANONYMOUS_EMAIL = "anonymous@notifyplatform.invalid"
PUBLISH_LOCK_KEY = 0x4E50_5254  # "NPRT": the advisory lock that orders commits
EVENT_MESSAGE_TYPE = "rt.event"  # the channel-layer message type consumers handle


# --- event frames ---------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def event_frame(event: RealTimeEvent) -> dict[str, Any]:
    """The ``event`` frame a client receives. Never names other recipients
    (``target_audience`` stays on the server)."""
    return {
        "type": "event",
        "id": str(event.id),
        "seq": event.sequence_number,
        "event_type": event.event_type,
        "category": event.event_category,
        "visibility": event.visibility,
        "topics": list(event.broadcast_channels or []),
        "priority": event.priority,
        "data": event.event_data,
        "metadata": event.event_metadata,
        "auction_id": str(event.auction_id) if event.auction_id else None,
        "item_id": str(event.item_id) if event.item_id else None,
        "bid_id": str(event.bid_id) if event.bid_id else None,
        "correlation_id": event.correlation_id,
        "previous_event_id": str(event.previous_event_id) if event.previous_event_id else None,
        "generated_at": _iso(event.generated_at),
        "expires_at": _iso(event.expires_at),
        "ack_required": bool(event.ack_required),
        "ack_timeout": event.ack_timeout,
    }


def event_text(event: RealTimeEvent) -> str:
    return json.dumps(event_frame(event), cls=DjangoJSONEncoder, separators=(",", ":"))


def layer_message(event: RealTimeEvent, text: str) -> dict[str, Any]:
    """What travels through the channel layer: the ready frame plus what the consumer
    needs without parsing it (ordering, de-duplication, ack tracking, byte count, and
    the type, category, priority and topics a connection's preferences filter on)."""
    return {
        "type": EVENT_MESSAGE_TYPE,
        "text": text,
        "seq": event.sequence_number,
        "id": str(event.id),
        "ack": event.ack_timeout if event.ack_required else 0,
        "n": len(text.encode()),
        "et": event.event_type,
        "cat": event.event_category,
        "pri": event.priority,
        "tk": ",".join(event.broadcast_channels or []),
    }


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True).encode
_REPLAY_FRAME = (
    '{"type":"event","id":"%s","seq":%d,"event_type":%s,"category":%s,"visibility":%s,'
    '"topics":%s,"priority":%s,"data":%s,"metadata":%s,"auction_id":%s,"item_id":%s,'
    '"bid_id":%s,"correlation_id":%s,"previous_event_id":%s,"generated_at":%s,'
    '"expires_at":%s,"ack_required":%s,"ack_timeout":%s}'
)


def _js(value: Any) -> str:
    return "null" if value is None else _encode(value)


def _js_id(value: Any) -> str:
    return _encode(str(value)) if value else "null"


def replay_message(row: Sequence[Any]) -> dict[str, Any]:
    """The layer message of an event row read for a replay
    (``selectors.REPLAY_ROW_FIELDS``). The frame has ``event_frame``'s keys and values;
    the JSON columns are the database's own text of them (same values, jsonb's key
    order and spacing)."""
    (
        event_id,
        seq,
        event_type,
        category,
        visibility,
        topics_json,
        priority,
        data_json,
        metadata_json,
        auction_id,
        item_id,
        bid_id,
        correlation_id,
        previous_event_id,
        generated_at,
        expires_at,
        ack_required,
        ack_timeout,
    ) = row
    text = _REPLAY_FRAME % (
        event_id,
        seq,
        _js(event_type),
        _js(category),
        _js(visibility),
        topics_json or "[]",
        _js(priority),
        data_json or "null",
        metadata_json or "null",
        _js_id(auction_id),
        _js_id(item_id),
        _js_id(bid_id),
        _js(correlation_id),
        _js_id(previous_event_id),
        _js(_iso(generated_at)),
        _js(_iso(expires_at)),
        "true" if ack_required else "false",
        _js(ack_timeout),
    )
    return {
        "type": EVENT_MESSAGE_TYPE,
        "text": text,
        "seq": seq,
        "id": str(event_id),
        "ack": ack_timeout if ack_required else 0,
        "n": len(text.encode()),
        "et": event_type,
        "cat": category,
        "pri": priority,
        "tk": ",".join(json.loads(topics_json)) if topics_json else "",
    }


def event_groups(event: RealTimeEvent) -> list[str]:
    """The channel-layer groups an event's visibility allows."""
    if event.visibility == Visibility.PUBLIC:
        return [groups.public_group(t) for t in event.broadcast_channels or []]
    if event.visibility == Visibility.AUTHENTICATED:
        return [groups.auth_group(t) for t in event.broadcast_channels or []]
    if event.visibility == Visibility.PRIVATE:
        return [groups.user_group(event.user_id)] if event.user_id else []
    return [groups.user_group(uid) for uid in event.target_audience or []]


# --- publishing -----------------------------------------------------------------------


def _user_id(value: Any, field: str) -> str:
    raw = getattr(value, "pk", value)
    try:
        return str(uuid.UUID(str(raw)))
    except (TypeError, ValueError) as exc:
        raise RealtimeError("INVALID_USER", f"{raw!r} is not a user id", field) from exc


_CHOICE_VALUES: dict[type, frozenset[str]] = {}


def _choice(value: str, choices: type, field: str) -> str:
    allowed = _CHOICE_VALUES.get(choices)
    if allowed is None:  # ``choices.values`` builds a new list on every access
        allowed = _CHOICE_VALUES[choices] = frozenset(choices.values)
    if value not in allowed:
        names = ", ".join(choices.values)
        raise RealtimeError(f"INVALID_{field.upper()}", f"{value!r} is not one of {names}", field)
    return value


def _event_row(
    *,
    event_type: str,
    category: str,
    data: dict,
    visibility: str,
    topics: Iterable[str] = (),
    user: Any = None,
    target_users: Iterable[Any] = (),
    auction: Any = None,
    bid: Any = None,
    item: Any = None,
    priority: str = "normal",
    ack_required: bool = False,
    ack_timeout: int = 30,
    expires_at: datetime | None = None,
    retention_policy: str = "standard",
    correlation_id: str | None = None,
    previous_event_id: uuid.UUID | str | None = None,
    metadata: dict | None = None,
    generated_at: datetime | None = None,
) -> RealTimeEvent:
    """The validated, unsaved row of one event (``publish``'s arguments)."""
    _choice(visibility, Visibility, "visibility")
    _choice(category, EventCategory, "category")
    _choice(priority, EventPriority, "priority")
    if not event_type or len(event_type) > 100:
        raise RealtimeError(
            "INVALID_EVENT_TYPE", "event_type must be 1-100 characters", "event_type"
        )
    if not isinstance(data, dict):
        raise RealtimeError("INVALID_DATA", "data must be a JSON object", "data")
    if retention_policy not in conf.get("NP_RT_RETENTION_DAYS"):
        raise RealtimeError(
            "INVALID_RETENTION_POLICY",
            f"unknown retention policy {retention_policy!r}",
            "retention_policy",
        )
    if ack_timeout < 1:
        raise RealtimeError(
            "INVALID_ACK_TIMEOUT", "ack_timeout must be at least 1 second", "ack_timeout"
        )
    topic_list = list(topics)
    if (
        not topic_list
        and auction is not None
        and visibility in (Visibility.PUBLIC, Visibility.AUTHENTICATED)
    ):
        topic_list = [groups.auction_topic(getattr(auction, "pk", auction))]
    try:
        topic_list = groups.normalise_topics(topic_list)
    except ValueError as exc:
        raise RealtimeError("INVALID_TOPIC", str(exc), "topics") from exc

    owner_id: str | None = _user_id(user, "user") if user is not None else None
    targets: list[str] | None = None
    if visibility in (Visibility.PUBLIC, Visibility.AUTHENTICATED) and not topic_list:
        raise RealtimeError("TOPICS_REQUIRED", f"{visibility} events need topics", "topics")
    if visibility == Visibility.PRIVATE and owner_id is None:
        raise RealtimeError("USER_REQUIRED", "private events need a user", "user")
    if visibility == Visibility.TARGETED:
        targets = list(dict.fromkeys(_user_id(u, "target_users") for u in target_users))
        if not targets:
            raise RealtimeError(
                "TARGETS_REQUIRED", "targeted events need target_users", "target_users"
            )
    return RealTimeEvent(
        event_type=event_type,
        event_category=category,
        event_data=data,
        event_metadata=metadata,
        visibility=visibility,
        broadcast_channels=topic_list,
        target_audience=targets,
        user_id=owner_id,
        auction_id=getattr(auction, "pk", auction),
        bid_id=getattr(bid, "pk", bid),
        item_id=getattr(item, "pk", item),
        priority=priority,
        ack_required=ack_required,
        ack_timeout=ack_timeout,
        expires_at=expires_at,
        retention_policy=retention_policy,
        correlation_id=correlation_id,
        previous_event_id=previous_event_id,
        generated_at=generated_at or timezone.now(),
    )


def _order_commits() -> None:
    if conf.get("NP_RT_ORDERED_COMMIT"):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [PUBLISH_LOCK_KEY])


@transaction.atomic
def publish(
    *,
    event_type: str,
    category: str,
    data: dict,
    visibility: str,
    topics: Iterable[str] = (),
    user: Any = None,
    target_users: Iterable[Any] = (),
    auction: Any = None,
    bid: Any = None,
    item: Any = None,
    priority: str = "normal",
    ack_required: bool = False,
    ack_timeout: int = 30,
    expires_at: datetime | None = None,
    retention_policy: str = "standard",
    correlation_id: str | None = None,
    previous_event_id: uuid.UUID | str | None = None,
    metadata: dict | None = None,
) -> RealTimeEvent:
    """Write a ``real_time_events`` row and fan it out after commit.

    ``public``/``authenticated`` events go to ``topics`` (default: the auction's
    topic when ``auction`` is given); ``private`` to ``user``; ``targeted`` to each of
    ``target_users`` (users or ids). Raises ``RealtimeError`` for bad input; nothing
    is written then.
    """
    event = _event_row(
        event_type=event_type,
        category=category,
        data=data,
        visibility=visibility,
        topics=topics,
        user=user,
        target_users=target_users,
        auction=auction,
        bid=bid,
        item=item,
        priority=priority,
        ack_required=ack_required,
        ack_timeout=ack_timeout,
        expires_at=expires_at,
        retention_policy=retention_policy,
        correlation_id=correlation_id,
        previous_event_id=previous_event_id,
        metadata=metadata,
    )
    _order_commits()
    event.save(force_insert=True)
    # Serialise while the row is at hand; the after-commit callback only sends.
    text = event_text(event)
    transaction.on_commit(lambda: fan_out(event, text), robust=True)
    return event


def _json_value(field: Any, value: Any) -> Any:
    if value is None or isinstance(field, JSONField):
        return value  # JSON as is (a JSON null lands as SQL NULL, like the ORM's None)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _insert_events(rows: Sequence[RealTimeEvent]) -> None:
    """Insert unsaved events (every column set, sequence numbers included) with ONE
    statement and ONE parameter: the rows as a JSON array, unpacked by PostgreSQL
    (``jsonb_to_recordset``). ``bulk_create`` spent ~0.1 ms of Python per row preparing
    and quoting its per-column arrays; one ``json.dumps`` of the group costs a few µs."""
    now = timezone.now()
    fields = RealTimeEvent._meta.concrete_fields
    records = []
    for row in rows:
        if row.created_at is None:
            row.created_at = now
        records.append({f.column: _json_value(f, getattr(row, f.attname)) for f in fields})
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    types = ", ".join(
        f"{connection.ops.quote_name(f.column)} {f.db_type(connection)}" for f in fields
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO real_time_events ({columns}) "  # noqa: S608 - model metadata only
            f"SELECT {columns} FROM jsonb_to_recordset(%s::jsonb) AS r({types})",
            [json.dumps(records)],
        )


@transaction.atomic
def publish_many(events: Sequence[dict[str, Any]]) -> list[RealTimeEvent]:
    """``publish`` for many events at once (each a dict of ``publish``'s keyword
    arguments), in the order given: a sender that records hundreds of in-app deliveries
    together publishes their events this way.

    Every event is validated before anything is written (one bad event raises
    ``RealtimeError`` and none is written). Then, in the caller's transaction: the
    ordering lock is taken once, the sequence numbers of the whole group are drawn in
    one statement and given out in list order, and the rows go in with one multi-row
    INSERT. Since the group commits as one, replay sees all of it or none of it, in
    sequence order, like events published one by one. After commit the group is fanned
    out by ``fan_out_many``: the same per-event layer messages to the same groups, in
    sequence order, with one Redis round trip for the membership of all groups and one
    UPDATE for the bookkeeping of all rows."""
    if not events:
        return []
    now = timezone.now()
    rows = [_event_row(**{"generated_at": now, **kwargs}) for kwargs in events]
    _order_commits()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(%s) FROM generate_series(1, %s)", [EVENT_SEQUENCE, len(rows)]
        )
        # nextval is monotonic; sorting makes "list order = sequence order" explicit
        numbers = sorted(n for (n,) in cursor.fetchall())
    for row, number in zip(rows, numbers, strict=True):
        row.sequence_number = number
    _insert_events(rows)
    texts = [event_text(row) for row in rows]
    transaction.on_commit(lambda: fan_out_many(rows, texts), robust=True)
    return rows


class _PublisherLoop:
    """One event loop thread per process for the after-commit sends. ``async_to_sync``
    from a plain thread builds a new event loop per call, and channels_redis keeps its
    connections per loop, so every publish paid for a fresh Redis connection; a loop
    that lives as long as the process keeps one pool warm."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pid = 0
        self.lock = threading.Lock()

    def get(self) -> asyncio.AbstractEventLoop:
        with self.lock:
            if self.loop is None or self.pid != os.getpid() or not self.loop.is_running():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                threading.Thread(target=serve, name="realtime-publisher", daemon=True).start()
                ready.wait()
                self.loop, self.pid = loop, os.getpid()
            return self.loop


_publisher = _PublisherLoop()


def _run_in_publisher_loop(coro: Any) -> Any:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:  # called from async code (a test, a consumer): the caller's own loop
        coro.close()
        raise RuntimeError("fan_out must be called from synchronous code")
    return asyncio.run_coroutine_threadsafe(coro, _publisher.get()).result()


async def _send_to_groups(group_names: Sequence[str], message: dict[str, Any]) -> dict[str, Any]:
    layer = get_channel_layer()
    status: dict[str, Any] = {}
    for name in group_names:
        try:
            # the group travels with the message: a server process is one member of
            # many groups and hands each copy to that group's consumers (realtime.hub)
            await layer.group_send(name, {**message, "group": name})
            status[name] = {"status": "sent"}
        except Exception as exc:  # noqa: BLE001 - recorded on the event, replay covers it
            logger.warning("group_send to %s failed: %s", name, exc)
            status[name] = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"[:500]}
    return status


def fan_out(event: RealTimeEvent, text: str | None = None) -> dict[str, Any]:
    """Send a committed event to its groups and record ``published_at`` and the
    per-group ``delivery_status``. A failed send loses nothing: the row stays
    replayable by sequence number."""
    text = text if text is not None else event_text(event)
    names = event_groups(event)
    status = (
        _run_in_publisher_loop(_send_many([(names, layer_message(event, text))]))[0]
        if names
        else {}
    )
    published_at = timezone.now()
    with transaction.atomic():
        # bookkeeping on a row that is already durable: no need to wait for the WAL flush
        _relaxed_commit()
        RealTimeEvent.objects.filter(pk=event.pk).update(
            published_at=published_at, delivery_status={"channel_layer": status}
        )
    event.published_at = published_at
    event.delivery_status = {"channel_layer": status}
    return status


async def _groups_with_members(names: Iterable[str]) -> set[str] | None:
    """Which of these groups have a member right now, asked in one pipelined round trip
    per Redis host (expired memberships dropped first, as ``group_send`` does); None when
    the layer is not channels_redis' or Redis could not answer (then every group is sent
    to, and ``group_send`` records what fails)."""
    from channels_redis.core import RedisChannelLayer

    layer = get_channel_layer()
    if not isinstance(layer, RedisChannelLayer):
        return None
    by_host: dict[int, list[str]] = {}
    for name in names:
        by_host.setdefault(layer.consistent_hash(name), []).append(name)
    found: set[str] = set()
    try:
        for index, host_names in by_host.items():
            pipe = layer.connection(index).pipeline(transaction=False)
            expired = int(time.time()) - layer.group_expiry
            for name in host_names:
                key = layer._group_key(name)
                pipe.zremrangebyscore(key, min=0, max=expired)
                pipe.zcard(key)
            counts = (await pipe.execute())[1::2]
            found.update(name for name, count in zip(host_names, counts, strict=True) if count)
    except Exception as exc:  # noqa: BLE001 - fall back to sending to every group
        logger.warning("group membership lookup failed: %s", exc)
        return None
    return found


async def _send_many(sends: Sequence[tuple[list[str], dict[str, Any]]]) -> list[dict[str, Any]]:
    """``_send_to_groups`` for each (groups, message), in the order given, skipping the
    groups that have no member (an empty group's ``group_send`` costs two round trips to
    deliver nothing; most users of a big batch are not connected)."""
    live = await _groups_with_members({name for names, _ in sends for name in names})
    statuses: list[dict[str, Any]] = []
    for names, message in sends:
        targets = [n for n in names if live is None or n in live]
        if len(names) > 1:
            # an event of several groups: a server process checks it got every copy it
            # is owed (realtime.hub), so each copy names the others
            message = {**message, "also": names}
        sent = await _send_to_groups(targets, message) if targets else {}
        # a group nobody was in got nothing: not "sent" (a server process that lost its
        # membership, e.g. Redis restarted empty, fills the event from the database)
        statuses.append({n: sent.get(n, {"status": "no_members"}) for n in names})
    return statuses


def fan_out_many(
    events: Sequence[RealTimeEvent], texts: Sequence[str] | None = None
) -> list[dict[str, Any]]:
    """``fan_out`` for committed events, in the order given (``publish_many``'s sequence
    order, so each stream keeps its order): one hop to the publisher loop, one Redis round
    trip for the groups' membership, a ``group_send`` only to groups that have members,
    and ONE UPDATE recording ``published_at`` and ``delivery_status`` on every row."""
    if not events:
        return []
    if texts is None:
        texts = [event_text(event) for event in events]
    sends = [
        (event_groups(event), layer_message(event, text))
        for event, text in zip(events, texts, strict=True)
    ]
    statuses = _run_in_publisher_loop(_send_many(sends))
    published_at = timezone.now()
    values = ", ".join(["(%s::uuid, %s::jsonb)"] * len(events))
    params: list[Any] = []
    for event, status in zip(events, statuses, strict=True):
        event.published_at = published_at
        event.delivery_status = {"channel_layer": status}
        params += [event.pk, json.dumps(event.delivery_status)]
    with transaction.atomic(), connection.cursor() as cursor:
        # bookkeeping on rows that are already durable: no need to wait for the WAL flush
        _relaxed_commit()
        cursor.execute(
            f"""
            UPDATE real_time_events AS e
               SET published_at = %s, delivery_status = v.status
              FROM (VALUES {values}) AS v(id, status)
             WHERE e.event_id = v.id
            """,  # noqa: S608 - only placeholders are interpolated
            [published_at, *params],
        )
    return statuses


# --- acknowledgments ------------------------------------------------------------------


@dataclass(frozen=True)
class AckResult:
    event_id: str
    created: bool  # False when this user had already acknowledged it


def event_acknowledge(*, event_id: uuid.UUID | str, user_id: uuid.UUID | str) -> AckResult:
    """Store ``{"user_id", "acked_at"}`` on an event the user may see; idempotent.

    One conditional UPDATE appends the entry unless the user already has one, so two
    acks racing on two connections still store a single entry.
    """
    from .selectors import event_visible_to  # selectors import services' helpers

    uid = _user_id(user_id, "user_id")
    try:
        eid = uuid.UUID(str(event_id))
    except ValueError as exc:
        raise RealtimeError(
            "INVALID_EVENT_ID", f"{event_id!r} is not an event id", "event_id"
        ) from exc
    event = RealTimeEvent.objects.filter(pk=eid).first()
    if event is None or not event_visible_to(event, uid):
        raise RealtimeError("EVENT_NOT_FOUND", "no such event for this user", "event_id")
    entry = [{"user_id": uid, "acked_at": timezone.now().isoformat()}]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE real_time_events
               SET acknowledgments = COALESCE(acknowledgments, '[]'::jsonb) || %s::jsonb
             WHERE event_id = %s
               AND NOT COALESCE(acknowledgments, '[]'::jsonb) @> %s::jsonb
            """,
            [json.dumps(entry), eid, json.dumps([{"user_id": uid}])],
        )
        created = cursor.rowcount == 1
    return AckResult(event_id=str(eid), created=created)


# --- connections ----------------------------------------------------------------------


def anonymous_user() -> Any:
    """The inactive system user anonymous connections are recorded against
    (``websocket_connections.user_id`` is NOT NULL). Created on demand."""
    user_model = get_user_model()
    user = user_model.objects.filter(email=ANONYMOUS_EMAIL).first()
    if user is not None:
        return user
    user = user_model(email=ANONYMOUS_EMAIL, display_name="Anonymous", is_active=False)
    user.set_unusable_password()
    try:
        with transaction.atomic():
            user.save()
    except Exception:  # lost a race with another connection creating it
        return user_model.objects.get(email=ANONYMOUS_EMAIL)
    return user


_anonymous_id: uuid.UUID | None = None  # cached per process: anonymous connects are common


def connection_open(
    *,
    user_id: uuid.UUID | str | None,
    session_id: str,
    socket_id: str,
    client_ip: str,
    user_agent: str,
    protocol_version: str,
    heartbeat_interval: int,
    reconnect_count: int,
    device_info: dict | None = None,
    topics: Iterable[str] = (),
    **client: Any,
) -> WebsocketConnection:
    """The row of a new connection, status ``connecting`` (with its first subscriptions
    when ``topics`` are given; ``client``: ``_connection_row``'s client fields)."""
    global _anonymous_id
    fields: dict[str, Any] = {
        "topics": topics,
        "session_id": session_id,
        "socket_id": socket_id,
        "client_ip": client_ip,
        "user_agent": user_agent,
        "protocol_version": protocol_version,
        "heartbeat_interval": heartbeat_interval,
        "reconnect_count": reconnect_count,
        "device_info": device_info,
        **client,
    }
    if user_id is not None:
        return _connection_insert(user_id=user_id, **fields)
    if _anonymous_id is None:
        _anonymous_id = anonymous_user().pk
    try:
        with transaction.atomic():
            return _connection_insert(user_id=_anonymous_id, **fields)
    except IntegrityError:  # the cached system user is gone (deleted by hand, a test flush)
        _anonymous_id = anonymous_user().pk
        return _connection_insert(user_id=_anonymous_id, **fields)


def _connection_row(
    *,
    user_id: uuid.UUID | str,
    session_id: str,
    socket_id: str,
    client_ip: str,
    user_agent: str,
    protocol_version: str,
    heartbeat_interval: int,
    reconnect_count: int,
    device_info: dict | None = None,
    topics: Iterable[str] = (),
    user_preferences: dict | None = None,
    compression_enabled: bool = False,
    geo_location: dict | None = None,
) -> WebsocketConnection:
    now = timezone.now()
    if device_info is None:
        # parsed here, on the database thread, not on the server's event loop
        device_info = client_info.device_info(user_agent)
    topic_list = sorted(set(topics))
    return WebsocketConnection(
        user_id=user_id,
        session_id=session_id[:255],
        socket_id=socket_id[:255],
        connection_status=ConnectionStatus.CONNECTING,
        client_ip=client_ip,
        user_agent=user_agent,
        protocol_version=protocol_version[:20],
        heartbeat_interval=heartbeat_interval,
        last_heartbeat=now,
        connected_at=now,
        reconnect_count=reconnect_count,
        device_info=device_info,
        user_preferences=user_preferences,
        compression_enabled=compression_enabled,
        geo_location=geo_location,
        subscriptions=topic_list,
        auction_subscriptions=[a for a in (groups.auction_id_of(t) for t in topic_list) if a],
    )


def _connection_insert(**fields: Any) -> WebsocketConnection:
    row = _connection_row(**fields)
    row.save(force_insert=True)
    return row


def _relaxed_commit() -> None:
    """Connection rows are bookkeeping (status, counters) that a server writes thousands
    of times a second under a connect storm; their commits need not wait for the WAL
    flush. A PostgreSQL crash can lose the last few hundred milliseconds of them, which
    the stale-connection sweep repairs; events are never written this way."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL synchronous_commit = off")


def connection_open_connected(**fields: Any) -> WebsocketConnection:
    """``connection_open`` then ``connection_mark_connected`` in one transaction: one
    thread hop and one commit per new connection instead of two or three."""
    with transaction.atomic():
        _relaxed_commit()
        with connection.cursor() as cursor:
            # foreign keys are checked at the INSERT, not at COMMIT, so connection_open
            # still sees a stale cached anonymous user inside its savepoint
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        row = connection_open(**fields)
        connection_mark_connected(connection_id=row.pk)
    return row


def connection_open_many(opens: Sequence[dict[str, Any]]) -> list[uuid.UUID | Exception]:
    """The rows of several new connections (``connection_open``'s fields each), status
    ``connected``, in one multi-row INSERT and one commit; a server process opens the
    connections of a connect storm this way (``realtime.hub``) instead of paying ~10
    round trips and a commit per connection. Returns each row's id, or the exception
    that connection met: when the INSERT fails (a user deleted meanwhile, a stale cached
    anonymous user) every row is retried on its own, so one bad row fails only itself."""
    global _anonymous_id
    if not opens:
        return []
    if _anonymous_id is None and any(o.get("user_id") is None for o in opens):
        _anonymous_id = anonymous_user().pk
    rows = []
    for fields in opens:
        user_id = fields.get("user_id")
        row = _connection_row(**{**fields, "user_id": user_id or _anonymous_id})
        row.connection_status = ConnectionStatus.CONNECTED
        rows.append(row)
    try:
        with transaction.atomic():
            _relaxed_commit()
            with connection.cursor() as cursor:
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # fail here, not at COMMIT
            WebsocketConnection.objects.bulk_create(rows)
        return [row.pk for row in rows]
    except DatabaseError:
        logger.warning("batched open of %d connections failed; opening one by one", len(rows))
    results: list[uuid.UUID | Exception] = []
    for fields in opens:
        try:
            results.append(connection_open_connected(**fields).pk)
        except Exception as exc:  # noqa: BLE001 - handed to that connection's consumer
            results.append(exc)
    return results


def connection_disconnect(
    *, connection_id: uuid.UUID, reason: str, counters: ConnectionCounters
) -> None:
    """``connection_mark_disconnecting`` then ``connection_close`` in one transaction."""
    with transaction.atomic():
        _relaxed_commit()
        connection_mark_disconnecting(connection_id=connection_id, reason=reason)
        connection_close(connection_id=connection_id, reason=reason, counters=counters)


def connection_mark_connected(*, connection_id: uuid.UUID) -> None:
    WebsocketConnection.objects.filter(
        pk=connection_id, connection_status=ConnectionStatus.CONNECTING
    ).update(connection_status=ConnectionStatus.CONNECTED, updated_at=timezone.now())


def connection_update_client(
    *, connection_id: uuid.UUID, reconnect_count: int | None, protocol_version: str | None
) -> None:
    """What a client says about itself in a ``hello`` frame."""
    fields: dict[str, Any] = {"updated_at": timezone.now()}
    if reconnect_count is not None:
        fields["reconnect_count"] = reconnect_count
    if protocol_version is not None:
        fields["protocol_version"] = protocol_version[:20]
    WebsocketConnection.objects.filter(pk=connection_id).update(**fields)


def connection_set_subscriptions(*, connection_id: uuid.UUID, topics: Iterable[str]) -> None:
    topic_list = sorted(set(topics))
    auctions = [a for a in (groups.auction_id_of(t) for t in topic_list) if a]
    WebsocketConnection.objects.filter(pk=connection_id).update(
        subscriptions=topic_list, auction_subscriptions=auctions, updated_at=timezone.now()
    )


@dataclass
class ConnectionCounters:
    """Traffic not yet written to the connection row (deltas, so flushes add up)."""

    messages_sent: int = 0
    bytes_sent: int = 0
    messages_received: int = 0
    bytes_received: int = 0
    errors: int = 0
    last_error: str | None = None
    last_heartbeat: datetime | None = None
    # the connection's whole bytes-per-minute window (client_info.BandwidthMeter), set
    # when it changed: a snapshot that replaces the column, not a delta
    bandwidth_usage: dict | None = None

    def is_empty(self) -> bool:
        return not (
            self.messages_sent
            or self.messages_received
            or self.errors
            or self.last_heartbeat
            or self.bandwidth_usage
        )

    def take(self) -> ConnectionCounters:
        """These counters, leaving this object zeroed (taken before any await so a
        concurrent flush can never count the same traffic twice)."""
        taken = ConnectionCounters(**self.__dict__)
        self.__init__()  # type: ignore[misc]
        return taken


def _counter_updates(counters: ConnectionCounters) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "messages_sent": F("messages_sent") + counters.messages_sent,
        "bytes_sent": F("bytes_sent") + counters.bytes_sent,
        "messages_received": F("messages_received") + counters.messages_received,
        "bytes_received": F("bytes_received") + counters.bytes_received,
        "error_count": F("error_count") + counters.errors,
        "updated_at": timezone.now(),
    }
    if counters.last_error is not None:
        fields["last_error"] = counters.last_error[:2000]
    if counters.last_heartbeat is not None:
        fields["last_heartbeat"] = counters.last_heartbeat
    if counters.bandwidth_usage is not None:
        fields["bandwidth_usage"] = counters.bandwidth_usage
    return fields


def connection_flush(*, connection_id: uuid.UUID, counters: ConnectionCounters) -> None:
    """Add a batch of traffic to the row: one UPDATE per batch, never per message."""
    if counters.is_empty():
        return
    WebsocketConnection.objects.filter(pk=connection_id).update(**_counter_updates(counters))


def connection_flush_many(batches: Sequence[tuple[uuid.UUID, ConnectionCounters]]) -> int:
    """Add many connections' traffic in ONE statement (a server process flushes all its
    connections together rather than one UPDATE per connection). Returns rows updated."""
    rows = [(cid, c) for cid, c in batches if not c.is_empty()]
    if not rows:
        return 0
    values = ", ".join(
        [
            "(%s::uuid, %s::int, %s::bigint, %s::int, %s::bigint, %s::int, %s,"
            " %s::timestamptz, %s::jsonb)"
        ]
        * len(rows)
    )
    params: list[Any] = []
    for cid, c in rows:
        params += [
            cid,
            c.messages_sent,
            c.bytes_sent,
            c.messages_received,
            c.bytes_received,
            c.errors,
            c.last_error[:2000] if c.last_error is not None else None,
            c.last_heartbeat,
            json.dumps(c.bandwidth_usage) if c.bandwidth_usage is not None else None,
        ]
    with transaction.atomic(), connection.cursor() as cursor:
        _relaxed_commit()
        cursor.execute(
            f"""
            UPDATE websocket_connections AS c
               SET messages_sent = c.messages_sent + v.ms,
                   bytes_sent = c.bytes_sent + v.bs,
                   messages_received = c.messages_received + v.mr,
                   bytes_received = c.bytes_received + v.br,
                   error_count = c.error_count + v.ec,
                   last_error = COALESCE(v.le, c.last_error),
                   last_heartbeat = COALESCE(v.lh, c.last_heartbeat),
                   bandwidth_usage = COALESCE(v.bw, c.bandwidth_usage),
                   updated_at = now()
              FROM (VALUES {values}) AS v(id, ms, bs, mr, br, ec, le, lh, bw)
             WHERE c.connection_id = v.id
            """,  # noqa: S608 - only placeholders are interpolated
            params,
        )
        return cursor.rowcount


def connection_mark_disconnecting(*, connection_id: uuid.UUID, reason: str) -> None:
    WebsocketConnection.objects.filter(
        pk=connection_id,
        connection_status__in=[ConnectionStatus.CONNECTING, ConnectionStatus.CONNECTED],
    ).update(
        connection_status=ConnectionStatus.DISCONNECTING,
        disconnect_reason=reason[:255],
        updated_at=timezone.now(),
    )


def connection_close(
    *, connection_id: uuid.UUID, reason: str, counters: ConnectionCounters
) -> None:
    """Final write: remaining counters, ``disconnected``. A reason recorded earlier
    (the server's own, e.g. ``heartbeat_timeout``) wins over the socket's close code."""
    fields = _counter_updates(counters)
    fields.update(
        connection_status=ConnectionStatus.DISCONNECTED,
        disconnected_at=Coalesce(F("disconnected_at"), Value(timezone.now())),
        disconnect_reason=Coalesce(F("disconnect_reason"), Value(reason[:255])),
    )
    WebsocketConnection.objects.filter(pk=connection_id).update(**fields)


def connection_expire_stale(*, now: datetime | None = None) -> int:
    """Mark connections that missed two heartbeats as ``disconnected``
    (``heartbeat_timeout``): their server died or lost them without a close.

    A live consumer writes ``last_heartbeat`` on every pong, so a healthy row is never
    older than one interval plus the round trip."""
    now = now or timezone.now()
    grace = timedelta(seconds=conf.get("NP_WS_HEARTBEAT_GRACE"))
    deadline = ExpressionWrapper(
        Coalesce(F("last_heartbeat"), F("connected_at"))
        + F("heartbeat_interval") * Value(timedelta(seconds=2), output_field=DurationField())
        + Value(grace, output_field=DurationField()),
        output_field=DurationField(),
    )
    return (
        WebsocketConnection.objects.filter(
            connection_status__in=[
                ConnectionStatus.CONNECTING,
                ConnectionStatus.CONNECTED,
                ConnectionStatus.DISCONNECTING,
            ]
        )
        .alias(deadline=deadline)
        .filter(deadline__lt=now)
        .update(
            connection_status=ConnectionStatus.DISCONNECTED,
            disconnected_at=now,
            disconnect_reason=Case(
                When(
                    connection_status=ConnectionStatus.DISCONNECTING,
                    then=Coalesce(F("disconnect_reason"), Value("heartbeat_timeout")),
                ),
                default=Value("heartbeat_timeout"),
            ),
            updated_at=now,
        )
    )


# --- retention ------------------------------------------------------------------------


def event_purge_expired(*, now: datetime | None = None, batch_size: int = 10_000) -> int:
    """Delete events past ``expires_at`` or their retention policy's window, in batches
    so one sweep never holds long locks. Returns the number deleted."""
    now = now or timezone.now()
    days: dict[str, int] = conf.get("NP_RT_RETENTION_DAYS")
    default_days = days.get("standard", 7)
    by_policy = Q(
        retention_policy__isnull=True, generated_at__lt=now - timedelta(days=default_days)
    )
    for policy, policy_days in days.items():
        by_policy |= Q(retention_policy=policy, generated_at__lt=now - timedelta(days=policy_days))
    # unknown policies (written by hand or by an older version) keep the standard window
    by_policy |= Q(generated_at__lt=now - timedelta(days=default_days)) & ~Q(
        retention_policy__in=list(days)
    )
    condition = Q(expires_at__lt=now) | by_policy
    total = 0
    while True:
        ids = list(
            RealTimeEvent.objects.filter(condition)
            .order_by()
            .values_list("pk", flat=True)[:batch_size]
        )
        if not ids:
            return total
        deleted, _ = RealTimeEvent.objects.filter(pk__in=ids).delete()
        total += deleted
        if len(ids) < batch_size:
            return total
