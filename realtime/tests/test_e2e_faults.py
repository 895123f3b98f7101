"""End to end, under faults: frame limits and bad connect URLs, Redis restarts, concurrent
publishers on two server processes, acks across connections, membership clean-up.

Real daphne processes, real websocket clients; the Redis-restart tests start their own
``redis-server`` (killed and restarted by the test), never the shared one."""

from __future__ import annotations

import pytest
from websockets.exceptions import ConnectionClosed

from .conftest import run, ws_connect

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
