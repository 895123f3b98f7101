"""Send-path settings: leases, retry backoff, batch size."""

from __future__ import annotations

import random
from typing import Any

from django.conf import settings

from providers import aio

LEASE_EXPIRED = "LEASE_EXPIRED"


SEND_CRASHED = "UNKNOWN"


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


def lease_seconds() -> float:
    return _setting("NP_DELIVERY_LEASE_SECONDS", 120)


def retry_delay(retry_count: int, retry_after: float | None = None) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base · 2^n)), never less than
    what the provider asked for (``Retry-After``)."""
    base = _setting("NP_DELIVERY_RETRY_BASE_SECONDS", 30)
    cap = _setting("NP_DELIVERY_RETRY_CAP_SECONDS", 3600)
    delay = random.uniform(0, min(cap, base * (2**retry_count)))
    return max(delay, retry_after or 0.0)


def _without(meta: dict[str, Any] | None, *keys: str) -> dict[str, Any]:
    return {k: v for k, v in (meta or {}).items() if k not in keys}


def send_concurrency() -> int:
    """Sends in flight at once per process (the sender loop's connection pool)."""
    return aio.concurrency()


def send_batch_size() -> int:
    """Deliveries claimed at once: never more than can be in flight at once, so every
    claimed delivery is sent as soon as it is claimed and its lease only has to outlast one
    send (with failover), exactly as in the single path. A bigger claim would leave rows
    leased but waiting for a connection, and a short lease could expire before they even
    started."""
    return max(1, min(int(_setting("NP_SEND_BATCH_SIZE", 256)), send_concurrency()))
