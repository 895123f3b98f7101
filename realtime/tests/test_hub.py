"""The per-process fan-out (``realtime.hub``) and coalesced frames, end to end on ONE
daphne process: several connections per user, batched and unbatched, anonymous ones,
and a randomized mix of visibilities; plus the replay frame builder."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

import pytest

from realtime import selectors, services
from realtime.models import RealTimeEvent, WebsocketConnection
from realtime.wire import text_frame

from .conftest import run, wait_for, ws_connect

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("realtime_e2e"),
    pytest.mark.django_db(transaction=True),
]


def _all_closed() -> bool:
    """The server writes a closed connection's row after the client has gone; the test
    database is flushed after the test, so wait for those writes first."""
    return wait_for(
        lambda: not WebsocketConnection.objects.exclude(connection_status="disconnected").exists()
    )


async def _events_until(client, end_seq: int) -> tuple[list[dict], int]:
    """Every event up to the one numbered ``end_seq`` (arrays unpacked) and how many
    websocket messages were arrays."""
    events: list[dict] = []
    arrays = 0
    while True:
        text = await client.ws.recv()
        decoded = json.loads(text)
        if isinstance(decoded, list):
            arrays += 1
            frames = decoded
        else:
            frames = [decoded]
        for frame in frames:
            if frame["type"] != "event":
                continue
            if frame["seq"] == end_seq:
                return events, arrays
            events.append(frame)


def test_per_process_fan_out_honours_visibility_for_many_connections_on_one_process(
    daphne_server, make_user, make_token, apublish
):
    alice, bob = make_user(), make_user()
    tokens = {"alice": make_token(alice), "bob": make_token(bob)}
    users = {"alice": alice, "bob": bob}
    topics = ["hub.x", "hub.y"]
    rng = random.Random(20261121)
    # two connections per user (one asking for coalesced frames), two anonymous ones,
    # and one of alice's subscribed to a single topic: all on the same server process
    specs = {
        "alice": ("alice", "", topics),
        "alice_batch": ("alice", "batch=1", topics),
        "alice_x": ("alice", "", ["hub.x"]),
        "bob": ("bob", "", topics),
        "bob_batch": ("bob", "batch=1", topics),
        "anon": (None, "", topics),
        "anon_batch": (None, "batch=1", topics),
    }

    def visible(who: str | None, sub: list[str], vis: str, topic, owner, targets) -> bool:
        if vis in ("public", "authenticated"):
            return topic in sub and (vis == "public" or who is not None)
        if who is None:
            return False
        return owner == who if vis == "private" else who in targets

    async def scenario():
        ctx = {
            name: ws_connect(daphne_server, query, token=tokens.get(who) if who else None)
            for name, (who, query, _sub) in specs.items()
        }
        clients = {}
        for name, cm in ctx.items():
            clients[name] = await cm.__aenter__()
            await clients[name].send({"type": "subscribe", "topics": specs[name][2]})
            await clients[name].recv_type("subscribed")
        expected = {name: [] for name in specs}
        for n in range(200):
            vis = rng.choice(["public", "authenticated", "private", "targeted"])
            topic = rng.choice(topics) if vis in ("public", "authenticated") else None
            owner = rng.choice(["alice", "bob"]) if vis == "private" else None
            targets = (
                rng.choice([["alice"], ["bob"], ["alice", "bob"]]) if vis == "targeted" else []
            )
            event = await apublish(
                event_type=f"hub.{vis}",
                category="user",
                data={"n": n},
                visibility=vis,
                topics=[topic] if topic else [],
                user=users[owner] if owner else None,
                target_users=[users[t] for t in targets],
            )
            for name, (who, _query, sub) in specs.items():
                if visible(who, sub, vis, topic, owner, targets):
                    expected[name].append(event.sequence_number)
        end = await apublish(
            event_type="end", category="system", data={}, visibility="public", topics=topics
        )
        received = {}
        for name, client in clients.items():
            events, _arrays = await _events_until(client, end.sequence_number)
            received[name] = [e["seq"] for e in events]
            assert all("target_audience" not in e for e in events)
            if specs[name][0] is None:
                assert {e["visibility"] for e in events} == {"public"}
        for cm in ctx.values():
            await cm.__aexit__(None, None, None)
        return expected, received

    expected, received = run(scenario())
    assert _all_closed()
    for name in specs:
        assert received[name] == expected[name], name
    # the rules really split the clients
    assert expected["alice"] == expected["alice_batch"] != expected["bob"]
    assert set(expected["alice_x"]) < set(expected["alice"])
    assert expected["anon"] == expected["anon_batch"]
    assert len(expected["anon"]) < len(expected["bob"])


def test_replay_with_batch_sends_json_arrays_and_without_one_frame_per_event(
    daphne_server, user, make_token, apublish
):
    token = make_token(user)

    async def scenario():
        start = await apublish(
            event_type="t", category="system", data={}, visibility="public", topics=["hub.r"]
        )
        backlog = [
            await apublish(
                event_type="t",
                category="system",
                data={"n": n},
                visibility="public",
                topics=["hub.r"],
            )
            for n in range(250)
        ]
        end = await apublish(
            event_type="end", category="system", data={}, visibility="public", topics=["hub.r"]
        )
        results = {}
        for query in ("batch=1", ""):
            async with ws_connect(daphne_server, query, token=token) as client:
                await client.send(
                    {"type": "subscribe", "topics": ["hub.r"], "since": start.sequence_number}
                )
                results[query] = await _events_until(client, end.sequence_number)
        return backlog, results

    backlog, results = run(scenario())
    assert _all_closed()
    seqs = [e.sequence_number for e in backlog]
    batched, arrays = results["batch=1"]
    single, no_arrays = results[""]
    assert [e["seq"] for e in batched] == seqs
    assert [e["data"]["n"] for e in batched] == list(range(250))
    # 250 replayed events; the last (end) is the 251st: 200 + 51 in two arrays
    assert arrays == 2
    assert [e["seq"] for e in single] == seqs
    assert no_arrays == 0


def test_replay_frames_carry_the_same_values_as_live_frames(user, other_user):
    # given: events with every optional field set, and none
    full = services.publish(
        event_type="outbid",
        category="notification",
        data={"amount": "12.50", "nested": {"b": [1, 2], "a": "é"}},
        visibility="targeted",
        target_users=[user, other_user],
        priority="high",
        ack_required=True,
        ack_timeout=7,
        correlation_id="corr-1",
        previous_event_id="5b2f8c1e-0f0a-4c4e-9a55-1d9a3b1c2d3e",
        metadata={"source": "test"},
        retention_policy="long",
    )
    bare = services.publish(
        event_type="tick", category="system", data={}, visibility="public", topics=["a", "b"]
    )
    # when: they are read the replay's way
    messages = selectors.event_messages_since(
        user_id=user.pk, topics=["a"], include_private=True, since=0, limit=10
    )
    # then: the frames decode to what the live path sends
    by_seq = {m["seq"]: m for m in messages}
    for event in (full, bare):
        row = RealTimeEvent.objects.get(pk=event.pk)
        message = by_seq[event.sequence_number]
        assert json.loads(message["text"]) == json.loads(services.event_text(row))
        assert message["n"] == len(message["text"].encode())
        assert message["id"] == str(event.pk)
    assert by_seq[full.sequence_number]["ack"] == 7
    assert by_seq[bare.sequence_number]["ack"] == 0


@pytest.mark.parametrize("microsecond", [0, 1, 500_000])
def test_replayed_ids_timestamps_and_topics_read_as_text_are_the_live_frames(microsecond):
    # given: an event stamped on a whole second or not, with topics that need escaping
    topics = ["plain", 'quote"d', "back\\slash", "comma,name", "é-accent", "tab\tname"]
    event = services.publish(
        event_type="tick", category="system", data={}, visibility="public", topics=["plain"]
    )
    stamp = datetime(2031, 5, 6, 7, 8, 9, microsecond, tzinfo=UTC)
    RealTimeEvent.objects.filter(pk=event.pk).update(
        generated_at=stamp, expires_at=stamp + timedelta(days=1), broadcast_channels=topics
    )
    plain = services.publish(
        event_type="tock", category="system", data={}, visibility="public", topics=["a", "b"]
    )
    # when: they are read the replay's way
    messages = selectors.event_messages_by_sequence([event.sequence_number, plain.sequence_number])
    # then: the text is the live path's, to the character for ids and timestamps, and the
    # topic list the preferences filter on is every name
    for message, pk in zip(messages, (event.pk, plain.pk), strict=True):
        row = RealTimeEvent.objects.get(pk=pk)
        live = json.loads(services.event_text(row))
        assert json.loads(message["text"]) == live
        assert message["id"] == str(row.pk)
        assert message["tk"] == ",".join(row.broadcast_channels)
    first = json.loads(messages[0]["text"])
    assert first["generated_at"] == stamp.isoformat()
    assert first["expires_at"] == (stamp + timedelta(days=1)).isoformat()
    assert messages[1]["tk"] == "a,b"


@pytest.mark.parametrize(
    ("size", "header"),
    [
        (2, b"\x81\x02"),
        (200, b"\x81\x7e\x00\xc8"),
        (70_000, b"\x81\x7f" + (70_000).to_bytes(8, "big")),
    ],
)
def test_ready_frames_use_the_length_encoding_of_their_size(size, header):
    # RFC 6455 5.2: 7-bit length up to 125, 16-bit up to 65535, else 64-bit; unmasked
    payload = b"x" * size
    assert text_frame(payload) == header + payload


def test_live_events_of_every_size_arrive_whole_and_in_order_between_other_frames(
    daphne_server, user, make_token, apublish
):
    # given: a signed-in client (private events and a public topic) and an anonymous one,
    # events whose frames need 16- and 64-bit lengths, and pongs (the ASGI path) between
    token = make_token(user)
    sizes = [10, 1_000, 70_000, 10, 200_000, 10]

    async def scenario():
        async with (
            ws_connect(daphne_server, "topics=hub.w", token=token) as mine,
            ws_connect(daphne_server, "topics=hub.w") as anon,
        ):
            await mine.recv_type("subscribed")
            await anon.recv_type("subscribed")
            for n, size in enumerate(sizes):
                await apublish(
                    event_type="w",
                    category="system",
                    data={"n": n, "blob": "y" * size},
                    visibility="private",
                    user=user,
                )
                await apublish(
                    event_type="w",
                    category="system",
                    data={"n": n, "blob": "z" * size},
                    visibility="public",
                    topics=["hub.w"],
                )
                await mine.send({"type": "ping"})
            frames = [await mine.recv_type("event", "pong") for _ in range(3 * len(sizes))]
            public = await anon.events(len(sizes), skip=("ping",))
        return frames, public

    frames, public = run(scenario())
    assert _all_closed()
    # then: every event whole, in publish order, and every pong (the pongs may overtake
    # events the hub has not read from the layer yet, so only their number is checked)
    events = [f for f in frames if f["type"] == "event"]
    assert [(f["visibility"], f["data"]["n"]) for f in events] == [
        (visibility, n) for n in range(len(sizes)) for visibility in ("private", "public")
    ]
    assert sum(f["type"] == "pong" for f in frames) == len(sizes)
    blobs = [f["data"]["blob"] for f in frames if f["type"] == "event"]
    assert blobs == [c * size for size in sizes for c in "yz"]
    assert [e["data"]["blob"] for e in public] == ["z" * size for size in sizes]
