"""Per-connection preferences and client info, end to end: a real daphne process, real
websocket clients (``websockets``, with and without permessage-deflate), the test
database and this run's Redis. See ``realtime.preferences`` and
``realtime.client_info``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from websockets.asyncio.client import connect
from websockets.frames import Opcode

from realtime.models import WebsocketConnection

from .conftest import DaphneServer, WsClient, run, wait_for

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.xdist_group("realtime_e2e"),
    pytest.mark.django_db(transaction=True),
]

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1"
)
FLUSH_MESSAGES = 40  # the server below writes counters every 40 messages, else at close


@pytest.fixture(scope="module")
def prefs_server(django_db_setup) -> Iterator[DaphneServer]:
    server = DaphneServer(
        {
            "NP_WS_FLUSH_MESSAGES": str(FLUSH_MESSAGES),
            "NP_WS_FLUSH_SECONDS": "3600",
            "NP_WS_GEO_HEADER": "X-Geo",
            # the only trusted proxy: a second loopback address the tests connect from
            "NP_WS_TRUSTED_PROXIES": "127.0.0.2/32",
        }
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _server_writes_settle(request: pytest.FixtureRequest) -> Iterator[None]:
    """As conftest's ``_server_writes_settle_before_flush``, for this module's server."""
    yield
    open_rows = WebsocketConnection.objects.exclude(connection_status="disconnected")
    deadline = time.monotonic() + 20
    while open_rows.exists() and time.monotonic() < deadline:
        time.sleep(0.1)


@contextlib.asynccontextmanager
async def open_ws(
    server: DaphneServer,
    query: str = "",
    *,
    token: str | None = None,
    compression: str | None = None,
    user_agent: str = "np-tests/1.0",
    headers: dict[str, str] | None = None,
    local_host: str | None = None,
):
    """A client as conftest's ``ws_connect``, with the knobs these tests turn: offering
    permessage-deflate, the User-Agent, extra headers and the local address."""
    all_headers = dict(headers or {})
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    extra: dict[str, Any] = {}
    if local_host:
        extra["local_addr"] = (local_host, 0)
    ws = await connect(
        f"ws://{server.base}/ws/v1/events/" + (f"?{query}" if query else ""),
        origin=server.origin,
        additional_headers=all_headers,
        user_agent_header=user_agent,
        compression=compression,
        proxy=None,
        ping_interval=None,
        open_timeout=20,
        max_queue=None,
        **extra,
    )
    client = WsClient(ws)
    try:
        connected = await client.recv()
        assert connected["type"] == "connected", connected
        client.connected = connected  # type: ignore[attr-defined]
        yield client
    finally:
        await ws.close()


async def next_message(client: WsClient, timeout: float = 15) -> Any:
    """The next websocket message, decoded (an object, or an array of event frames)."""
    text = await asyncio.wait_for(client.ws.recv(), timeout)
    return json.loads(text)


async def collect_events(
    client: WsClient, until_seq: int | None = None, *, until: Any = None, timeout: float = 20
) -> list[tuple[float, list[dict[str, Any]]]]:
    """Every message carrying events (with its arrival time) up to and including the one
    that carries ``until_seq`` (or after which ``until(events so far)`` holds); pings are
    passed over, anything else fails."""
    messages: list[tuple[float, list[dict[str, Any]]]] = []
    received: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        frame = await next_message(client, max(0.1, deadline - time.monotonic()))
        if isinstance(frame, dict) and frame["type"] == "ping":
            continue
        events = frame if isinstance(frame, list) else [frame]
        assert all(e["type"] == "event" for e in events), frame
        messages.append((time.monotonic(), events))
        received.extend(events)
        if any(e["seq"] == until_seq for e in events) or (until is not None and until(received)):
            return messages


async def publish_public(apublish, topic: str, event_type: str, **kwargs: Any) -> Any:
    kwargs.setdefault("category", "system")
    kwargs.setdefault("data", {})
    return await apublish(event_type=event_type, visibility="public", topics=[topic], **kwargs)


def _row(connection_id: str) -> WebsocketConnection:
    return WebsocketConnection.objects.get(pk=connection_id)


arow = sync_to_async(_row)


def flat(messages: list[tuple[float, list[dict[str, Any]]]]) -> list[dict[str, Any]]:
    return [event for _, events in messages for event in events]


# --- rate limit ---------------------------------------------------------------------


def test_rate_limit_coalesces_the_excess_into_batch_frames_and_loses_nothing(
    prefs_server, apublish
):
    async def scenario():
        async with open_ws(prefs_server, "topics=rate.a&rate=2") as client:
            await client.recv_type("subscribed")
            # read while publishing, so arrival times are the server's send times
            reader = asyncio.create_task(collect_events(client, until=lambda got: len(got) >= 30))
            # when: 30 events are published as fast as the test can (well over 2/s)
            published = [
                await publish_public(apublish, "rate.a", "tick", data={"n": n}) for n in range(30)
            ]
            messages = await reader
            return client.connected, published, messages

    connected, published, messages = run(scenario())
    # then: every event arrived, once, in order ...
    seqs = [e["seq"] for _, events in messages for e in events]
    assert seqs == [e.sequence_number for e in published]
    assert [e["data"]["n"] for _, events in messages for e in events] == list(range(30))
    # ... in fewer messages than events, the excess coalesced into arrays ...
    assert connected["preferences"]["rate"] == 2
    assert connected["preferences"]["coalesce"] is True
    assert len(messages) < 30
    assert max(len(events) for _, events in messages) > 1
    # ... and never more than 2 messages a second (0.5 s apart, less network jitter)
    gaps = [b[0] - a[0] for a, b in zip(messages, messages[1:], strict=False)]
    assert all(gap > 0.35 for gap in gaps), gaps


def test_latest_only_events_collapse_to_the_newest_and_name_what_they_replace(
    prefs_server, apublish
):
    async def scenario():
        async with open_ws(
            prefs_server, "topics=auction.prices&rate=1&latest=auction_price_changed"
        ) as client:
            await client.recv_type("subscribed")
            reader = asyncio.create_task(
                collect_events(
                    client, until=lambda got: any(e["data"].get("price") == 10 for e in got)
                )
            )
            prices, bids = [], []
            for n in range(1, 11):
                prices.append(
                    await publish_public(
                        apublish,
                        "auction.prices",
                        "auction_price_changed",
                        category="auction",
                        data={"price": n},
                    )
                )
                if n % 3 == 0:
                    bids.append(
                        await publish_public(
                            apublish, "auction.prices", "bid_placed", category="bid", data={"n": n}
                        )
                    )
            messages = await reader
            return prices, bids, messages

    prices, bids, messages = run(scenario())
    events = [e for _, batch in messages for e in batch]
    price_events = [e for e in events if e["event_type"] == "auction_price_changed"]
    # then: fewer price events than published, the newest last, and every price event
    # either delivered or named in the "collapsed" list of the one that replaced it
    assert len(price_events) < len(prices)
    assert price_events[-1]["data"] == {"price": 10}
    accounted = sorted(
        [e["seq"] for e in price_events] + [s for e in price_events for s in e.get("collapsed", [])]
    )
    assert accounted == [p.sequence_number for p in prices]
    for event in price_events:
        assert all(seq < event["seq"] for seq in event.get("collapsed", []))
    # other event types are never collapsed, and the stream stays in sequence order
    assert [e["seq"] for e in events if e["event_type"] == "bid_placed"] == [
        b.sequence_number for b in bids
    ]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)


def test_a_replay_under_a_rate_limit_collapses_latest_only_events_too(prefs_server, apublish):
    async def scenario():
        start = await publish_public(apublish, "auction.replay", "start")
        prices = [
            await publish_public(
                apublish, "auction.replay", "auction_price_changed", data={"price": n}
            )
            for n in range(1, 21)
        ]
        query = (
            f"topics=auction.replay&since={start.sequence_number}"
            "&rate=1&latest=auction_price_changed"
        )
        async with open_ws(prefs_server, query) as client:
            messages = await collect_events(client, prices[-1].sequence_number)
            subscribed = await client.recv_type("subscribed")
        return prices, messages, subscribed

    prices, messages, subscribed = run(scenario())
    # the replay is one coalesced delivery: the newest price, naming the 19 it replaces
    (events,) = [batch for _, batch in messages]
    (newest,) = events
    assert newest["data"] == {"price": 20}
    assert newest["collapsed"] == [p.sequence_number for p in prices[:-1]]
    assert subscribed["replayed"] == 20


# --- filters ------------------------------------------------------------------------


def test_filters_apply_to_replayed_and_live_events_alike_and_can_be_changed(
    prefs_server, user, make_token, apublish
):
    token = make_token(user)
    kinds = [  # (event_type, category, priority)
        ("a", "system", "normal"),
        ("a", "bid", "high"),
        ("b", "bid", "critical"),
        ("c", "user", "critical"),
        ("a", "system", "low"),
        ("c", "system", "high"),
    ]

    async def publish_all(tag: str) -> list[Any]:
        return [
            await publish_public(
                apublish, "room.f", et, category=cat, priority=pri, data={"tag": tag, "i": i}
            )
            for i, (et, cat, pri) in enumerate(kinds)
        ]

    async def scenario():
        start = await publish_public(apublish, "room.f", "start")
        backlog = await publish_all("replay")
        query = f"topics=room.f&since={start.sequence_number}&event_types=a,c&min_priority=high"
        async with open_ws(prefs_server, query, token=token) as client:
            # the last match of the backlog (index 5, "c"/high) closes the replay
            replayed = flat(await collect_events(client, backlog[5].sequence_number))
            subscribed = await client.recv_type("subscribed")
            live = await publish_all("live")
            live_got = flat(await collect_events(client, live[5].sequence_number))
            # when: the client changes its filters in a preferences frame
            await client.send(
                {
                    "type": "preferences",
                    "event_types": None,
                    "min_priority": None,
                    "categories": ["bid"],
                }
            )
            answer = await client.recv_type("preferences")
            stored = await arow(client.connected["connection_id"])
            changed = await publish_all("changed")
            sentinel = await publish_public(apublish, "room.f", "x", category="bid")
            changed_got = flat(await collect_events(client, sentinel.sequence_number))
        return backlog, replayed, subscribed, live, live_got, answer, stored, changed, changed_got

    backlog, replayed, subscribed, live, live_got, answer, stored, changed, changed_got = run(
        scenario()
    )
    wanted = [1, 3, 5]  # event type a or c, priority high or above
    assert [e["seq"] for e in replayed] == [backlog[i].sequence_number for i in wanted]
    assert subscribed["replayed"] == len(wanted)
    assert [e["seq"] for e in live_got] == [live[i].sequence_number for i in wanted]
    assert answer["preferences"] == {
        "rate": None,
        "event_types": None,
        "categories": ["bid"],
        "min_priority": None,
        "latest": [],
        "coalesce": False,
    }
    assert stored.user_preferences == answer["preferences"]
    assert [e["seq"] for e in changed_got[:-1]] == [changed[i].sequence_number for i in (1, 2)]


def test_invalid_preferences_get_an_error_frame_naming_the_field_and_change_nothing(
    prefs_server, apublish
):
    bad_frames = [
        ({"type": "preferences", "rate": 0}, "rate"),
        ({"type": "preferences", "rate": "fast"}, "rate"),
        ({"type": "preferences", "min_priority": "urgent"}, "min_priority"),
        ({"type": "preferences", "categories": ["nope"]}, "categories"),
        ({"type": "preferences", "event_types": "a"}, "event_types"),
        ({"type": "preferences", "event_types": [""]}, "event_types"),
        ({"type": "preferences", "rate": 5, "coalesce": False}, "coalesce"),
        ({"type": "preferences", "colour": "blue"}, "colour"),
        ({"type": "hello", "preferences": ["rate", 5]}, "preferences"),
    ]

    async def scenario():
        # a bad value in the connect URL: connected with the defaults, then told why
        async with open_ws(prefs_server, "topics=bad.p&rate=abc&min_priority=high") as client:
            url_error = await client.recv_type("error", skip=("ping", "subscribed"))
            url_prefs = client.connected["preferences"]
        async with open_ws(prefs_server, "topics=bad.p&event_types=keep") as client:
            await client.recv_type("subscribed")
            errors = []
            for frame, _ in bad_frames:
                await client.send(frame)
                errors.append(await client.recv_type("error"))
            stored = await arow(client.connected["connection_id"])
            # the connection still works, with the preferences it had
            await publish_public(apublish, "bad.p", "drop")
            kept = await publish_public(apublish, "bad.p", "keep")
            got = await collect_events(client, kept.sequence_number)
            # a valid hello with preferences is answered like a preferences frame
            await client.send({"type": "hello", "reconnect": 1, "preferences": {"rate": 3}})
            hello_answer = await client.recv_type("preferences")
        return url_error, url_prefs, errors, stored, got, hello_answer

    url_error, url_prefs, errors, stored, got, hello_answer = run(scenario())
    assert url_error["code"] == "INVALID_PREFERENCES"
    assert url_error["field"] == "rate"
    assert url_prefs["rate"] is None and url_prefs["min_priority"] is None
    assert [(e["code"], e["field"]) for e in errors] == [
        ("INVALID_PREFERENCES", field) for _, field in bad_frames
    ]
    assert all(e["message"].startswith(f"{e['field']}: ") for e in errors)
    assert stored.user_preferences["event_types"] == ["keep"]
    assert stored.user_preferences["rate"] is None
    assert [e["event_type"] for _, batch in got for e in batch] == ["keep"]
    assert hello_answer["preferences"]["rate"] == 3
    assert hello_answer["preferences"]["coalesce"] is True
    assert hello_answer["preferences"]["event_types"] == ["keep"]  # kept: not named


# --- permessage-deflate -------------------------------------------------------------


def test_permessage_deflate_is_negotiated_when_offered_and_recorded(prefs_server, apublish):
    payload = {"text": "the same words again " * 500}

    async def scenario():
        async with open_ws(prefs_server, "topics=zip.a", compression="deflate") as client:
            await client.recv_type("subscribed")
            extension_header = client.ws.response.headers.get("Sec-WebSocket-Extensions", "")
            (deflate,) = client.ws.protocol.extensions
            compressed_frames = []
            decode = deflate.decode

            def watching_decode(frame, *, max_size=None):
                if frame.opcode in (Opcode.TEXT, Opcode.CONT):  # not the closing frames
                    compressed_frames.append(frame.rsv1)
                return decode(frame, max_size=max_size)

            deflate.decode = watching_decode
            event = await publish_public(apublish, "zip.a", "big", data=payload)
            (got,) = await client.events(1)
            row = await arow(client.connected["connection_id"])
            on = (client.connected, extension_header, compressed_frames, got, event, row)
        async with open_ws(prefs_server, "topics=zip.a") as client:
            plain_header = client.ws.response.headers.get("Sec-WebSocket-Extensions")
            row = await arow(client.connected["connection_id"])
            off = (client.connected, plain_header, client.ws.protocol.extensions, row)
        return on, off

    (connected, header, compressed_frames, got, event, row), off = run(scenario())
    assert "permessage-deflate" in header
    assert connected["compression"] is True
    assert row.compression_enabled is True
    # the event itself travelled compressed (RSV1 set) and arrived intact
    assert compressed_frames and all(compressed_frames)
    assert got["seq"] == event.sequence_number and got["data"] == payload
    connected_off, header_off, extensions_off, row_off = off
    assert header_off is None and extensions_off == []
    assert connected_off["compression"] is False
    assert row_off.compression_enabled is False


# --- bandwidth, device, geo ---------------------------------------------------------


def test_bandwidth_usage_holds_bytes_per_minute_written_in_batches(prefs_server):
    async def scenario():
        async with open_ws(prefs_server) as client:
            connection_id = client.connected["connection_id"]
            for _ in range(5):  # 1 + 10 messages: under the flush threshold
                await client.send({"type": "unsubscribe", "topics": ["none.here"]})
                await client.recv_type("unsubscribed")
            before = await arow(connection_id)
            for _ in range(20):  # past it: one batched write
                await client.send({"type": "unsubscribe", "topics": ["none.here"]})
                await client.recv_type("unsubscribed")
            written = await sync_to_async(wait_for)(lambda: _row(connection_id).bandwidth_usage)
            sent = sum(len(t.encode()) for t in client.sent)
            received = sum(len(t.encode()) for t in client.received_raw)
        return connection_id, before, written, sent, received

    connection_id, before, written, sent, received = run(scenario())
    # not written per frame ...
    assert before.bandwidth_usage is None and before.messages_received == 0
    # ... but in a batch while open: the totals of that moment, per minute
    assert written["unit"] == "bytes/minute"
    assert written["total_in"] <= sent and written["total_out"] <= received
    assert written["total_in"] > 0 and written["total_out"] > 0
    assert sum(m["in"] for m in written["minutes"]) == written["total_in"]
    # and at close, everything, matching the byte counters
    row = wait_for(
        lambda: WebsocketConnection.objects.filter(
            pk=connection_id, connection_status="disconnected"
        ).first()
    )
    usage = row.bandwidth_usage
    assert usage["total_in"] == sent == row.bytes_received
    assert usage["total_out"] == received == row.bytes_sent
    assert sum(m["in"] for m in usage["minutes"]) == sent
    assert sum(m["out"] for m in usage["minutes"]) == received
    assert all(m["minute"].endswith("Z") for m in usage["minutes"])


def test_device_info_is_parsed_from_the_user_agent(prefs_server):
    async def scenario():
        async with open_ws(prefs_server, user_agent=IPHONE_SAFARI) as client:
            phone = client.connected["connection_id"]
        async with open_ws(prefs_server, user_agent="np-tests/1.0") as client:
            unknown = client.connected["connection_id"]
        return phone, unknown

    phone, unknown = run(scenario())
    info = _row(phone).device_info
    assert info["browser"] == {"family": "Mobile Safari", "version": "17.1.2"}
    assert info["os"] == {"family": "iOS", "version": "17.1.2"}
    assert info["device"] == {"family": "iPhone", "brand": "Apple", "model": "iPhone"}
    assert info["is_bot"] is False
    assert _row(phone).user_agent == IPHONE_SAFARI
    assert _row(unknown).device_info is None


def test_geo_location_is_taken_only_from_a_configured_trusted_proxy(prefs_server):
    geo = {"X-Geo": "country=de; region=BE; city=Berlin; lat=52.52; lon=13.40"}

    async def scenario():
        # from the trusted proxy's address (127.0.0.2)
        async with open_ws(prefs_server, headers=geo, local_host="127.0.0.2") as client:
            trusted = client.connected["connection_id"]
        # the same header from any other peer, even one claiming to forward for the proxy
        spoof = {**geo, "X-Forwarded-For": "127.0.0.2"}
        async with open_ws(prefs_server, headers=spoof, local_host="127.0.0.1") as client:
            untrusted = client.connected["connection_id"]
        # the trusted proxy without the header, or with a malformed one
        async with open_ws(prefs_server, local_host="127.0.0.2") as client:
            absent = client.connected["connection_id"]
        bad = {"X-Geo": "country=Germany"}
        async with open_ws(prefs_server, headers=bad, local_host="127.0.0.2") as client:
            malformed = client.connected["connection_id"]
        return trusted, untrusted, absent, malformed

    trusted, untrusted, absent, malformed = run(scenario())
    assert _row(trusted).geo_location == {
        "country": "DE",
        "region": "BE",
        "city": "Berlin",
        "latitude": 52.52,
        "longitude": 13.4,
        "source": "X-Geo",
    }
    assert _row(trusted).client_ip == "127.0.0.2"
    assert _row(untrusted).geo_location is None
    assert _row(absent).geo_location is None
    assert _row(malformed).geo_location is None


def test_geo_location_is_off_by_default(daphne_server):
    async def scenario():
        async with open_ws(
            daphne_server, headers={"X-Geo": "country=DE"}, local_host="127.0.0.2"
        ) as client:
            return client.connected["connection_id"]

    assert _row(run(scenario())).geo_location is None
