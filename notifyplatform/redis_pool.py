"""Redis clients for a role's URL: one server (``redis://``), Redis Sentinel
(``redis+sentinel://h1:p1,h2:p2/<service>/<db>``, see notifyplatform.conf.stores) or, for
the counters of providers.kv (LIMITS_REDIS_URL), Redis Cluster
(``redis+cluster://host:port``, any one node: the client discovers the others).

With Sentinel the client asks the sentinels for the service's current master and follows
a failover (redis-py's Sentinel connection pool); everything else is unchanged."""

from __future__ import annotations

import os
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel

from notifyplatform.conf.stores import is_sentinel, parse_sentinel


def _sentinel_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    kwargs = {k: options[k] for k in ("socket_timeout", "socket_connect_timeout") if k in options}
    if os.environ.get("NP_REDIS_SENTINEL_PASSWORD"):
        kwargs["password"] = os.environ["NP_REDIS_SENTINEL_PASSWORD"]
    return kwargs


class SentinelPool(redis.sentinel.SentinelConnectionPool):
    """A connection pool to the master a sentinel URL names; ``from_url`` is what Django's
    Redis cache calls (``OPTIONS["pool_class"]``)."""

    @classmethod
    def from_url(cls, url: str, **options: Any) -> SentinelPool:
        parsed = parse_sentinel(url)
        manager = redis.sentinel.Sentinel(
            list(parsed.hosts), sentinel_kwargs=_sentinel_kwargs(options)
        )
        if parsed.password:
            options.setdefault("password", parsed.password)
        return cls(parsed.service, manager, db=parsed.db, **options)


CLUSTER_SCHEME = "redis+cluster://"


def _cluster_url(url: str) -> str:
    return "redis://" + url.removeprefix(CLUSTER_SCHEME)


def sync_client(url: str, **options: Any) -> redis.Redis:
    """A blocking client for ``url`` (a server, a sentinel service or a cluster)."""
    if url.startswith(CLUSTER_SCHEME):
        return redis.cluster.RedisCluster.from_url(_cluster_url(url), **options)  # type: ignore[return-value]
    if is_sentinel(url):
        return redis.Redis(connection_pool=SentinelPool.from_url(url, **options))
    return redis.Redis.from_url(url, **options)


def sentinel_client(url: str, service: str, *, timeout: float) -> redis.Redis:
    """A blocking client for a sentinel URL in Celery's form (the service given apart)."""
    parsed = parse_sentinel(url, service=service or None)
    manager = redis.sentinel.Sentinel(
        list(parsed.hosts), sentinel_kwargs=_sentinel_kwargs({"socket_timeout": timeout})
    )
    return manager.master_for(
        parsed.service,
        db=parsed.db,
        password=parsed.password,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
    )


def async_client(url: str, **options: Any) -> redis.asyncio.Redis:
    """An asyncio client for ``url`` (a server, a sentinel service or a cluster)."""
    if url.startswith(CLUSTER_SCHEME):
        return redis.asyncio.cluster.RedisCluster.from_url(_cluster_url(url), **options)  # type: ignore[return-value]
    if not is_sentinel(url):
        return redis.asyncio.Redis.from_url(url, **options)
    parsed = parse_sentinel(url)
    manager = redis.asyncio.sentinel.Sentinel(
        list(parsed.hosts), sentinel_kwargs=_sentinel_kwargs(options)
    )
    if parsed.password:
        options.setdefault("password", parsed.password)
    pool = redis.asyncio.sentinel.SentinelConnectionPool(
        parsed.service, manager, db=parsed.db, **options
    )
    return redis.asyncio.Redis(connection_pool=pool)
