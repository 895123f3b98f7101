"""The Redis connection used for counters shared by every process (rate limits,
circuit breaker). Failing open: if Redis is down we still send, and log it."""

from __future__ import annotations

import asyncio
import os
import threading
import weakref

import redis
import redis.asyncio
from django.conf import settings

_clients: dict[tuple[int, str], redis.Redis] = {}
# per event loop (a closed loop's clients go with it), then per URL
_async_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, redis.asyncio.Redis]
] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
# the same fail-open budget as the blocking client: a slow or unreachable Redis costs a
# send at most this long, and on the async path it costs the event loop nothing
TIMEOUT_SECONDS = 1


def prefix() -> str:
    return str(getattr(settings, "NP_PROVIDERS_REDIS_PREFIX", "np:prov"))


def client() -> redis.Redis:
    url = str(settings.REDIS_URL)
    key = (os.getpid(), url)
    conn = _clients.get(key)
    if conn is None:
        with _lock:
            conn = _clients.get(key)
            if conn is None:
                conn = redis.Redis.from_url(
                    url,
                    socket_timeout=TIMEOUT_SECONDS,
                    socket_connect_timeout=TIMEOUT_SECONDS,
                    decode_responses=True,
                )
                _clients[key] = conn
    return conn


def async_client() -> redis.asyncio.Redis:
    """The asyncio client for the running event loop (the sender loop of
    ``providers.aio``): a redis.asyncio pool is bound to the loop that opened it, so there
    is one per (process, loop)."""
    url = str(settings.REDIS_URL)
    loop = asyncio.get_running_loop()
    with _lock:
        clients = _async_clients.setdefault(loop, {})
        conn = clients.get(url)
        if conn is None:
            conn = clients[url] = redis.asyncio.Redis.from_url(
                url,
                socket_timeout=TIMEOUT_SECONDS,
                socket_connect_timeout=TIMEOUT_SECONDS,
                decode_responses=True,
            )
    return conn
