"""End to end, under faults: frame limits and bad connect URLs, Redis restarts, concurrent
publishers on two server processes, acks across connections, membership clean-up.

Real daphne processes, real websocket clients; the Redis-restart tests start their own
``redis-server`` (killed and restarted by the test), never the shared one."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from realtime.models import RealTimeEvent, WebsocketConnection

from .conftest import (
    METRICS_TOKEN,
    DaphneServer,
    WsClient,
    run,
    start_publisher,
    wait_for,
    ws_connect,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("realtime_e2e"),
    pytest.mark.django_db(transaction=True),
]


def test_a_2mb_frame_closes_with_1009_and_one_under_the_limit_gets_message_too_large(
    daphne_server,
):
    async def scenario():
        async with ws_connect(daphne_server) as client:
            # just under the server's frame limit (1 MiB): read, refused with an error frame
            await client.send("x" * (1024 * 1024 - 1024))
            error = await client.recv_type("error")
            assert error["code"] == "MESSAGE_TOO_LARGE"
            await client.barrier()  # the connection is still usable
        async with ws_connect(daphne_server) as client:
            await client.ws.send("x" * (2 * 1024 * 1024))
            with pytest.raises(ConnectionClosed):
                while True:
                    await client.recv()
            assert client.ws.close_code == 1009  # a close frame (a dropped socket is 1006)

    run(scenario())


@pytest.mark.parametrize(
    ("query", "code", "field"),
    [
        ("since=-5", "INVALID_SINCE", "since"),
        ("since=abc", "INVALID_SINCE", "since"),
        ("topics=Bad%20Topic", "INVALID_TOPIC", "topics"),
        ("batch=maybe", "INVALID_BATCH", "batch"),
    ],
)
def test_invalid_connect_url_parameters_get_the_subscribe_frames_error(
    daphne_server, query, code, field
):
    async def scenario():
        async with ws_connect(daphne_server, query) as client:
            error = await client.recv_type("error")
            assert (error["code"], error["field"]) == (code, field)
            # the same error as the frame form of the same input
            await client.send({"type": "subscribe", "topics": ["ok"], "since": -5})
            assert (await client.recv_type("error"))["code"] == "INVALID_SINCE"

    run(scenario())


# --- helpers ---------------------------------------------------------------------------


@contextlib.contextmanager
def daphne_processes(count: int, **env: str) -> Iterator[list[DaphneServer]]:
    servers = [DaphneServer(extra_env=env) for _ in range(count)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.stop()
        # the servers are gone: what they did not close is closed by the stale sweep
        WebsocketConnection.objects.exclude(connection_status="disconnected").update(
            connection_status="disconnected"
        )


@pytest.fixture(scope="module")
def two_servers(django_db_setup) -> Iterator[list[DaphneServer]]:
    """Two daphne processes on this run's Redis, shared by the tests of this module."""
    servers = [DaphneServer() for _ in range(2)]
    for server in servers:
        server.start()
    yield servers
    for server in servers:
        server.stop()


def use_redis(settings: Any, url: str) -> None:
    """This test process's channel layer (its publishes) on ``url``."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["hosts"][0]["address"] = url
    settings.CHANNEL_LAYERS = layers


async def events_until(client: WsClient, wanted: set[int], timeout: float = 15) -> list[int]:
    """The sequence numbers of the events ``client`` receives until it has seen every one
    of ``wanted`` (arrays unpacked); fails after ``timeout``."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while not wanted <= set(seen):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"missing {sorted(wanted - set(seen))}, got {seen}"
        text = await asyncio.wait_for(client.ws.recv(), remaining)
        decoded = json.loads(text)
        for frame in decoded if isinstance(decoded, list) else [decoded]:
            if frame["type"] == "event":
                seen.append(frame["seq"])
    return seen


async def no_more_events(client: WsClient) -> list[int]:
    """Events that arrive before a ping's pong (duplicates would show up here)."""
    return [f["seq"] for f in await client.barrier() if f["type"] == "event"]


# --- Redis restart ---------------------------------------------------------------------


def test_redis_restart_resumes_live_delivery_and_fills_the_gap_in_order_on_every_process(
    private_redis, settings, user, make_token, apublish
):
    """Clients stay connected through a Redis kill and an empty restart: topic (public
    and authenticated) and private events published before, during and after reach them
    in order, once, and live delivery is back within 5 s of Redis answering."""
    use_redis(settings, private_redis.url)
    token = make_token(user)

    async def publish_round(n: int) -> dict[str, int]:
        public = await apublish(
            event_type="r.pub",
            category="user",
            data={"n": n},
            visibility="public",
            topics=["rr.t"],
        )
        auth = await apublish(
            event_type="r.auth",
            category="user",
            data={"n": n},
            visibility="authenticated",
            topics=["rr.t"],
        )
        private = await apublish(
            event_type="r.priv",
            category="user",
            data={"n": n},
            visibility="private",
            user=user,
        )
        return {
            "public": public.sequence_number,
            "auth": auth.sequence_number,
            "private": private.sequence_number,
        }

    async def scenario(servers: list[DaphneServer]) -> None:
        async with (
            ws_connect(servers[0], "topics=rr.t", token=token) as alice_a,
            ws_connect(servers[1], "topics=rr.t", token=token) as alice_b,
            ws_connect(servers[1], "topics=rr.t") as anonymous,
        ):
            for client in (alice_a, alice_b, anonymous):
                await client.barrier()
            rounds = [await publish_round(0)]
            # when: Redis dies, events are published, it comes back empty
            private_redis.kill()
            rounds.append(await publish_round(1))
            await asyncio.to_thread(private_redis.start)
            answered = time.monotonic()
            rounds.append(await publish_round(2))
            everything = sorted(s for r in rounds for s in r.values())
            public = sorted(r["public"] for r in rounds)
            # then: each client gets all it may see, in order, once, within 5 s
            received = [
                await events_until(client, set(wanted), timeout=10)
                for client, wanted in (
                    (alice_a, everything),
                    (alice_b, everything),
                    (anonymous, public),
                )
            ]
            assert time.monotonic() - answered < 5
            assert received == [everything, everything, public]
            for client in (alice_a, alice_b, anonymous):
                assert await no_more_events(client) == []
            # and live delivery goes on as before
            last = await publish_round(3)
            for client, wanted in ((alice_a, sorted(last.values())), (anonymous, [last["public"]])):
                assert await events_until(client, set(wanted), timeout=5) == wanted

    with daphne_processes(2, REDIS_URL=private_redis.url) as servers:
        run(scenario(servers))


# --- order with concurrent publishers --------------------------------------------------


def _private_seqs(seqs: list[int]) -> set[int]:
    from django.db import connection

    try:
        return set(
            RealTimeEvent.objects.filter(
                sequence_number__in=seqs, visibility="private"
            ).values_list("sequence_number", flat=True)
        )
    finally:
        connection.close()


def test_four_publisher_processes_two_servers_every_connection_in_order_live_and_on_replay(
    two_servers, settings, user, make_token, tmp_path
):
    """Four processes publish at once (public on a topic, and private events of one user);
    connections on two daphne processes get strictly increasing sequence numbers: no
    reorder, no gap, no duplicate, live and on a replay from the start."""
    token = make_token(user)
    go = tmp_path / "go"
    per_publisher = 120

    async def scenario(servers: list[DaphneServer]) -> None:
        async with (
            ws_connect(servers[0], "topics=ord.t", token=token) as alice_a,
            ws_connect(servers[1], "topics=ord.t", token=token) as alice_b,
            ws_connect(servers[1], "topics=ord.t") as anonymous,
            ws_connect(servers[0], "topics=ord.t&batch=1") as batched,
        ):
            clients = (alice_a, alice_b, anonymous, batched)
            for client in clients:
                await client.barrier()
            publishers = [
                start_publisher(
                    redis_url=settings.REDIS_URL,
                    topic="ord.t",
                    count=per_publisher,
                    tag=f"p{n}",
                    go_file=go,
                    user=user if n % 2 else None,
                )
                for n in range(4)
            ]
            go.touch()
            outputs = await asyncio.gather(
                *(asyncio.to_thread(p.communicate, timeout=120) for p in publishers)
            )
            assert all(p.returncode == 0 for p in publishers)
            seqs = sorted(s for out, _ in outputs for s in json.loads(out))
            private = await asyncio.to_thread(_private_seqs, seqs)
            public = [s for s in seqs if s not in private]
            for client, wanted in (
                (alice_a, seqs),
                (alice_b, seqs),
                (anonymous, public),
                (batched, public),
            ):
                got = await events_until(client, set(wanted), timeout=30)
                assert got == wanted  # every one, in order, once
                assert await no_more_events(client) == []
        # and on replay from before the first
        async with ws_connect(
            servers[1], f"topics=ord.t&since={seqs[0] - 1}", token=token
        ) as replay:
            assert await events_until(replay, set(seqs), timeout=30) == seqs

    run(scenario(two_servers))


# --- acks across connections -----------------------------------------------------------


async def frames_for(client: WsClient, seconds: float) -> list[tuple[float, dict[str, Any]]]:
    """Every frame ``client`` receives in the next ``seconds`` (with arrival times)."""
    frames = []
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            frame = await client.recv(timeout=remaining)
        except TimeoutError:
            break
        frames.append((time.monotonic(), frame))
    return frames


def test_an_ack_on_one_connection_stops_redelivery_on_the_users_other_connections(
    two_servers, user, make_token, apublish
):
    """Three connections of one user on two server processes get an ack_required event;
    one acks it: the other two stop resending it within one ack_timeout."""
    token = make_token(user)

    async def scenario(servers: list[DaphneServer]) -> None:
        async with (
            ws_connect(servers[0], token=token) as first,
            ws_connect(servers[0], token=token) as second,
            ws_connect(servers[1], token=token) as third,
        ):
            for client in (first, second, third):
                await client.barrier()
            event = await apublish(
                event_type="r.ack",
                category="user",
                data={},
                visibility="private",
                user=user,
                ack_required=True,
                ack_timeout=1,
            )
            for client in (first, second, third):
                (got,) = await client.events(1)
                assert got["id"] == str(event.id)
            await first.send({"type": "ack", "event_id": str(event.id)})
            acked = await first.recv_type("acked")
            assert acked["event_id"] == str(event.id)
            acked_at = time.monotonic()
            for client in (second, third):
                late = [
                    frame
                    for at, frame in await frames_for(client, 3.0)
                    if frame.get("id") == str(event.id) and at > acked_at + 1.0
                ]
                assert late == []  # none resent after one ack_timeout

    run(scenario(two_servers))


# --- group membership lifecycle --------------------------------------------------------


def _members(group: str) -> set[bytes]:
    """The live members of ``group`` as a publisher sees them (expired ones dropped)."""
    import redis
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    client = redis.Redis.from_url(layer.hosts[0]["address"])
    try:
        key = layer._group_key(group)
        client.zremrangebyscore(key, 0, int(time.time()) - layer.group_expiry)
        return set(client.zrange(key, 0, -1))
    finally:
        client.close()


def test_a_stopped_server_leaves_its_groups_and_a_killed_ones_membership_expires(
    settings, make_user
):
    """A daphne process that shuts down removes its memberships at once; one killed
    with SIGKILL stops counting as a member after the group expiry (3 s here)."""
    layers = copy.deepcopy(settings.CHANNEL_LAYERS)
    layers["default"]["CONFIG"]["group_expiry"] = 3
    settings.CHANNEL_LAYERS = layers
    group = "topic.life.t.pub"

    async def scenario(stopped: DaphneServer, killed: DaphneServer) -> None:
        # given: a subscribed client on each server: both processes are members
        async with (
            ws_connect(stopped, "topics=life.t") as on_stopped,
            ws_connect(killed, "topics=life.t") as on_killed,
        ):
            for client in (on_stopped, on_killed):
                await client.barrier()
            both = await asyncio.to_thread(_members, group)
            assert len(both) == 2
            # live processes refresh their memberships: still members past the expiry
            await frames_for(on_killed, 4.0)
            assert await asyncio.to_thread(_members, group) == both
            # when: one shuts down (SIGTERM) with its client still connected
            await asyncio.to_thread(stopped.stop)
            # then: its membership went with it
            left = await asyncio.to_thread(_members, group)
            assert len(left) == 1 and left < both
            # when: the other is killed, its membership lapses after the group expiry
            killed.proc.kill()
            await asyncio.to_thread(killed.proc.wait, 10)
            assert await asyncio.to_thread(wait_for, lambda: not _members(group), 8)

    with daphne_processes(2, NP_CHANNEL_LAYER_GROUP_EXPIRY="3", NP_RT_HUB_REFRESH_SECONDS="1") as (
        stopped,
        killed,
    ):
        run(scenario(stopped, killed))


# --- overflow: messages the layer dropped ----------------------------------------------


def _gap_fills(server: DaphneServer) -> int:
    import urllib.request

    request = urllib.request.Request(
        f"{server.origin}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        for line in response.read().decode().splitlines():
            if line.startswith("np_realtime_gap_fill_events_total "):
                return int(float(line.split()[1]))
    raise AssertionError("np_realtime_gap_fill_events_total not in /metrics")


def test_events_the_channel_layer_dropped_are_filled_in_order_and_counted(
    two_servers, settings, user, make_token
):
    """A full channel queue drops messages silently (channels_redis' capacity): here the
    publisher's capacity is 0 for a burst, so the layer drops all of it. The server finds
    the gap, fills it from the database in order between the live events around it, and
    counts the fills in /metrics."""
    from realtime.services import publish_many

    token = make_token(user)
    server = two_servers[0]

    def burst(count: int, capacity: int | None = None) -> list[int]:
        if capacity is not None:
            layers = copy.deepcopy(settings.CHANNEL_LAYERS)
            layers["default"]["CONFIG"]["capacity"] = capacity
            settings.CHANNEL_LAYERS = layers
        from django.db import connection

        try:
            events = publish_many(
                [
                    {
                        "event_type": "o.burst",
                        "category": "user",
                        "data": {"n": n},
                        "visibility": "public",
                        "topics": ["over.t"],
                    }
                    for n in range(count)
                ]
            )
        finally:
            connection.close()  # a worker thread's connection
        return [e.sequence_number for e in events]

    async def scenario() -> None:
        before = await asyncio.to_thread(_gap_fills, server)
        async with ws_connect(server, "topics=over.t", token=token) as client:
            await client.barrier()
            seqs = await asyncio.to_thread(burst, 3)
            seqs += await asyncio.to_thread(burst, 40, 0)  # every message dropped
            seqs += await asyncio.to_thread(burst, 3, 1000)
            assert await events_until(client, set(seqs), timeout=10) == seqs
            assert await no_more_events(client) == []
        filled = await asyncio.to_thread(wait_for, lambda: _gap_fills(server) - before >= 40, 10)
        assert filled

    run(scenario())


def _drop_membership(group: str) -> None:
    """Remove every member of ``group`` in Redis, as a Redis that lost them would."""
    import redis
    from channels.layers import get_channel_layer

    layer = get_channel_layer()
    client = redis.Redis.from_url(layer.hosts[0]["address"])
    try:
        client.delete(layer._group_key(group))
    finally:
        client.close()


def test_an_event_of_two_topics_whose_copy_for_one_was_lost_still_reaches_both(
    two_servers, apublish
):
    """An event on two topics travels as one message per topic group. When the process
    gets one copy but not the other (its membership of the second group was lost), the
    subscribers of the second topic still get the event, from the database, in order."""
    server = two_servers[0]

    async def scenario() -> None:
        async with (
            ws_connect(server, "topics=mc.a") as on_a,
            ws_connect(server, "topics=mc.b") as on_b,
        ):
            for client in (on_a, on_b):
                await client.barrier()
            await asyncio.to_thread(_drop_membership, "topic.mc.b.pub")
            seqs = []
            for n in range(3):
                event = await apublish(
                    event_type="mc",
                    category="user",
                    data={"n": n},
                    visibility="public",
                    topics=["mc.a", "mc.b"],
                )
                seqs.append(event.sequence_number)
            assert await events_until(on_a, set(seqs), timeout=5) == seqs
            assert await events_until(on_b, set(seqs), timeout=5) == seqs
            for client in (on_a, on_b):
                assert await no_more_events(client) == []

    run(scenario())
