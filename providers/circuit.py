"""A circuit breaker per provider, with its counters in Redis so every worker shares it.

Counts per minute bucket over a sliding 5-minute window. The circuit opens when the
window holds at least ``NP_CIRCUIT_MIN_ERRORS`` errors (default 100, Saleor's number)
and they are at least ``NP_CIRCUIT_ERROR_RATE`` (35 %) of the calls, or after
``NP_CIRCUIT_CONSECUTIVE`` (20) failures in a row. Open means
``provider_registry.is_healthy = False``: routing skips the provider, and the health
check task closes the circuit again when the provider's health check passes (after
``NP_CIRCUIT_COOLDOWN`` seconds, default 120, for providers with nothing to probe).
"""

from __future__ import annotations

import contextlib
import logging
import time

import redis
from django.conf import settings
from django.utils import timezone

from providers import kv
from providers.models import Provider

logger = logging.getLogger(__name__)

WINDOW_MINUTES = 5


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def _keys(name: str, now: float) -> tuple[list[str], str]:
    minute = int(now // 60)
    base = f"{kv.prefix()}:cb:{name}"
    buckets = [f"{base}:m:{minute - i}" for i in range(WINDOW_MINUTES)]
    return buckets, f"{base}:consecutive"


def opened_at_key(name: str) -> str:
    return f"{kv.prefix()}:cb:{name}:opened_at"


def record_success(provider: Provider) -> None:
    buckets, consecutive = _keys(provider.provider_name, time.time())
    try:
        pipe = kv.client().pipeline()
        pipe.hincrby(buckets[0], "ok", 1)
        pipe.expire(buckets[0], WINDOW_MINUTES * 60 + 60)
        pipe.delete(consecutive)
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("circuit for %s not updated: redis error %s", provider, exc)


def record_failure(provider: Provider) -> bool:
    """Count one failure; open the circuit if a threshold is crossed. True if opened."""
    now = time.time()
    buckets, consecutive = _keys(provider.provider_name, now)
    try:
        pipe = kv.client().pipeline()
        pipe.hincrby(buckets[0], "err", 1)
        pipe.expire(buckets[0], WINDOW_MINUTES * 60 + 60)
        pipe.incr(consecutive)
        pipe.expire(consecutive, 24 * 3600)
        for key in buckets:
            pipe.hgetall(key)
        result = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("circuit for %s not updated: redis error %s", provider, exc)
        return False
    in_a_row = int(result[2])
    ok = err = 0
    for bucket in result[4:]:
        ok += int(bucket.get("ok", 0))
        err += int(bucket.get("err", 0))
    rate = err / (ok + err) if ok + err else 0.0
    trip = (
        err >= _setting("NP_CIRCUIT_MIN_ERRORS", 100)
        and rate >= _setting("NP_CIRCUIT_ERROR_RATE", 0.35)
    ) or in_a_row >= _setting("NP_CIRCUIT_CONSECUTIVE", 20)
    if trip:
        open_circuit(
            provider, reason=f"{err} errors / {ok + err} calls in 5 min, {in_a_row} in a row"
        )
    return trip


def stats(provider: Provider) -> dict[str, float]:
    buckets, consecutive = _keys(provider.provider_name, time.time())
    pipe = kv.client().pipeline()
    for key in buckets:
        pipe.hgetall(key)
    pipe.get(consecutive)
    result = pipe.execute()
    ok = sum(int(b.get("ok", 0)) for b in result[:-1])
    err = sum(int(b.get("err", 0)) for b in result[:-1])
    return {"ok": ok, "errors": err, "consecutive": int(result[-1] or 0)}


def open_circuit(provider: Provider, *, reason: str) -> None:
    updated = Provider.objects.filter(pk=provider.pk, is_healthy=True).update(
        is_healthy=False, updated_at=timezone.now()
    )
    provider.is_healthy = False
    with contextlib.suppress(redis.RedisError):
        kv.client().set(opened_at_key(provider.provider_name), str(time.time()))
    if updated:
        logger.warning("circuit opened for provider %s: %s", provider.provider_name, reason)


def close_circuit(provider: Provider) -> None:
    Provider.objects.filter(pk=provider.pk).update(is_healthy=True, updated_at=timezone.now())
    provider.is_healthy = True
    buckets, consecutive = _keys(provider.provider_name, time.time())
    with contextlib.suppress(redis.RedisError):
        kv.client().delete(*buckets, consecutive, opened_at_key(provider.provider_name))
    logger.info("circuit closed for provider %s", provider.provider_name)


def cooled_down(provider: Provider) -> bool:
    """True once the circuit has been open for the cooldown period (or its start is lost)."""
    try:
        opened = kv.client().get(opened_at_key(provider.provider_name))
    except redis.RedisError:
        return True
    if opened is None:
        return True
    return time.time() - float(opened) >= _setting("NP_CIRCUIT_COOLDOWN", 120)
