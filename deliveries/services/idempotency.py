"""API idempotency keys, scoped to the caller (the way Stripe and Knock do it).

A key belongs to one caller — an API token (``token:<id>``) or a signed-in user
(``user:<id>``) — so another caller's identical key is simply another key. The first
successful request with a key is remembered with a fingerprint of the request (method, path
and the JSON body, canonicalised) for ``NP_IDEMPOTENCY_KEY_TTL_HOURS`` (24):

1. the same key with the same request returns the first result (nothing more is sent);
2. the same key with a different request is refused: 422 ``IDEMPOTENCY_KEY_REUSED``;
3. past the window the key is free again.

Concurrent requests with one key are serialised by a transaction-scoped advisory lock on
(scope, key), and the unique (scope, key) constraint backs it: exactly one notification is
written. A request that fails validation is not remembered (nothing was written; correct
the body and retry with the same key).

Internal callers' keys (``invitation:<id>:sent``, ``batch:<job>:<user>``, ``bid:<id>:…``)
stay in ``notifications.idempotency_key``, a namespace the API cannot reach.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from ..errors import IDEMPOTENCY_KEY_REUSED, VALIDATION_ERROR, NotifyError
from ..models import ApiIdempotencyKey, Notification, NotificationDelivery
from ..types import NotifyResult
from .notify import notify


@dataclass(frozen=True)
class IdempotentRequest:
    scope: str  # "token:<id>" or "user:<id>"
    key: str
    fingerprint: str


def window() -> timedelta:
    return timedelta(hours=float(getattr(settings, "NP_IDEMPOTENCY_KEY_TTL_HOURS", 24)))


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    """SHA-256 of the request as JSON with sorted keys: key order and whitespace of the body
    do not matter, any value does."""
    canonical = json.dumps(
        {"method": method.upper(), "path": path, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _lock(scope: str, key: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"np-api-idem:{scope}:{key}"]
        )


def _first_result(row: ApiIdempotencyKey) -> NotifyResult | None:
    """The first request's notification and deliveries (None when retention removed them)."""
    if row.notification_id is not None:
        notification = Notification.objects.filter(pk=row.notification_id).first()
        if notification is None:
            return None
        deliveries = list(notification.deliveries.order_by("id"))
        return NotifyResult(notification, deliveries, created=False)
    deliveries = list(NotificationDelivery.objects.filter(pk__in=row.delivery_ids).order_by("id"))
    return NotifyResult(None, deliveries, created=False) if deliveries else None


def _prune(cutoff: datetime) -> None:
    """Delete a bounded number of expired keys per new key: the table holds about one
    window of keys without a job of its own."""
    batch = int(getattr(settings, "NP_IDEMPOTENCY_PRUNE_BATCH", 100))
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM api_idempotency_keys WHERE id IN (SELECT id FROM api_idempotency_keys"
            " WHERE created_at < %s ORDER BY created_at LIMIT %s)",
            [cutoff, batch],
        )


def notify_idempotent(recipient: Any, *, request: IdempotentRequest, **kwargs: Any) -> NotifyResult:
    """``notify()`` at most once per (caller, key) within the window; see the module doc."""
    if not request.key or len(request.key) > 255:
        raise NotifyError(VALIDATION_ERROR, "must be 1 to 255 characters", "idempotency_key")
    try:
        with transaction.atomic():
            return _notify_once(recipient, request, kwargs)
    except IntegrityError:
        # the unique (scope, key) backs the lock: if a writer ever got past it, its row is
        # there now and this second round answers from it
        with transaction.atomic():
            return _notify_once(recipient, request, kwargs)


def _notify_once(
    recipient: Any, request: IdempotentRequest, kwargs: dict[str, Any]
) -> NotifyResult:
    _lock(request.scope, request.key)
    now = timezone.now()
    cutoff = now - window()
    row = ApiIdempotencyKey.objects.filter(scope=request.scope, key=request.key).first()
    if row is not None:
        first = _first_result(row) if row.created_at >= cutoff else None
        if first is not None:
            if row.fingerprint != request.fingerprint:
                raise NotifyError(
                    IDEMPOTENCY_KEY_REUSED,
                    "this Idempotency-Key was already used with a different request"
                    f" (keys are kept for {window().total_seconds() / 3600:g} h)",
                    "idempotency_key",
                    status=422,
                )
            return first
        row.delete()  # expired, or its notification is gone: the key is free again
    result = notify(recipient, **kwargs)
    ApiIdempotencyKey.objects.create(
        scope=request.scope,
        key=request.key,
        fingerprint=request.fingerprint,
        notification_id=result.notification.pk if result.notification is not None else None,
        delivery_ids=[] if result.notification is not None else [d.pk for d in result.deliveries],
        created_at=now,
    )
    _prune(cutoff)
    return result
