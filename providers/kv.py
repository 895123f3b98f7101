"""The Redis connection used for counters shared by every process (rate limits,
circuit breaker). Failing open: if Redis is down we still send, and log it."""

from __future__ import annotations

import os
import threading

import redis
from django.conf import settings

_clients: dict[tuple[int, str], redis.Redis] = {}
_lock = threading.Lock()


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
                    url, socket_timeout=1, socket_connect_timeout=1, decode_responses=True
                )
                _clients[key] = conn
    return conn
