"""Redis roles and the Celery broker, each from its own URL.

Three roles, each its own environment variable, so that each can live on its own server:

    REDIS_URL                cache, rate limits, circuit breakers, spend caps, lockouts
    CHANNEL_LAYER_REDIS_URL  the Channels layer (websocket fan-out); default REDIS_URL
    CELERY_BROKER_URL        the task broker; default REDIS_URL. ``amqp://`` (RabbitMQ) too

A Redis role may name Redis Sentinel instead of one server:

    redis+sentinel://[:password@]host1:26379,host2:26379/<service>[/<db>]
    sentinel://...           the same (``;``-separated ``sentinel://host:port`` parts, as
                             Celery writes them, are accepted too; the service then comes
                             from NP_REDIS_SENTINEL_SERVICE)

The password is the Redis servers'; NP_REDIS_SENTINEL_PASSWORD is the sentinels' own, if
they have one. Nothing here connects anywhere: these functions only build settings.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from kombu import Exchange, Queue

SENTINEL_SCHEMES = ("redis+sentinel://", "sentinel://")
REDIS_SCHEMES = ("redis://", "rediss://", "unix://")
AMQP_SCHEMES = ("amqp://", "amqps://", "pyamqp://")


class StoreURLError(ValueError):
    """A store URL that cannot be used, with the reason."""


@dataclass(frozen=True)
class SentinelURL:
    hosts: tuple[tuple[str, int], ...]
    service: str
    db: int
    password: str | None


def is_sentinel(url: str) -> bool:
    return url.startswith(SENTINEL_SCHEMES)


def parse_sentinel(url: str, *, service: str | None = None) -> SentinelURL:
    """``redis+sentinel://[:pw@]h1:p1,h2:p2/service/db`` (or Celery's
    ``sentinel://h1:p1;sentinel://h2:p2/db``) → hosts, service, db and password."""
    if not is_sentinel(url):
        raise StoreURLError(f"not a sentinel URL: {url!r}")
    parts = [p for p in url.split(";") if p.strip()]
    hosts: list[tuple[str, int]] = []
    password: str | None = None
    path = ""
    for part in parts:
        rest = part.strip().split("://", 1)[1]
        netloc, _, tail = rest.partition("/")
        if tail:
            path = tail
        if "@" in netloc:
            auth, netloc = netloc.rsplit("@", 1)
            password = unquote(auth.split(":", 1)[-1]) or None
        for item in netloc.split(","):
            host, _, port = item.strip().rpartition(":")
            if not host:
                host, port = item.strip(), "26379"
            if not host or not port.isdigit():
                raise StoreURLError(f"sentinel address {item!r} in {url!r} is not host:port")
            hosts.append((host.strip("[]"), int(port)))
    segments = [s for s in path.split("/") if s]
    if segments and not segments[0].isdigit():
        service = segments.pop(0)
    if not service:
        service = os.environ.get("NP_REDIS_SENTINEL_SERVICE") or None
    if not service:
        raise StoreURLError(
            f"sentinel URL {url!r} names no service: write redis+sentinel://host:port/<service>/<db>"
            " or set NP_REDIS_SENTINEL_SERVICE"
        )
    if len(segments) > 1 or (segments and not segments[0].isdigit()):
        raise StoreURLError(f"sentinel URL {url!r}: the path must be /<service>[/<db>]")
    return SentinelURL(tuple(hosts), service, int(segments[0]) if segments else 0, password)


def _sentinel_kwargs() -> dict[str, Any] | None:
    password = os.environ.get("NP_REDIS_SENTINEL_PASSWORD")
    return {"password": password} if password else None


def cache_config(url: str) -> dict[str, Any]:
    """Django's CACHES["default"] for REDIS_URL (Django's own Redis cache; with Sentinel its
    connection pool is redis-py's SentinelConnectionPool, see notifyplatform.redis_pool)."""
    config: dict[str, Any] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": url,
        "KEY_PREFIX": "np",
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
    if is_sentinel(url):
        parse_sentinel(url)  # a bad URL fails at start, with the reason
        config["OPTIONS"]["pool_class"] = "notifyplatform.redis_pool.SentinelPool"
    return config


def channel_layer_host(url: str, max_connections: int) -> dict[str, Any]:
    """One entry of the Channels layer's ``hosts`` for CHANNEL_LAYER_REDIS_URL."""
    if is_sentinel(url):
        parsed = parse_sentinel(url)
        host: dict[str, Any] = {
            "sentinels": [list(h) for h in parsed.hosts],
            "master_name": parsed.service,
            "sentinel_kwargs": _sentinel_kwargs(),
            "db": parsed.db,
            "max_connections": max_connections,
        }
        if parsed.password:
            host["password"] = parsed.password
        return host
    if not url.startswith(REDIS_SCHEMES):
        raise StoreURLError(f"CHANNEL_LAYER_REDIS_URL {url!r}: expected redis:// or a sentinel URL")
    return {"address": url, "max_connections": max_connections}


def broker_kind(url: str) -> str:
    """``amqp``, ``redis`` or ``sentinel``; anything else is refused."""
    if url.startswith(AMQP_SCHEMES):
        return "amqp"
    if is_sentinel(url):
        return "sentinel"
    if url.startswith(REDIS_SCHEMES):
        return "redis"
    raise StoreURLError(
        f"CELERY_BROKER_URL {url!r}: expected amqp:// (RabbitMQ), redis:// or a sentinel URL"
    )


def celery_broker(
    url: str, *, visibility_timeout: int, queue_names: list[str]
) -> tuple[str, dict[str, Any], list[Queue]]:
    """(broker URL as Celery wants it, broker_transport_options, task_queues).

    RabbitMQ: publisher confirms (a publish returns once the broker has the message) and
    quorum queues (replicated, durable). Quorum queues have no priorities and no global
    QoS: Celery detects them and sets the prefetch per consumer (worker_detect_quorum_queues,
    on by default), and countdowns go through its native delayed delivery, which needs
    topic exchanges (a broker that still has the direct exchanges of an earlier version
    refuses the redeclare with 406 PRECONDITION_FAILED: delete those exchanges once).
    Redis: the visibility timeout after which a claimed, unacknowledged message returns.
    """
    kind = broker_kind(url)
    if kind == "amqp":
        options: dict[str, Any] = {"confirm_publish": True, "connect_timeout": 2}
        arguments: dict[str, Any] | None = {"x-queue-type": "quorum"}
    else:
        options = {
            "visibility_timeout": visibility_timeout,
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        }
        arguments = None
        if kind == "sentinel":
            parsed = parse_sentinel(url)
            url = ";".join(f"sentinel://{h}:{p}/{parsed.db}" for h, p in parsed.hosts)
            options["master_name"] = parsed.service
            if parsed.password:
                options["password"] = parsed.password
            if _sentinel_kwargs():
                options["sentinel_kwargs"] = _sentinel_kwargs()
    # RabbitMQ: topic exchanges, because Celery's native delayed delivery (how a countdown
    # waits in the broker rather than in a worker's memory, with quorum queues) binds only
    # to those; on a direct exchange a countdown task is held by the worker until due.
    exchange_type = "topic" if kind == "amqp" else "direct"
    queues = [
        Queue(name, Exchange(name, type=exchange_type), routing_key=name, queue_arguments=arguments)
        for name in queue_names
    ]
    return url, options, queues
