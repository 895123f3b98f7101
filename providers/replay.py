"""Replay protection for signed receipts.

A valid signature proves who sent a callback, not when: a captured one verifies forever.
So every scheme that signs a timestamp (Mailgun, SendGrid, Vonage) is refused outside
``NP_RECEIPT_TOLERANCE_SECONDS`` (default 300) of now, either way; and Mailgun's signed
one-time ``token`` is remembered in Redis (``SET NX`` with a TTL of twice the tolerance,
which outlives any timestamp still inside it) and refused when seen again.

Schemes without a timestamp (Twilio's ``X-Twilio-Signature``, Postmark's basic auth) are
bounded by how receipts are applied: a receipt only moves its delivery forward
(``deliveries.services.receipts``), so a replay of a captured callback changes nothing.
"""

from __future__ import annotations

import contextlib
import time

import redis
from django.conf import settings

from providers import kv
from providers.base import ReceiptSignatureError


class ReceiptExpiredError(ReceiptSignatureError):
    """The signed timestamp is outside the tolerance (a replay, or a badly skewed clock)."""


class ReceiptReplayedError(ReceiptSignatureError):
    """The signed one-time token was already used."""


class ReceiptStoreUnavailableError(Exception):
    """The token store (Redis) did not answer: the callback cannot be checked now."""


def tolerance_seconds() -> int:
    return int(getattr(settings, "NP_RECEIPT_TOLERANCE_SECONDS", 300))


def check_timestamp(value: object, *, provider: str) -> None:
    """Refuse a signed timestamp (Unix seconds) that is missing, unreadable or further than
    the tolerance from now."""
    try:
        stamp = float(str(value).strip())
    except ValueError:
        raise ReceiptExpiredError(f"{provider}: signed timestamp missing or unreadable") from None
    if stamp != stamp:  # NaN
        raise ReceiptExpiredError(f"{provider}: signed timestamp unreadable")
    skew = abs(time.time() - stamp)
    if skew > tolerance_seconds():
        raise ReceiptExpiredError(
            f"{provider}: signed timestamp is {int(skew)} s from now"
            f" (tolerance {tolerance_seconds()} s)"
        )


def _key(scope: str, nonce: str) -> str:
    return f"{kv.prefix()}:receipt-nonce:{scope}:{nonce}"


def claim_nonce(scope: str, nonce: str) -> None:
    """Remember a verified one-time token; raise ReceiptReplayedError if it was seen."""
    try:
        first = kv.client().set(_key(scope, nonce), "1", nx=True, ex=2 * tolerance_seconds())
    except redis.RedisError as exc:
        raise ReceiptStoreUnavailableError(str(exc)) from exc
    if not first:
        raise ReceiptReplayedError(f"{scope}: token already used")


def release_nonce(scope: str, nonce: str) -> None:
    """Forget a token whose receipt could not be applied, so the provider's retry (which
    carries the same token) is accepted."""
    with contextlib.suppress(redis.RedisError):  # else it expires after twice the tolerance
        kv.client().delete(_key(scope, nonce))
