"""The connection row's life cycle: open (one by one or a connect storm's rows together),
subscriptions, traffic counters, disconnect, and the beat's sweep of stale rows."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.db.models import Case, DurationField, ExpressionWrapper, F, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from .. import client_info, conf, groups
from ..models import ConnectionStatus, WebsocketConnection

logger = logging.getLogger(__name__)

ANONYMOUS_EMAIL = "anonymous@notifyplatform.invalid"


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
    device_info: dict[str, Any] | None = None,
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
    device_info: dict[str, Any] | None = None,
    topics: Iterable[str] = (),
    user_preferences: dict[str, Any] | None = None,
    compression_enabled: bool = False,
    geo_location: dict[str, Any] | None = None,
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
    bandwidth_usage: dict[str, Any] | None = None

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
        return int(cursor.rowcount)


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
