"""Publishing: ``publish`` writes one ``real_time_events`` row in the caller's
transaction and, once that transaction commits, sends it to the channel-layer groups its
visibility allows (``realtime.services.fanout``). The event's JSON frame is serialised
once per publish and travels through the layer as text, so each consumer forwards it
without decoding or re-encoding it.

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

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias

from django.db import connection, transaction
from django.db.models import JSONField, Model, TextChoices
from django.utils import timezone

from notifyplatform.gcpause import gc_paused

from .. import conf, groups
from ..errors import RealtimeError
from ..models import EVENT_SEQUENCE, EventCategory, EventPriority, RealTimeEvent, Visibility
from ..wire import event_text
from .fanout import fan_out, fan_out_many

PUBLISH_LOCK_KEY = 0x4E50_5254  # "NPRT": the advisory lock that orders commits


def _user_id(value: Any, field: str) -> str:
    raw = getattr(value, "pk", value)
    try:
        return str(uuid.UUID(str(raw)))
    except (TypeError, ValueError) as exc:
        raise RealtimeError("INVALID_USER", f"{raw!r} is not a user id", field) from exc


_CHOICE_VALUES: dict[type[TextChoices], frozenset[str]] = {}


def _choice(value: str, choices: type[TextChoices], field: str) -> str:
    allowed = _CHOICE_VALUES.get(choices)
    if allowed is None:  # ``choices.values`` builds a new list on every access
        allowed = _CHOICE_VALUES[choices] = frozenset(choices.values)
    if value not in allowed:
        names = ", ".join(choices.values)
        raise RealtimeError(f"INVALID_{field.upper()}", f"{value!r} is not one of {names}", field)
    return value


ObjectRef: TypeAlias = "Model | uuid.UUID | str"  # a row or its primary key


@dataclass(frozen=True, slots=True)
class EventToPublish:
    """One event to publish: ``publish_event``'s argument, ``publish``'s keyword arguments.

    ``public``/``authenticated`` events go to ``topics`` (default: the auction's topic
    when ``auction`` is given); ``private`` to ``user``; ``targeted`` to each of
    ``target_users`` (users or ids). ``generated_at`` defaults to the time of publishing.
    """

    event_type: str
    category: str
    data: dict[str, Any]
    visibility: str
    topics: Iterable[str] = ()
    user: ObjectRef | None = None
    target_users: Iterable[ObjectRef] = ()
    auction: ObjectRef | None = None
    bid: ObjectRef | None = None
    item: ObjectRef | None = None
    priority: str = "normal"
    ack_required: bool = False
    ack_timeout: int = 30
    expires_at: datetime | None = None
    retention_policy: str = "standard"
    correlation_id: str | None = None
    previous_event_id: uuid.UUID | str | None = None
    #: events that caused this one (ids), what it is expected to cause, how it is filed
    causal_events: list[str] | None = None
    expected_impacts: dict[str, Any] | None = None
    tags: list[str] | None = None
    metadata: dict[str, Any] | None = None
    generated_at: datetime | None = None


def _pk(ref: ObjectRef | None) -> Any:
    return getattr(ref, "pk", ref)


def _event_row(event: EventToPublish, generated_at: datetime | None = None) -> RealTimeEvent:
    """The validated, unsaved row of one event (``generated_at``: the default for an
    event that does not name its own)."""
    visibility, auction = event.visibility, event.auction
    _choice(visibility, Visibility, "visibility")
    _choice(event.category, EventCategory, "category")
    _choice(event.priority, EventPriority, "priority")
    if not event.event_type or len(event.event_type) > 100:
        raise RealtimeError(
            "INVALID_EVENT_TYPE", "event_type must be 1-100 characters", "event_type"
        )
    if not isinstance(event.data, dict):
        raise RealtimeError("INVALID_DATA", "data must be a JSON object", "data")
    if event.retention_policy not in conf.get("NP_RT_RETENTION_DAYS"):
        raise RealtimeError(
            "INVALID_RETENTION_POLICY",
            f"unknown retention policy {event.retention_policy!r}",
            "retention_policy",
        )
    if event.ack_timeout < 1:
        raise RealtimeError(
            "INVALID_ACK_TIMEOUT", "ack_timeout must be at least 1 second", "ack_timeout"
        )
    topic_list = list(event.topics)
    if (
        not topic_list
        and auction is not None
        and visibility in (Visibility.PUBLIC, Visibility.AUTHENTICATED)
    ):
        topic_list = [groups.auction_topic(_pk(auction))]
    try:
        topic_list = groups.normalise_topics(topic_list)
    except ValueError as exc:
        raise RealtimeError("INVALID_TOPIC", str(exc), "topics") from exc

    owner_id: str | None = _user_id(event.user, "user") if event.user is not None else None
    targets: list[str] | None = None
    if visibility in (Visibility.PUBLIC, Visibility.AUTHENTICATED) and not topic_list:
        raise RealtimeError("TOPICS_REQUIRED", f"{visibility} events need topics", "topics")
    if visibility == Visibility.PRIVATE and owner_id is None:
        raise RealtimeError("USER_REQUIRED", "private events need a user", "user")
    if visibility == Visibility.TARGETED:
        targets = list(dict.fromkeys(_user_id(u, "target_users") for u in event.target_users))
        if not targets:
            raise RealtimeError(
                "TARGETS_REQUIRED", "targeted events need target_users", "target_users"
            )
    return RealTimeEvent(
        event_type=event.event_type,
        event_category=event.category,
        event_data=event.data,
        event_metadata=event.metadata,
        visibility=visibility,
        broadcast_channels=topic_list,
        target_audience=targets,
        user_id=owner_id,
        auction_id=_pk(auction),
        bid_id=_pk(event.bid),
        item_id=_pk(event.item),
        priority=event.priority,
        ack_required=event.ack_required,
        ack_timeout=event.ack_timeout,
        expires_at=event.expires_at,
        retention_policy=event.retention_policy,
        correlation_id=event.correlation_id,
        previous_event_id=event.previous_event_id,
        causal_events=[str(e) for e in event.causal_events] if event.causal_events else None,
        expected_impacts=event.expected_impacts,
        tags=list(event.tags) if event.tags else None,
        generated_at=event.generated_at or generated_at or timezone.now(),
    )


def _order_commits() -> None:
    """Take the ordering lock, held until the transaction commits.

    First the foreign keys the transaction has written so far are checked (``SET
    CONSTRAINTS ALL IMMEDIATE`` runs the checks deferred to the commit, then they are
    deferred again): a transaction that fanned out 10,000 notifications before publishing
    would otherwise check their 30,000 rows at the commit, while every other publish waits
    for the lock (``bench/auction_close_stall.py``: p99 205 ms → see bench/README.md).
    One round trip: no parameters, so the three statements go as one simple query."""
    if conf.get("NP_RT_ORDERED_COMMIT"):
        with connection.cursor() as cursor:
            cursor.execute(
                "SET CONSTRAINTS ALL IMMEDIATE; SET CONSTRAINTS ALL DEFERRED;"
                f" SELECT pg_advisory_xact_lock({int(PUBLISH_LOCK_KEY)})"
            )


@transaction.atomic
def publish_event(event: EventToPublish) -> RealTimeEvent:
    """Write a ``real_time_events`` row and fan it out after commit. Raises
    ``RealtimeError`` for bad input; nothing is written then."""
    row = _event_row(event)
    _order_commits()
    row.save(force_insert=True)
    # Serialise while the row is at hand; the after-commit callback only sends.
    text = event_text(row)
    transaction.on_commit(lambda: fan_out(row, text), robust=True)
    return row


def publish(**fields: Any) -> RealTimeEvent:
    """``publish_event`` with the event's fields as keyword arguments (``EventToPublish``'s:
    ``event_type``, ``category``, ``data``, ``visibility``, ``topics``, ``user`` ...)."""
    return publish_event(EventToPublish(**fields))


def _json_value(field: Any, value: Any) -> Any:
    if value is None or isinstance(field, JSONField):
        return value  # JSON as is (a JSON null lands as SQL NULL, like the ORM's None)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


# every column an event record carries; its sequence number is joined on at insert
_RECORD_FIELDS = [f for f in RealTimeEvent._meta.concrete_fields if f.attname != "sequence_number"]


def _event_records(rows: Sequence[RealTimeEvent]) -> str:
    """Unsaved events (every column but the sequence number set) as one JSON array, each
    record with its position ``_i``: built before the ordering lock is taken, so the lock
    covers the database work only."""
    now = timezone.now()
    records = []
    for i, row in enumerate(rows):
        if row.created_at is None:
            row.created_at = now
        record = {f.column: _json_value(f, getattr(row, f.attname)) for f in _RECORD_FIELDS}
        record["_i"] = i + 1
        records.append(record)
    return json.dumps(records)


def _insert_events(document: str, numbers: list[int]) -> None:
    """Insert the events of ``_event_records`` with ONE statement: the rows as one JSON
    parameter unpacked by PostgreSQL (``jsonb_to_recordset``), the sequence numbers as an
    array joined on position. ``bulk_create`` spent ~0.1 ms of Python per row preparing
    and quoting its per-column arrays; one ``json.dumps`` of the group costs a few µs."""
    quote = connection.ops.quote_name
    columns = [quote(f.column) for f in _RECORD_FIELDS]
    types = ", ".join(f"{quote(f.column)} {f.db_type(connection)}" for f in _RECORD_FIELDS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO real_time_events ({', '.join(columns)}, sequence_number) "  # noqa: S608 - model metadata only
            f"SELECT {', '.join(f'r.{c}' for c in columns)}, s.n"
            f" FROM jsonb_to_recordset(%s::jsonb) AS r({types}, _i bigint)"
            " JOIN unnest(%s::bigint[]) WITH ORDINALITY AS s(n, i) ON s.i = r._i",
            [document, numbers],
        )


@transaction.atomic
def publish_many(
    events: Sequence[EventToPublish | Mapping[str, Any]],
) -> list[RealTimeEvent]:
    """``publish_event`` for many events at once (each an ``EventToPublish`` or a dict of
    ``publish``'s keyword arguments), in the order given: a sender that records hundreds of in-app deliveries
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
    with gc_paused():  # thousands of objects that all live until the group is sent
        return _publish_group(events)


def _publish_group(events: Sequence[EventToPublish | Mapping[str, Any]]) -> list[RealTimeEvent]:
    now = timezone.now()
    rows = [
        _event_row(e if isinstance(e, EventToPublish) else EventToPublish(**e), now) for e in events
    ]
    document = _event_records(rows)
    # from here to the commit every other publish waits: database work only (the rows'
    # JSON above, their wire texts after commit)
    _order_commits()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(%s) FROM generate_series(1, %s)", [EVENT_SEQUENCE, len(rows)]
        )
        # nextval is monotonic; sorting makes "list order = sequence order" explicit
        numbers = sorted(n for (n,) in cursor.fetchall())
    _insert_events(document, numbers)
    for row, number in zip(rows, numbers, strict=True):
        row.sequence_number = number
    transaction.on_commit(lambda: _fan_out_group(rows), robust=True)
    return rows


def _fan_out_group(rows: list[RealTimeEvent]) -> None:
    with gc_paused():
        fan_out_many(rows)
