"""Per-provider send limits (``rate_limit_per_minute/hour/day``) shared across processes.

Fixed windows in Redis: one counter per window and period, checked and incremented
for all three periods in one Lua script so two workers can never both take the last
token. Routing peeks (``available``) to skip an exhausted provider; the sender takes
a token (``acquire``) just before it calls the provider. The batch sender's event loop
takes it with ``acquire_async`` (redis.asyncio): a slow or unreachable Redis then delays
that one send by up to the timeout, never the other sends on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import redis

from providers import kv
from providers.models import Provider

logger = logging.getLogger(__name__)

PERIODS: tuple[tuple[str, int], ...] = (("minute", 60), ("hour", 3600), ("day", 86400))

# KEYS: one counter per limited period; ARGV: limit_1, ttl_1, limit_2, ttl_2, ...
# Returns 0 when a token was taken, else the 1-based index of the exhausted period.
_ACQUIRE = """
for i, key in ipairs(KEYS) do
  local limit = tonumber(ARGV[2 * i - 1])
  local current = tonumber(redis.call('GET', key) or '0')
  if current >= limit then
    return i
  end
end
for i, key in ipairs(KEYS) do
  local n = redis.call('INCR', key)
  if n == 1 then
    redis.call('EXPIRE', key, tonumber(ARGV[2 * i]))
  end
end
return 0
"""


@dataclass(frozen=True)
class Limit:
    period: str
    seconds: int
    limit: int
    key: str
    reset_in: float


def limits(provider: Provider, now: float | None = None) -> list[Limit]:
    now = time.time() if now is None else now
    result: list[Limit] = []
    for period, seconds in PERIODS:
        limit = getattr(provider, f"rate_limit_per_{period}")
        if limit is None:
            continue
        window = int(now // seconds)
        key = f"{kv.prefix()}:rl:{kv.slot_tag('rl', provider.provider_name)}:{period}:{window}"
        result.append(Limit(period, seconds, int(limit), key, (window + 1) * seconds - now))
    return result


def _acquire_args(current: list[Limit]) -> list[str | int]:
    """EVAL's keys then argv for ``_ACQUIRE``."""
    argv: list[str | int] = [item.key for item in current]
    for item in current:
        argv += [item.limit, item.seconds + 5]
    return argv


def acquire(provider: Provider) -> Limit | None:
    """Take one token from every limited period; the exhausted Limit, or None if taken."""
    current = limits(provider)
    if not current:
        return None
    try:
        index = int(kv.client().eval(_ACQUIRE, len(current), *_acquire_args(current)))
    except redis.RedisError as exc:
        logger.warning("rate limit for %s not enforced: redis error %s", provider, exc)
        return None
    return current[index - 1] if index else None


async def acquire_async(provider: Provider) -> Limit | None:
    """:func:`acquire` for a coroutine: the same script, the same fail-open rule, awaited
    on redis.asyncio instead of blocking the event loop for up to the timeout."""
    current = limits(provider)
    if not current:
        return None
    try:
        script = kv.async_client().eval(_ACQUIRE, len(current), *_acquire_args(current))
        # the socket timeouts bound each read; this bounds the whole call (connect + retry)
        index = int(await asyncio.wait_for(script, kv.TIMEOUT_SECONDS * 2))
    except (TimeoutError, redis.RedisError, OSError) as exc:
        logger.warning("rate limit for %s not enforced: redis error %r", provider, exc)
        return None
    return current[index - 1] if index else None


def available(provider: Provider) -> Limit | None:
    """Peek: the exhausted Limit if any period has no token left, else None."""
    current = limits(provider)
    if not current:
        return None
    try:
        values = kv.client().mget([item.key for item in current])
    except redis.RedisError as exc:
        logger.warning("rate limit for %s not checked: redis error %s", provider, exc)
        return None
    for item, value in zip(current, values, strict=True):
        if int(value or 0) >= item.limit:
            return item
    return None


def remaining(provider: Provider) -> tuple[int | None, float | None]:
    """Tokens left in the tightest period and seconds until it resets (for metrics)."""
    current = limits(provider)
    if not current:
        return None, None
    try:
        values = kv.client().mget([item.key for item in current])
    except redis.RedisError:
        return None, None
    best: tuple[int, float] | None = None
    for item, value in zip(current, values, strict=True):
        left = max(0, item.limit - int(value or 0))
        if best is None or left < best[0]:
            best = (left, item.reset_in)
    assert best is not None
    return best
