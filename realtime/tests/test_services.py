"""Services and selectors against the real database and the real Redis channel layer."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from realtime import groups, selectors, services, tasks
from realtime.errors import RealtimeError
from realtime.models import RealTimeEvent, WebsocketConnection
from realtime.services import connections

pytestmark = pytest.mark.django_db


def _receive_all(layer, channel: str) -> list[dict]:
    """Every message waiting on ``channel`` (each group_send has completed by now)."""
    messages = []

    async def drain():
        while True:
            try:
                messages.append(await asyncio.wait_for(layer.receive(channel), 0.5))
            except TimeoutError:
                return

    async_to_sync(drain)()
    return messages


def test_publish_writes_a_sequenced_row_and_fans_out_one_preserialised_frame_after_commit(
    user, django_capture_on_commit_callbacks
):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(groups.public_group("room.s"), channel)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            first = services.publish(
                event_type="a",
                category="system",
                data={"x": 1},
                visibility="public",
                topics=["room.s"],
            )
            second = services.publish(
                event_type="b",
                category="system",
                data={"x": 2},
                visibility="public",
                topics=["room.s"],
            )
        # given the transaction has not committed, nothing was sent
        assert first.published_at is None and len(callbacks) == 2
        for callback in callbacks:
            callback()
        messages = _receive_all(layer, channel)
    finally:
        async_to_sync(layer.group_discard)(groups.public_group("room.s"), channel)
    assert second.sequence_number > first.sequence_number
    assert [m["seq"] for m in messages] == [first.sequence_number, second.sequence_number]
    frame = json.loads(messages[0]["text"])
    assert frame == services.event_frame(RealTimeEvent.objects.get(pk=first.pk)) | {
        "generated_at": first.generated_at.isoformat()
    }
    assert messages[0]["n"] == len(messages[0]["text"].encode())
    first.refresh_from_db()
    assert first.published_at is not None
    assert first.delivery_status == {"channel_layer": {"topic.room.s.pub": {"status": "sent"}}}


def test_groups_follow_visibility(user, other_user):
    def groups_of(**kwargs):
        event = services.publish(event_type="t", category="user", data={}, **kwargs)
        return services.event_groups(event)

    assert groups_of(visibility="public", topics=["a", "b"]) == ["topic.a.pub", "topic.b.pub"]
    assert groups_of(visibility="authenticated", topics=["a"]) == ["topic.a.auth"]
    assert groups_of(visibility="private", user=user) == [f"user.{user.pk}"]
    assert groups_of(visibility="targeted", target_users=[user, other_user.pk, user]) == [
        f"user.{user.pk}",
        f"user.{other_user.pk}",
    ]


def test_auction_events_default_to_the_auction_topic(user):
    from auctions.models import Auction

    auction = Auction.objects.create(
        title="Lamp",
        seller=user,
        auction_type="english",
        starts_at=timezone.now(),
        ends_at=timezone.now() + timedelta(hours=1),
    )
    event = services.publish(
        event_type="bid.placed", category="bid", data={}, visibility="public", auction=auction
    )
    assert event.broadcast_channels == [f"auction.{auction.pk}"]
    assert event.auction_id == auction.pk


@pytest.mark.parametrize(
    ("kwargs", "code", "field"),
    [
        ({"visibility": "secret"}, "INVALID_VISIBILITY", "visibility"),
        ({"category": "gossip"}, "INVALID_CATEGORY", "category"),
        ({"priority": "urgent"}, "INVALID_PRIORITY", "priority"),
        ({"topics": []}, "TOPICS_REQUIRED", "topics"),
        ({"topics": ["Has Spaces"]}, "INVALID_TOPIC", "topics"),
        ({"visibility": "private"}, "USER_REQUIRED", "user"),
        ({"visibility": "targeted"}, "TARGETS_REQUIRED", "target_users"),
        ({"visibility": "targeted", "target_users": ["nope"]}, "INVALID_USER", "target_users"),
        ({"retention_policy": "forever"}, "INVALID_RETENTION_POLICY", "retention_policy"),
        ({"ack_timeout": 0}, "INVALID_ACK_TIMEOUT", "ack_timeout"),
        ({"data": [1]}, "INVALID_DATA", "data"),
    ],
)
def test_publish_rejects_bad_input_and_writes_nothing(kwargs, code, field):
    arguments = {
        "event_type": "t",
        "category": "system",
        "data": {},
        "visibility": "public",
        "topics": ["ok"],
    } | kwargs
    with pytest.raises(RealtimeError) as error:
        services.publish(**arguments)
    assert (error.value.code, error.value.field) == (code, field)
    assert RealTimeEvent.objects.count() == 0


def test_replay_selector_applies_visibility(user, other_user):
    def pub(**kwargs):
        return services.publish(event_type="t", category="user", data={}, **kwargs)

    start = pub(visibility="public", topics=["r"]).sequence_number
    public = pub(visibility="public", topics=["r"])
    authed = pub(visibility="authenticated", topics=["r"])
    other_topic = pub(visibility="public", topics=["elsewhere"])
    mine = pub(visibility="private", user=user)
    theirs = pub(visibility="private", user=other_user)
    both = pub(visibility="targeted", target_users=[user, other_user])
    only_them = pub(visibility="targeted", target_users=[other_user])
    expired = pub(
        visibility="public", topics=["r"], expires_at=timezone.now() - timedelta(seconds=1)
    )

    def seqs(user_id, include_private=True):
        return [
            e.sequence_number
            for e in selectors.event_list_since(
                user_id=user_id,
                topics=["r"],
                include_private=include_private,
                since=start,
                limit=100,
            )
        ]

    assert seqs(user.pk) == [e.sequence_number for e in (public, authed, mine, both)]
    assert seqs(other_user.pk) == [
        e.sequence_number for e in (public, authed, theirs, both, only_them)
    ]
    assert seqs(None) == [public.sequence_number]
    assert seqs(user.pk, include_private=False) == [public.sequence_number, authed.sequence_number]
    assert other_topic.sequence_number not in seqs(user.pk)
    assert expired.sequence_number not in seqs(user.pk)


def test_acknowledge_is_idempotent_and_only_for_recipients(user, other_user):
    event = services.publish(
        event_type="t",
        category="notification",
        data={},
        visibility="private",
        user=user,
        ack_required=True,
    )
    assert selectors.event_list_pending_ack(user_id=user.pk, topics=[], include_private=True) == [
        event
    ]
    assert services.event_acknowledge(event_id=event.pk, user_id=user.pk).created is True
    assert services.event_acknowledge(event_id=event.pk, user_id=user.pk).created is False
    with pytest.raises(RealtimeError) as error:
        services.event_acknowledge(event_id=event.pk, user_id=other_user.pk)
    assert error.value.code == "EVENT_NOT_FOUND"
    event.refresh_from_db()
    assert [a["user_id"] for a in event.acknowledgments] == [str(user.pk)]
    assert selectors.event_list_pending_ack(user_id=user.pk, topics=[], include_private=True) == []


def _connection(user, **fields) -> WebsocketConnection:
    row = services.connection_open(
        user_id=user.pk if user else None,
        session_id="s",
        socket_id=f"sock-{uuid.uuid4()}",
        client_ip="127.0.0.1",
        user_agent="ua",
        protocol_version="1.0",
        heartbeat_interval=fields.pop("heartbeat_interval", 30),
        reconnect_count=0,
    )
    services.connection_mark_connected(connection_id=row.pk)
    WebsocketConnection.objects.filter(pk=row.pk).update(**fields)
    return WebsocketConnection.objects.get(pk=row.pk)


def test_stale_sweep_marks_connections_that_missed_two_heartbeats(user, settings):
    settings.NP_WS_HEARTBEAT_GRACE = 5
    now = timezone.now()
    stale = _connection(user, last_heartbeat=now - timedelta(seconds=66))
    # 5 s inside the 65 s limit: the sweep reads its own clock, later than `now` on a loaded
    # machine (1 s of margin was a flake)
    fresh = _connection(user, last_heartbeat=now - timedelta(seconds=60))
    short = _connection(user, heartbeat_interval=5, last_heartbeat=now - timedelta(seconds=16))
    done = _connection(
        user,
        connection_status="disconnected",
        disconnect_reason="client_closed",
        last_heartbeat=now - timedelta(hours=1),
    )

    assert tasks.expire_stale_connections() == 2

    (
        stale.refresh_from_db(),
        fresh.refresh_from_db(),
        short.refresh_from_db(),
        done.refresh_from_db(),
    )
    assert (stale.connection_status, stale.disconnect_reason) == (
        "disconnected",
        "heartbeat_timeout",
    )
    assert stale.disconnected_at is not None
    assert (short.connection_status, short.disconnect_reason) == (
        "disconnected",
        "heartbeat_timeout",
    )
    assert fresh.connection_status == "connected"
    assert done.disconnect_reason == "client_closed"


def test_counters_are_added_in_batches_and_close_keeps_an_earlier_reason(user):
    row = _connection(user)
    services.connection_flush(
        connection_id=row.pk,
        counters=services.ConnectionCounters(
            messages_sent=3, bytes_sent=30, messages_received=2, bytes_received=20
        ),
    )
    services.connection_mark_disconnecting(connection_id=row.pk, reason="heartbeat_timeout")
    services.connection_close(
        connection_id=row.pk,
        reason="connection_lost",
        counters=services.ConnectionCounters(
            messages_sent=1, bytes_sent=5, errors=1, last_error="X: y"
        ),
    )
    row.refresh_from_db()
    assert (row.messages_sent, row.bytes_sent, row.messages_received, row.bytes_received) == (
        4,
        35,
        2,
        20,
    )
    assert (row.error_count, row.last_error) == (1, "X: y")
    assert (row.connection_status, row.disconnect_reason) == ("disconnected", "heartbeat_timeout")


def _open_fields(user_id, **extra):
    return {
        "user_id": user_id,
        "session_id": "s",
        "socket_id": f"sock-{uuid.uuid4()}",
        "client_ip": "127.0.0.1",
        "user_agent": "ua",
        "protocol_version": "1.0",
        "heartbeat_interval": 30,
        "reconnect_count": 0,
        **extra,
    }


def test_connections_opened_together_share_one_insert_and_a_bad_row_fails_alone(user, monkeypatch):
    # the process caches the anonymous user's id; this test's rollback must not leave
    # a cached id behind for the next test
    monkeypatch.setattr(connections, "_anonymous_id", None)
    services.anonymous_user()
    # given: three connections opening at once (one anonymous, one subscribed)
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    auction_id = str(uuid.uuid4())
    opens = [
        _open_fields(user.pk, topics=[f"auction.{auction_id}", "news"]),
        _open_fields(None),
        _open_fields(user.pk, reconnect_count=2),
    ]
    # when
    with CaptureQueriesContext(connection) as queries:
        ids = services.connection_open_many(opens)
    # then: one INSERT for all three, every row connected with its own fields
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    assert len(inserts) == 1 and '"websocket_connections"' in inserts[0]
    rows = {r.pk: r for r in WebsocketConnection.objects.filter(pk__in=ids)}
    assert [rows[i].connection_status for i in ids] == ["connected"] * 3
    assert rows[ids[0]].subscriptions == [f"auction.{auction_id}", "news"]
    assert rows[ids[0]].auction_subscriptions == [auction_id]
    assert rows[ids[1]].user.email == services.ANONYMOUS_EMAIL
    assert rows[ids[2]].reconnect_count == 2

    # given: a batch in which one connection's user no longer exists
    gone = uuid.uuid4()
    # when
    results = services.connection_open_many([_open_fields(user.pk), _open_fields(gone)])
    # then: the other row is written, the bad one gets its own error
    assert WebsocketConnection.objects.get(pk=results[0]).connection_status == "connected"
    assert isinstance(results[1], Exception)
    assert not WebsocketConnection.objects.filter(user_id=gone).exists()


def test_anonymous_connections_use_one_inactive_system_user():
    first, second = _connection(None), _connection(None)
    assert first.user_id == second.user_id
    assert first.user.email == services.ANONYMOUS_EMAIL
    assert first.user.is_active is False and not first.user.has_usable_password()


def test_purge_deletes_expired_events_and_those_past_their_retention(settings):
    settings.NP_RT_RETENTION_DAYS = {"short": 1, "standard": 7, "long": 30}
    now = timezone.now()

    def pub(policy, age_days, expires_in=None):
        event = services.publish(
            event_type="t",
            category="system",
            data={},
            visibility="public",
            topics=["r"],
            retention_policy=policy,
            expires_at=now + timedelta(seconds=expires_in) if expires_in is not None else None,
        )
        RealTimeEvent.objects.filter(pk=event.pk).update(
            generated_at=now - timedelta(days=age_days)
        )
        return event.pk

    keep = {pub("short", 0.5), pub("standard", 6), pub("long", 29)}
    gone = {pub("short", 1.5), pub("standard", 8), pub("long", 31), pub("long", 0, -1)}

    assert tasks.purge_expired_events() == len(gone)
    assert set(RealTimeEvent.objects.values_list("pk", flat=True)) == keep
    assert selectors.sequence_oldest_retained() == min(
        RealTimeEvent.objects.values_list("sequence_number", flat=True)
    )
