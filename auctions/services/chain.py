"""Real-time events of an auction as a causal chain.

Every event an auction publishes names the auction's previous event
(``previous_event_id``), the events that caused it (``causal_events``: a bid's
``auction_price_changed`` and ``outbid`` events cite the ``bid_placed`` event), what it
is expected to cause (``expected_impacts``: notifications by type and count, a price
change), the user action or clock tick it belongs to (``correlation_id``), how long it
is kept (``retention_policy`` and ``expires_at`` by event type: clock ticks short,
results long; ``realtime.retention`` purges rows past ``expires_at``) and ``tags``.

Publish LAST in a transaction (see ``realtime.services.publishing``): the callers here
collect their notifications first.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.utils import timezone

from realtime.models import RealTimeEvent
from realtime.services import publish

from ..models import Auction

#: event type → (retention policy, lifetime)
RETENTION: dict[str, tuple[str, timedelta]] = {
    "auction_price_changed": ("short", timedelta(hours=1)),
    "auction_ending": ("short", timedelta(days=1)),
    "bid_placed": ("standard", timedelta(days=7)),
    "outbid": ("standard", timedelta(days=7)),
    "auction_dropped_out": ("standard", timedelta(days=7)),
    "auction_entered": ("standard", timedelta(days=7)),
    "auction_status_changed": ("long", timedelta(days=30)),
}
TAG_FAMILY = {
    "auction_price_changed": "clock",
    "auction_ending": "lifecycle",
    "bid_placed": "bid",
    "outbid": "bid",
    "auction_dropped_out": "bid",
    "auction_entered": "bid",
    "auction_status_changed": "lifecycle",
}


def correlation(action: str, subject: Any = None) -> str:
    """An id tying one user action's (or one clock tick's) events together."""
    return f"{action}:{subject if subject is not None else uuid.uuid4()}"


def impacts(
    notified: Iterable[str] = (), *, price: tuple[Any, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """``expected_impacts``: notifications by type and count, and the price change."""
    result: dict[str, Any] = {"notifications": dict(Counter(notified))}
    if price is not None and price[0] != price[1]:
        result["price_change"] = {"from": price[0], "to": price[1]}
    result.update({k: v for k, v in extra.items() if v is not None})
    return result


def last_event_id(auction: Auction) -> uuid.UUID | None:
    return (
        RealTimeEvent.objects.filter(auction_id=auction.pk)
        .order_by("-sequence_number")
        .values_list("pk", flat=True)
        .first()
    )


def publish_chained(
    auction: Auction,
    event_type: str,
    *,
    category: str,
    data: dict[str, Any],
    correlation_id: str,
    causes: Iterable[Any] = (),
    expected: dict[str, Any] | None = None,
    visibility: str = "public",
    tags: Iterable[str] = (),
    **fields: Any,
) -> RealTimeEvent:
    """Publish one event of ``auction``, linked to its previous event and its causes."""
    policy, lifetime = RETENTION.get(event_type, ("standard", timedelta(days=7)))
    if visibility in ("public", "authenticated"):
        fields.setdefault("topics", [f"auction.{auction.pk}"])
    all_tags = ["auction", auction.auction_type, TAG_FAMILY.get(event_type, "other"), *tags]
    return publish(
        event_type=event_type,
        category=category,
        data=data,
        visibility=visibility,
        auction=auction,
        correlation_id=correlation_id,
        previous_event_id=last_event_id(auction),
        causal_events=[str(getattr(c, "pk", c)) for c in causes] or None,
        expected_impacts=expected,
        retention_policy=policy,
        expires_at=timezone.now() + lifetime,
        tags=list(dict.fromkeys(all_tags)),
        **fields,
    )
