"""End to end: a real daphne server, real websocket clients, the test database.

Each scenario publishes through ``realtime.services.publish`` in the test process (the
fan-out goes through Redis to daphne) and checks what each client receives."""

from __future__ import annotations

import asyncio
import random

import pytest
from asgiref.sync import sync_to_async

from realtime.models import RealTimeEvent, WebsocketConnection
from realtime.services import ANONYMOUS_EMAIL

from .conftest import run, wait_for, ws_connect

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("realtime_e2e"),
    pytest.mark.django_db(transaction=True),
]


def _closed_row(connection_id: str) -> WebsocketConnection | None:
    return WebsocketConnection.objects.filter(
        pk=connection_id, connection_status="disconnected"
    ).first()


def test_200_events_published_while_disconnected_arrive_in_order_exactly_once(
    daphne_server, user, make_token, apublish
):
    token = make_token(user)

    async def scenario():
        async with ws_connect(daphne_server, token=token) as client:
            await client.send({"type": "subscribe", "topics": ["room.a"]})
            await client.recv_type("subscribed")
            first = await apublish(
                event_type="chat.message",
                category="user",
                data={"n": 0},
                visibility="public",
                topics=["room.a"],
            )
            (live,) = await client.events(1)
            assert live["seq"] == first.sequence_number
        # given: 200 events (public on the topic and private to the user) while away
        published = []
        for n in range(1, 201):
            if n % 2:
                event = await apublish(
                    event_type="chat.message",
                    category="user",
                    data={"n": n},
                    visibility="public",
                    topics=["room.a"],
                )
            else:
                event = await apublish(
                    event_type="inbox.item",
                    category="notification",
                    data={"n": n},
                    visibility="private",
                    user=user,
                )
            published.append(event)
        # when: it reconnects and resumes from the last sequence it saw
        async with ws_connect(daphne_server, token=token) as client:
            await client.send(
                {"type": "subscribe", "topics": ["room.a"], "since": first.sequence_number}
            )
            replayed = await client.events(200)
            subscribed = await client.recv_type("subscribed")
            after = await apublish(
                event_type="chat.message",
                category="user",
                data={"n": 201},
                visibility="public",
                topics=["room.a"],
            )
            (live_after,) = await client.events(1)
            extra = [f for f in await client.barrier() if f["type"] == "event"]
        return published, replayed, subscribed, after, live_after, extra

    published, replayed, subscribed, after, live_after, extra = run(scenario())
    # then: all 200, in order, once; then live continues without a duplicate
    assert [e["seq"] for e in replayed] == [e.sequence_number for e in published]
    assert [e["id"] for e in replayed] == [str(e.id) for e in published]
    assert [e["data"]["n"] for e in replayed] == list(range(1, 201))
    assert subscribed["replayed"] == 200
    assert live_after["seq"] == after.sequence_number
    assert extra == []


def test_live_events_published_during_a_replay_are_neither_lost_nor_duplicated(
    daphne_server, user, make_token, apublish
):
    token = make_token(user)

    async def scenario():
        start = await apublish(
            event_type="tick",
            category="system",
            data={"n": 0},
            visibility="authenticated",
            topics=["ticks"],
        )
        backlog = [
            await apublish(
                event_type="tick",
                category="system",
                data={"n": n},
                visibility="authenticated",
                topics=["ticks"],
            )
            for n in range(1, 301)
        ]

        async def publish_more():
            return [
                await apublish(
                    event_type="tick",
                    category="system",
                    data={"n": n},
                    visibility="authenticated",
                    topics=["ticks"],
                )
                for n in range(301, 361)
            ]

        async with ws_connect(daphne_server, token=token) as client:
            await client.send(
                {"type": "subscribe", "topics": ["ticks"], "since": start.sequence_number}
            )
            # when: more events are published while the replay is being sent
            more_task = asyncio.create_task(publish_more())
            # the "subscribed" reply comes when the replay is sent, amid live events
            received = await client.events(360, skip=("ping", "subscribed"))
            more = await more_task
            extra = [f for f in await client.barrier() if f["type"] == "event"]
        return backlog + more, received, extra

    expected, received, extra = run(scenario())
    assert [e["seq"] for e in received] == [e.sequence_number for e in expected]
    assert extra == []


def test_users_never_see_each_others_private_or_targeted_events_and_anonymous_only_public(
    daphne_server, make_user, make_token, apublish
):
    alice, bob = make_user(), make_user()
    tokens = {"alice": make_token(alice), "bob": make_token(bob)}
    topics = ["room.x", "room.y"]
    rng = random.Random(20260511)

    def visible(kind: str, vis: str, owner: str | None, targets: list[str]) -> bool:
        if vis == "public":
            return True
        if kind == "anon":
            return False
        if vis == "authenticated":
            return True
        if vis == "private":
            return owner == kind
        return kind in targets

    async def scenario():
        clients = {}
        ctx = {
            "alice": ws_connect(daphne_server, token=tokens["alice"]),
            "bob": ws_connect(daphne_server, token=tokens["bob"]),
            "anon": ws_connect(daphne_server),
        }
        for name, cm in ctx.items():
            clients[name] = await cm.__aenter__()
            await clients[name].send({"type": "subscribe", "topics": topics})
            await clients[name].recv_type("subscribed")
        start = await apublish(
            event_type="start", category="system", data={}, visibility="public", topics=["room.x"]
        )
        expected = {name: [] for name in clients}
        users = {"alice": alice, "bob": bob}
        for n in range(150):
            vis = rng.choice(["public", "authenticated", "private", "targeted"])
            owner = rng.choice(["alice", "bob"]) if vis == "private" else None
            targets = (
                rng.choice([["alice"], ["bob"], ["alice", "bob"]]) if vis == "targeted" else []
            )
            event = await apublish(
                event_type=f"e.{vis}",
                category="user",
                data={"n": n},
                visibility=vis,
                topics=[rng.choice(topics)] if vis in ("public", "authenticated") else [],
                user=users[owner] if owner else None,
                target_users=[users[t] for t in targets],
            )
            for name in clients:
                if visible(name, vis, owner, targets):
                    expected[name].append(event.sequence_number)
        end = await apublish(
            event_type="end", category="system", data={}, visibility="public", topics=["room.y"]
        )
        live = {}
        for name, client in clients.items():
            frames = []
            while True:
                frame = await client.recv_type("event")
                if frame["seq"] == end.sequence_number:
                    break
                frames.append(frame)
            live[name] = (
                frames[1:] if frames and frames[0]["seq"] == start.sequence_number else frames
            )
        for name, cm in ctx.items():
            await cm.__aexit__(None, None, None)
        # replay: each client resumes from before the randomized events
        replayed = {}
        for name in clients:
            token = tokens.get(name)
            async with ws_connect(daphne_server, token=token) as client:
                await client.send(
                    {"type": "subscribe", "topics": topics, "since": start.sequence_number}
                )
                frames = []
                while (frame := await client.recv_type("event", "subscribed"))["type"] == "event":
                    frames.append(frame)
                replayed[name] = [f["seq"] for f in frames if f["seq"] != end.sequence_number]
        return expected, live, replayed

    expected, live, replayed = run(scenario())
    for name in ("alice", "bob", "anon"):
        assert [f["seq"] for f in live[name]] == expected[name], name
        assert replayed[name] == expected[name], name
    anon_visibilities = {f["visibility"] for f in live["anon"]}
    assert anon_visibilities == {"public"}
    # and the sets really differ, so the test exercised every rule
    assert set(expected["alice"]) != set(expected["bob"])
    assert len(expected["anon"]) < len(expected["alice"])
    # no frame names another recipient
    assert all("target_audience" not in f for frames in live.values() for f in frames)


def test_ack_required_event_is_resent_until_acked_then_never_again(
    daphne_server, user, make_token, apublish
):
    token = make_token(user)

    async def scenario():
        async with ws_connect(daphne_server, token=token) as client:
            event = await apublish(
                event_type="outbid",
                category="notification",
                data={"amount": "12.00"},
                visibility="private",
                user=user,
                ack_required=True,
                ack_timeout=1,
            )
            first = await client.recv_type("event")
            # not acknowledged: the server sends it again after ack_timeout
            again = await client.recv_type("event")
        # and again on the next connection
        async with ws_connect(daphne_server, token=token) as client:
            on_reconnect = await client.recv_type("event")
            await client.send({"type": "ack", "event_id": on_reconnect["id"]})
            acked = await client.recv_type("acked")
            # then: three ack timeouts pass without a redelivery; a second unacknowledged
            # event, resent by the same timer on the same 1 s timeout, shows they passed
            marker = await apublish(
                event_type="outbid",
                category="notification",
                data={"amount": "13.00"},
                visibility="private",
                user=user,
                ack_required=True,
                ack_timeout=1,
            )
            frames = await client.events(4)  # the marker, then three resends of it
            frames += await client.barrier()
            after_ack = [f for f in frames if f["type"] == "event" and f["id"] != str(marker.id)]
        async with ws_connect(daphne_server, token=token) as client:
            # a new connection gets the pending marker again, and nothing else
            frames = [await client.recv_type("event")]
            frames += await client.barrier()
            assert frames[0]["id"] == str(marker.id)
            await client.send({"type": "ack", "event_id": str(marker.id)})
            await client.recv_type("acked")
            next_connection = [f for f in frames[1:] if f["type"] == "event"]
        return event, first, again, on_reconnect, acked, after_ack, next_connection

    event, first, again, on_reconnect, acked, after_ack, next_connection = run(scenario())
    assert first["id"] == again["id"] == on_reconnect["id"] == str(event.id)
    assert first["ack_required"] is True
    assert acked == {"type": "acked", "event_id": str(event.id), "duplicate": False}
    assert after_ack == []
    assert next_connection == []
    event.refresh_from_db()
    assert [a["user_id"] for a in event.acknowledgments] == [str(user.pk)]
    assert event.acknowledgments[0]["acked_at"]


def test_client_that_stops_answering_heartbeats_is_disconnected_with_heartbeat_timeout(
    daphne_server, user, make_token
):
    token = make_token(user)

    async def scenario():
        async with ws_connect(daphne_server, "heartbeat=1", token=token) as client:
            connected = client.received[0]
            # a client that answers stays connected across several intervals
            for _ in range(3):
                await client.recv_type("ping")
                await client.send({"type": "pong"})
            # then it stops answering
            code = await client.wait_closed(timeout=10)
            pings_unanswered = [f for f in client.received[4:] if f["type"] == "ping"]
        return connected, code, pings_unanswered

    connected, code, pings_unanswered = run(scenario())
    assert connected["heartbeat_interval"] == 1
    assert code == 4408
    assert len(pings_unanswered) == 2
    row = wait_for(lambda: _closed_row(connected["connection_id"]))
    assert row.disconnect_reason == "heartbeat_timeout"
    assert row.heartbeat_interval == 1
    assert row.last_heartbeat is not None and row.last_heartbeat > row.connected_at


def test_connection_row_carries_counters_of_a_known_session(
    daphne_server, user, make_token, apublish
):
    token = make_token(user)

    async def scenario():
        async with ws_connect(
            daphne_server, "reconnect=3&heartbeat=300", token=token, user_agent="np-test-agent/2.0"
        ) as client:
            connection_id = client.received[0]["connection_id"]
            await client.send(
                {
                    "type": "subscribe",
                    "topics": ["room.c", "auction.5b2f8c1e-0f0a-4c4e-9a55-1d9a3b1c2d3e"],
                }
            )
            await client.recv_type("subscribed", skip=())
            for n in range(5):
                await apublish(
                    event_type="chat.message",
                    category="user",
                    data={"n": n},
                    visibility="public",
                    topics=["room.c"],
                )
            await client.events(5)
            # fewer than NP_WS_FLUSH_MESSAGES and no heartbeat: nothing written yet
            mid = await sync_to_async(WebsocketConnection.objects.get)(pk=connection_id)
            await client.send("not json")
            await client.recv_type("error", skip=())
            await client.barrier()
            sent, received = list(client.sent), list(client.received_raw)
        return connection_id, mid, sent, received

    connection_id, mid, sent, received = run(scenario())
    assert mid.connection_status == "connected"
    assert (mid.messages_sent, mid.messages_received) == (0, 0)
    row = wait_for(lambda: _closed_row(connection_id))
    assert row.user_id == user.pk
    assert row.messages_received == len(sent) == 3
    assert row.bytes_received == sum(len(t.encode()) for t in sent)
    # connected, subscribed, 5 events, error, pong
    assert row.messages_sent == len(received) == 9
    assert row.bytes_sent == sum(len(t.encode()) for t in received)
    assert row.error_count == 1
    assert row.last_error.startswith("INVALID_JSON")
    assert row.reconnect_count == 3
    assert row.protocol_version == "1.0"
    assert row.user_agent == "np-test-agent/2.0"
    assert row.client_ip == "127.0.0.1"
    assert row.subscriptions == ["auction.5b2f8c1e-0f0a-4c4e-9a55-1d9a3b1c2d3e", "room.c"]
    assert row.auction_subscriptions == ["5b2f8c1e-0f0a-4c4e-9a55-1d9a3b1c2d3e"]
    assert row.disconnect_reason == "client_closed"
    assert row.disconnected_at is not None and row.session_id.startswith("token:")


def test_bad_token_is_refused_with_4401(daphne_server):
    async def scenario():
        codes = []
        async with ws_connect(
            daphne_server, "token=np_not-a-token", expect_connected=False
        ) as client:
            error = await client.recv()
            codes.append(await client.wait_closed())
        async with ws_connect(
            daphne_server, token="np_also-wrong", expect_connected=False
        ) as client:
            codes.append(await client.wait_closed())
        return error, codes

    error, codes = run(scenario())
    assert error["code"] == "AUTH_FAILED"
    assert codes == [4401, 4401]
    assert WebsocketConnection.objects.count() == 0


def test_session_cookie_authenticates_and_anonymous_is_recorded_against_system_user(
    daphne_server, user, client
):
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"

    async def scenario():
        async with ws_connect(daphne_server, headers={"Cookie": cookie}) as session_client:
            by_session = session_client.received[0]
        async with ws_connect(daphne_server) as anon_client:
            anonymous = anon_client.received[0]
        return by_session, anonymous

    by_session, anonymous = run(scenario())
    assert by_session["user_id"] == str(user.pk) and by_session["authenticated"] is True
    assert anonymous["user_id"] is None and anonymous["authenticated"] is False
    row = wait_for(lambda: _closed_row(anonymous["connection_id"]))
    assert row.user.email == ANONYMOUS_EMAIL
    assert row.user.is_active is False and not row.user.has_usable_password()
    session_row = wait_for(lambda: _closed_row(by_session["connection_id"]))
    assert session_row.session_id == client.session.session_key


def test_anonymous_cannot_acknowledge_and_bad_frames_get_error_codes(daphne_server):
    async def scenario():
        async with ws_connect(daphne_server) as client:
            await client.send({"type": "ack", "event_id": "00000000-0000-0000-0000-000000000000"})
            auth = await client.recv_type("error")
            await client.send({"type": "subscribe", "topics": ["Bad Topic!"]})
            topic = await client.recv_type("error")
            await client.send({"type": "subscribe", "topics": ["ok"], "since": -1})
            since = await client.recv_type("error")
            await client.send({"type": "dance"})
            unknown = await client.recv_type("error")
        return auth, topic, since, unknown

    auth, topic, since, unknown = run(scenario())
    assert (auth["code"], auth["field"]) == ("AUTH_REQUIRED", "event_id")
    assert (topic["code"], topic["field"]) == ("INVALID_TOPIC", "topics")
    assert (since["code"], since["field"]) == ("INVALID_SINCE", "since")
    assert unknown["code"] == "UNKNOWN_TYPE"


def test_hostile_json_frames_get_invalid_json_and_the_connection_lives_on(daphne_server):
    frames = {
        "deep": "[" * 10_000 + "]" * 10_000,
        "huge_number": '{"type": "ping", "n": 1e400}',
        "duplicate_key": '{"type": "ping", "type": "dance"}',
    }

    async def scenario():
        answers = {}
        async with ws_connect(daphne_server) as client:
            for name, raw in frames.items():
                await client.send(raw)
                answers[name] = await client.recv_type("error")
            await client.send({"type": "ping"})
            answers["ping"] = await client.recv_type("pong")
        return answers

    answers = run(scenario())
    assert {name: answers[name]["code"] for name in frames} == dict.fromkeys(frames, "INVALID_JSON")
    assert answers["ping"]["type"] == "pong"


def test_since_beyond_retention_or_too_many_events_answers_recovery_failed(
    daphne_server, user, make_token, apublish
):
    from realtime.services import event_purge_expired

    token = make_token(user)

    async def scenario():
        old = [
            await apublish(
                event_type="t", category="system", data={}, visibility="public", topics=["r"]
            )
            for _ in range(3)
        ]
        # the oldest two are purged (expired)
        await sync_to_async(
            lambda: RealTimeEvent.objects.filter(pk__in=[old[0].pk, old[1].pk]).update(
                expires_at="2000-01-01T00:00:00Z"
            )
        )()
        purged = await sync_to_async(event_purge_expired)()
        async with ws_connect(daphne_server, token=token) as client:
            await client.send(
                {"type": "subscribe", "topics": ["r"], "since": old[0].sequence_number - 1}
            )
            failed = await client.recv_type("recovery_failed")
            await client.recv_type("subscribed")
            # a position right before the oldest retained event still recovers
            await client.send(
                {"type": "subscribe", "topics": ["r"], "since": old[1].sequence_number}
            )
            (recovered,) = await client.events(1)
            await client.recv_type("subscribed")
        # more than NP_REPLAY_MAX_EVENTS (500 for this server) to replay
        many = [
            await apublish(
                event_type="t", category="system", data={}, visibility="public", topics=["r"]
            )
            for _ in range(501)
        ]
        async with ws_connect(daphne_server, token=token) as client:
            await client.send(
                {"type": "subscribe", "topics": ["r"], "since": old[2].sequence_number}
            )
            too_many = await client.recv_type("recovery_failed")
            subscribed = await client.recv_type("subscribed")
        return old, purged, failed, recovered, many, too_many, subscribed

    old, purged, failed, recovered, many, too_many, subscribed = run(scenario())
    assert purged == 2
    assert failed["reason"] == "BEYOND_RETENTION"
    assert failed["oldest_sequence"] == old[2].sequence_number
    assert recovered["seq"] == old[2].sequence_number
    assert too_many["reason"] == "TOO_MANY_EVENTS"
    assert subscribed["position"] == many[-1].sequence_number


def test_three_hundred_clients_connect_at_once_and_all_receive_an_event(daphne_server, apublish):
    async def scenario():
        async def one(i):
            async with ws_connect(daphne_server, "topics=crowd") as client:
                await client.recv_type("subscribed")
                ready.append(i)
                await go.wait()
                (event,) = await client.events(1, timeout=30)
                return event["seq"]

        ready: list[int] = []
        go = asyncio.Event()
        tasks = [asyncio.create_task(one(i)) for i in range(300)]
        while len(ready) < 300:
            await asyncio.sleep(0.05)
            failed = [t for t in tasks if t.done() and t.exception()]
            if failed:
                raise failed[0].exception()
        event = await apublish(
            event_type="crowd.hello",
            category="system",
            data={},
            visibility="public",
            topics=["crowd"],
        )
        go.set()
        return event, await asyncio.gather(*tasks)

    event, seqs = run(scenario())
    assert seqs == [event.sequence_number] * 300
    assert "Too many connections" not in daphne_server.log()
    # Only this test's connections: other tests share the server and the table.
    crowd = WebsocketConnection.objects.filter(subscriptions__contains=["crowd"])
    wait_for(
        lambda: crowd.filter(connection_status="disconnected").count() >= 300 or None,
        timeout=120,
    )
    assert crowd.count() == 300
    assert crowd.filter(connection_status="disconnected").count() == 300
