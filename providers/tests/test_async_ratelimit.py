"""The rate-limit token on the batch sender's event loop is taken with redis.asyncio
(issue 14, point 6): a slow or unreachable Redis delays the send that waits for it, never
the other coroutines on the loop; the limit itself still holds across both paths."""

from __future__ import annotations

import asyncio
import base64
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from providers import aio
from providers.services import SuccessTally, send_with_failover, send_with_failover_async

SECRET = "whsec_" + base64.b64encode(b"sixteen-byte-key-for-rl-async").decode()


@pytest.fixture
def limited_webhook(make_provider, monkeypatch, settings):
    monkeypatch.setenv("NP_TEST_RL_SECRET", SECRET)
    settings.NP_WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    return make_provider(
        provider_name="webhook-limited",
        provider_type="webhook",
        provider_class="webhook",
        credentials_required=["NP_TEST_RL_SECRET"],
        rate_limit_per_minute=3,
    )


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """A real TCP listener that accepts connections and never answers: a Redis that hangs."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"redis://127.0.0.1:{server.getsockname()[1]}/0"
    stop.set()
    thread.join(2)
    for conn in held:
        conn.close()
    server.close()


def test_a_hanging_redis_does_not_block_the_send_loop(
    limited_webhook, http_server, outbound, settings, silent_redis
):
    settings.REDIS_URL = silent_redis
    message = outbound(recipient=f"{http_server.url}/hook", idempotency_key="delivery-9-rl")

    async def scenario() -> tuple[object, list[float], float]:
        ticks: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:  # another coroutine on the same loop
            while not done.is_set():
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        tick_task = asyncio.ensure_future(ticker())
        started = time.monotonic()
        outcome = await send_with_failover_async(message, [limited_webhook], SuccessTally())
        elapsed = time.monotonic() - started
        done.set()
        await tick_task
        return outcome, ticks, elapsed

    outcome, ticks, elapsed = aio.submit(scenario()).result(timeout=30)

    # the token could not be taken (Redis never answered: fail open after the timeout) ...
    assert elapsed >= 0.9
    # ... and the send went out once the wait was over
    assert outcome.error is None and outcome.provider == limited_webhook
    assert len(http_server.requests) == 1
    # meanwhile the loop kept running the other coroutine: no gap near the 1 s timeout
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    assert len(ticks) >= 30 and max(gaps, default=elapsed) < 0.3, (len(ticks), gaps[:5])


def test_the_async_and_blocking_paths_share_one_limit(limited_webhook, http_server, outbound):
    message = outbound(recipient=f"{http_server.url}/hook")

    async def two_async() -> list[object]:
        tally = SuccessTally()
        return [await send_with_failover_async(message, [limited_webhook], tally) for _ in range(2)]

    first, second = aio.submit(two_async()).result(timeout=30)
    third = send_with_failover(message, [limited_webhook])  # the blocking path
    fourth = aio.submit(
        send_with_failover_async(message, [limited_webhook], SuccessTally())
    ).result(timeout=30)

    assert [o.error for o in (first, second, third)] == [None, None, None]
    assert fourth.error is not None and fourth.error.error_code == "RATE_LIMITED"
    assert fourth.error.retry_after is not None and 0 < fourth.error.retry_after <= 60
    assert len(http_server.requests) == 3
