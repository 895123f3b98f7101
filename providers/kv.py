"""The Redis connection used for counters shared by every process (rate limits,
circuit breaker, spend caps, receipt nonces). Failing open: if Redis is down we still send,
and log it.

Its URL is LIMITS_REDIS_URL (default REDIS_URL): a server, a sentinel service or a Redis
Cluster (``redis+cluster://node:port``). Every multi-key script and MULTI here keeps its
keys in one hash tag (:func:`slot_tag`), so it runs on a cluster as on one server."""

from __future__ import annotations

import asyncio
import os
import threading
import weakref

import redis
import redis.asyncio
from django.conf import settings

from notifyplatform.redis_pool import async_client as _async_client_for
from notifyplatform.redis_pool import sync_client

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


def limits_url() -> str:
    return str(getattr(settings, "LIMITS_REDIS_URL", "") or settings.REDIS_URL)


def slot_tag(kind: str, name: str) -> str:
    """A Redis Cluster hash tag: keys carrying the same tag hash to one slot, so one Lua
    script or MULTI can use them all. Braces in ``name`` would end the tag early, so they
    are replaced."""
    clean = name.replace("{", "(").replace("}", ")")
    return "{" + f"{kind}:{clean}" + "}"


def client() -> redis.Redis:
    url = limits_url()
    key = (os.getpid(), url)
    conn = _clients.get(key)
    if conn is None:
        with _lock:
            conn = _clients.get(key)
            if conn is None:
                conn = sync_client(
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
    url = limits_url()
    loop = asyncio.get_running_loop()
    with _lock:
        clients = _async_clients.setdefault(loop, {})
        conn = clients.get(url)
        if conn is None:
            conn = clients[url] = _async_client_for(
                url,
                socket_timeout=TIMEOUT_SECONDS,
                socket_connect_timeout=TIMEOUT_SECONDS,
                decode_responses=True,
            )
    return conn
