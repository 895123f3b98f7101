"""API throttles: per user, per API token, per anonymous client address.

Both the user and the token throttle apply to a token request, so one leaked token cannot
use up its owner's whole budget and many tokens cannot multiply it. Rates come from
``settings.NP_THROTTLE_RATES`` (env ``NP_THROTTLE_USER``/``_TOKEN``/``_ANON``, DRF's
``"<n>/<sec|min|hour|day>"``), read at request time rather than at import like DRF's own
classes, so a deployment (or a test) can change them without re-importing. Counters live in
the default cache (Redis), shared by every process.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)
_warned_at = 0.0

DEFAULT_RATES = {"user": "1000/min", "token": "1000/min", "anon": "100/min"}


class _SettingsRateThrottle(SimpleRateThrottle):
    def allow_request(self, request: Any, view: Any) -> bool:
        """Fail open when the counter store is down: a Redis outage must not turn into
        an API outage (sends are written to the database and wait for the sweeper)."""
        global _warned_at
        try:
            return super().allow_request(request, view)
        except Exception as exc:  # the cache backend raises its client's errors
            now = time.monotonic()
            if now - _warned_at > 30:
                _warned_at = now
                logger.warning("throttle store unavailable, not throttling: %s", exc)
            return True

    def get_rate(self) -> str | None:
        # Called from __init__, i.e. once per request (DRF instantiates throttles per request).
        rates = getattr(settings, "NP_THROTTLE_RATES", DEFAULT_RATES)
        if self.scope is None:
            return None
        return rates.get(self.scope, DEFAULT_RATES.get(self.scope))


class UserRateThrottle(_SettingsRateThrottle):
    """Every authenticated request, keyed on the user (session and tokens alike)."""

    scope = "user"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class TokenRateThrottle(_SettingsRateThrottle):
    """Requests authenticated by an API token, keyed on the token's id."""

    scope = "token"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        token_id = getattr(request.auth, "pk", None)
        if token_id is None or not hasattr(request.auth, "key_hash"):
            return None
        # The id plus the token's random prefix: ids are reused after a database restore
        # (or in test databases), and a new token must not inherit an old token's counter.
        ident = f"{token_id}:{request.auth.key_prefix}"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class AnonRateThrottle(_SettingsRateThrottle):
    """Unauthenticated requests (invitation links, receipts go elsewhere), keyed on the
    client address."""

    scope = "anon"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}
