"""Brute-force limit on API tokens: failed token authentications counted per client
address, and past the limit every token attempt from that address refused until the
window ends (answered 429 with ``Retry-After`` by the API; closed like a bad token on
the websocket), whether or not the token is right — a guesser learns nothing more.

Counters live in the default cache (Redis, shared by every process), a fixed window per
address: ``NP_TOKEN_FAILURE_LIMIT`` failures (default 20) within
``NP_TOKEN_FAILURE_WINDOW_SECONDS`` (default 900) from the first one. The address is
``REMOTE_ADDR`` (behind a reverse proxy run daphne with ``--proxy-headers`` so that it is
the client's). A cache outage fails open, like the API throttles: an attacker gains no
more than without the limit, and users keep working.

Admin-site logins are limited by django-axes (settings ``AXES_*``), per account and per
address.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

KEY = "tokfail:{{{}}}"  # the address is a hash tag: both keys in one Cluster slot


def client_address(request: Any) -> str | None:
    """The client's address: REMOTE_ADDR only (X-Forwarded-For is the client's to forge).
    Also django-axes' ``AXES_CLIENT_IP_CALLABLE``."""
    meta = getattr(request, "META", None) or {}
    return meta.get("REMOTE_ADDR") or None


def login_username(request: Any, credentials: dict[str, Any] | None = None) -> str | None:
    """django-axes' ``AXES_USERNAME_CALLABLE``: the login as typed in the admin form (its
    field is ``username`` although accounts log in by email), case-folded so that
    ``Admin@Example.com`` counts against the same account as ``admin@example.com``."""
    username = None
    for source in (credentials or {}, getattr(request, "POST", None) or {}):
        username = source.get("username") or source.get("email")
        if username:
            break
    return str(username).strip().lower() if username else None


def _limit() -> tuple[int, int]:
    return (
        int(getattr(settings, "NP_TOKEN_FAILURE_LIMIT", 20)),
        int(getattr(settings, "NP_TOKEN_FAILURE_WINDOW_SECONDS", 900)),
    )


def token_lockout_remaining(address: str) -> int | None:
    """Seconds until ``address`` may try a token again, or None when it may now."""
    limit, window = _limit()
    key = KEY.format(address)
    try:
        state = cache.get_many([key, f"{key}:since"])
    except Exception as exc:  # the cache backend raises its client's errors
        logger.warning("token lockout store unavailable, not limiting: %s", exc)
        return None
    if int(state.get(key) or 0) < limit:
        return None
    since = float(state.get(f"{key}:since") or time.time())
    return max(1, int(since + window - time.time() + 0.999))


def token_failure_record(address: str) -> None:
    """Count one failed token authentication from ``address``."""
    _limit_count, window = _limit()
    key = KEY.format(address)
    try:
        cache.add(f"{key}:since", time.time(), window)
        cache.add(key, 0, window)
        cache.incr(key)
    except ValueError:  # expired between add and incr: this failure opens a new window
        cache.set(key, 1, window)
    except Exception as exc:
        logger.warning("token lockout store unavailable, not counting: %s", exc)
