"""A daily spend cap per provider, from the per-message cost the platform already records.

Every sent delivery carries its cost (``notification_deliveries.cost_per_message``: the
provider's answer, else ``provider_registry.cost_per_message``). The cap is a provider
row's ``configuration.daily_spend_cap`` (in the same unit as its cost), else
``NP_PROVIDER_DAILY_SPEND_CAP``; empty means no cap. A provider without a cost or without
a cap costs nothing here (no Redis round trip).

The rules, in order:

1. **The window** is ``NP_SPEND_CAP_WINDOW_SECONDS`` long (default a day), aligned on the
   epoch (UTC midnight for a day).
2. **The counter** of a provider's spend in the window lives in Redis (micro-units, shared
   by every worker). Routing *primes* it from the database (the sum of the window's sent
   deliveries, through ``idx_notification_deliveries_cost_analysis``) when it is missing —
   a new window, or a Redis that lost its keys — so the database stays the truth.
3. **Each send reserves its cost** (``reserve``: the provider's ``cost_per_message``) in
   one Lua script that checks and adds at once, so concurrent sends from every worker never
   pass the cap together; a provider whose spend plus this cost would pass its cap is
   refused with the retryable ``SPEND_CAP`` and failover tries the next provider. A send the
   provider refused gives its reservation back (``release``); a timeout or a crash keeps it
   (the provider may have taken the message: the cap errs on the side of spending less).
   A provider that reports its own cost corrects the reservation (``settle``).
4. **A delivery every provider refused for its cap** is deferred, not failed: it stays
   ``pending`` with ``decision.rule = spend_cap``, its retries untouched, and is tried again
   at the next window or after ``NP_SPEND_CAP_RECHECK_SECONDS`` (so a raised cap takes
   effect without waiting for the window), whichever comes first.

Redis errors fail open (logged), like the rate limits: an outage of the counter store must
not stop sending; the database keeps every cost for the staff's spend report.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import redis
from django.conf import settings

from providers import kv, traffic
from providers.models import Provider

logger = logging.getLogger(__name__)

MICRO = Decimal("1000000")


@dataclass(frozen=True)
class CapReached:
    provider_name: str
    cap: Decimal
    spent: Decimal
    reset_in: float


def window_seconds() -> int:
    return max(1, int(getattr(settings, "NP_SPEND_CAP_WINDOW_SECONDS", 86400)))


def window_bounds(now: float | None = None) -> tuple[int, float, float]:
    """(window number, start, end) in epoch seconds."""
    now = time.time() if now is None else now
    size = window_seconds()
    number = int(now // size)
    return number, float(number * size), float((number + 1) * size)


def cap_for(provider: Provider) -> Decimal | None:
    """The provider's daily cap, or None for no cap (a bad value in a row is no cap, logged)."""
    raw: Any = (provider.configuration or {}).get("daily_spend_cap")
    if raw in (None, ""):
        raw = getattr(settings, "NP_PROVIDER_DAILY_SPEND_CAP", "")
    if raw in (None, ""):
        return None
    try:
        cap = Decimal(str(raw))
    except InvalidOperation:
        logger.error("provider %s: daily_spend_cap %r is not a number", provider, raw)
        return None
    return cap if cap >= 0 else None


def _applies(provider: Provider) -> Decimal | None:
    cost = provider.cost_per_message
    if cost is None or cost <= 0:
        return None
    return cap_for(provider)


def applies(provider: Provider) -> bool:
    """Whether sends through this provider reserve spend (a cost and a cap): no I/O."""
    return _applies(provider) is not None


def _key(provider_name: str, window: int) -> str:
    return f"{kv.prefix()}:spend:{provider_name}:{window}"


def spent_in_window_db(provider_name: str, now: float | None = None) -> Decimal:
    """The database's sum of the costs of the provider's sends in the current window."""
    _number, start, end = window_bounds(now)
    return traffic.source().spent_between(
        provider_name, datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    )


def prime(provider: Provider) -> None:
    """Make sure the window's counter exists, from the database when it does not (rule 2).
    Called by routing (a worker thread, never the event loop): one EXISTS per capped
    provider and routing, one SUM query per window and process start."""
    if _applies(provider) is None:
        return
    number, _start, end = window_bounds()
    key = _key(provider.provider_name, number)
    try:
        client = kv.client()
        if client.exists(key):
            return
        spent = spent_in_window_db(provider.provider_name)
        client.set(key, int(spent * MICRO), nx=True, ex=int(end - time.time()) + 60)
    except redis.RedisError as exc:
        logger.warning("spend cap of %s not primed: redis error %s", provider, exc)


# KEYS[1]: the window's counter; ARGV: cost, cap (micro-units), ttl. Returns -1 when the
# cost was added, else the current spend (the cap would be passed).
_RESERVE = """
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
if spent + tonumber(ARGV[1]) > tonumber(ARGV[2]) then
  return spent
end
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
return -1
"""


def _micro(value: Any) -> int:
    return int(Decimal(str(value)) * MICRO)


def reserve(provider: Provider) -> CapReached | None:
    """Rule 3, before a send: add this message's cost to the window's spend, or the reason
    to refuse ``provider`` (its cap would be passed). One EVAL for a capped provider."""
    cap = _applies(provider)
    if cap is None:
        return None
    number, _start, end = window_bounds()
    ttl = int(end - time.time()) + 60
    try:
        spent = int(
            kv.client().eval(
                _RESERVE,
                1,
                _key(provider.provider_name, number),
                _micro(provider.cost_per_message),
                _micro(cap),
                ttl,
            )
        )
    except redis.RedisError as exc:
        logger.warning("spend cap of %s not checked: redis error %s", provider, exc)
        return None
    if spent < 0:
        return None
    return CapReached(
        provider.provider_name, cap, Decimal(spent) / MICRO, max(0.0, end - time.time())
    )


def _incr(provider: Provider, micro: int) -> None:
    if not micro:
        return
    number, _start, end = window_bounds()
    key = _key(provider.provider_name, number)
    try:
        pipe = kv.client().pipeline(transaction=False)
        pipe.incrby(key, micro)
        pipe.expire(key, int(end - time.time()) + 60)
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning("spend of %s not counted: redis error %s", provider, exc)


def release(provider: Provider) -> None:
    """Rule 3: the provider refused the message; its reservation is given back."""
    if _applies(provider) is not None:
        _incr(provider, -_micro(provider.cost_per_message))


def settle(provider: Provider, cost: Any) -> None:
    """Rule 3: the provider reported what the send cost; correct the reservation."""
    if cost is None or _applies(provider) is None:
        return
    _incr(provider, _micro(cost) - _micro(provider.cost_per_message))


def recheck_seconds() -> float:
    return float(getattr(settings, "NP_SPEND_CAP_RECHECK_SECONDS", 900))
