"""The auction lifecycle run by the beat: start, ending notice, close when due.

Each transition is claimed by a conditional UPDATE (or ``SKIP LOCKED`` for the close),
so two beat runs or two workers never both announce it; the parties are told through
``events`` in the same transaction, the real-time event published last. Starting an
auction also starts its type's clock (``clock_due_at``) and, for candle and Chinese
auctions, commits to a secret whose hash is published in the start event.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ..errors import AuctionError
from ..models import Auction, AuctionRuleState, AuctionStatus
from ..rules import CandleRules, ClockRules, rules_for
from ..rules.lottery import new_secret
from .chain import correlation, impacts, publish_chained
from .closing import CloseResult, auction_close
from .events import (
    base_context,
    human_duration,
    notify_user,
    notify_users,
    publish_status,
    watchers_and_bidders,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CloseResult",
    "auction_close",
    "auction_send_ending_notice",
    "auction_start",
    "auctions_close_due",
    "auctions_send_ending_notices",
    "auctions_start_due",
]


def _start_rules(auction: Auction, now: datetime) -> dict[str, Any]:
    """Start the type's clock and commit its secret; what the start event tells."""
    rules = rules_for(auction.auction_type)
    state = AuctionRuleState.objects.filter(auction=auction).first()
    if state is None:  # an auction written straight to the table (seeds, older rows)
        try:
            config = rules.validate_config(auction, {})
        except AuctionError as exc:
            logger.error("auction %s starts without its %s clock: %s", auction.pk,
                         auction.auction_type, exc)
            return {}
        state = AuctionRuleState(auction=auction, config=config)
    told: dict[str, Any] = {}
    if rules.committed:
        state.secret, state.commitment = new_secret()
        told["commitment"] = state.commitment
        told["commitment_algorithm"] = "sha256(secret hex)"
    if isinstance(rules, ClockRules):
        state.clock_tick = 0
        state.clock_due_at = rules.due_at(auction, state.config, 0)
        auction.current_price = rules.price_at(auction, state.config, 0)
        auction.save(update_fields=["current_price", "updated_at"])
        told["price"] = f"{auction.current_price:.2f}"
        told["tick_seconds"] = state.config["tick_seconds"]
    elif isinstance(rules, CandleRules):
        state.clock_due_at = rules.end_of(auction, state)
        told["window_seconds"] = state.config["window_seconds"]
    state.save()
    return told


@transaction.atomic
def auction_start(*, auction_id: Any, now: datetime | None = None) -> bool:
    """Start a scheduled auction whose time has come; True if this call started it.

    A conditional UPDATE claims the transition, so two beat runs (or two workers)
    never both announce it.
    """
    now = now or timezone.now()
    started = Auction.objects.filter(
        pk=auction_id, status=AuctionStatus.SCHEDULED, starts_at__lte=now, ends_at__gt=now
    ).update(status=AuctionStatus.ACTIVE, updated_at=now)
    if not started:
        return False
    auction = Auction.objects.get(pk=auction_id)
    told = _start_rules(auction, now)
    context = base_context(auction, None)
    # watchers, and a Japanese auction's entrants (its only bidders before the start)
    sent = notify_users(
        watchers_and_bidders(auction),
        template_key="auction_started",
        context=context,
        channels=["in_app", "email"],
        category="auction",
        priority="normal",
        idempotency_prefix=f"auction:{auction.pk}:started",
        auction=auction,
    )
    # last: publishing takes the platform's event-ordering lock until this commits
    publish_status(
        auction, AuctionStatus.SCHEDULED, AuctionStatus.ACTIVE,
        correlation_id=correlation("start", auction.pk),
        expected=impacts(sent),
        ends_at=auction.ends_at.isoformat(), **told,
    )
    return True


def auctions_start_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    ids = Auction.objects.filter(
        status=AuctionStatus.SCHEDULED, starts_at__lte=now, ends_at__gt=now
    ).values_list("pk", flat=True)
    return sum(auction_start(auction_id=pk, now=now) for pk in list(ids))


@transaction.atomic
def auction_send_ending_notice(*, auction_id: Any, now: datetime | None = None) -> bool:
    """Warn watchers and bidders that the auction ends soon — once per auction.

    ``ending_notice_sent_at`` is claimed with a conditional UPDATE; a penny auction
    whose end moves later after the notice does not get a second one. A candle auction
    gets none: its end is secret.
    """
    now = now or timezone.now()
    window = timedelta(seconds=settings.NP_AUCTION_ENDING_NOTICE_SECONDS)
    claimed = Auction.objects.filter(
        pk=auction_id,
        status=AuctionStatus.ACTIVE,
        ending_notice_sent_at__isnull=True,
        ends_at__gt=now,
        ends_at__lte=now + window,
    ).exclude(auction_type="candle").update(ending_notice_sent_at=now, updated_at=now)
    if not claimed:
        return False
    auction = Auction.objects.get(pk=auction_id)
    remaining = human_duration(auction.ends_at - now)
    context = {**base_context(auction, None), "time_remaining": remaining}
    sent = []
    for user in watchers_and_bidders(auction):
        sent.append(notify_user(
            user,
            template_key="auction_ending",
            context=context,
            channels=["in_app", "push"],
            category="auction",
            priority="urgent",
            idempotency_key=f"auction:{auction.pk}:ending:{user.pk}",
            auction=auction,
            workflow="auction_ending",  # in-app, then email, then SMS unless read or acked
        ))
    # last: publishing takes the platform's event-ordering lock until this commits
    publish_chained(
        auction,
        "auction_ending",
        category="auction",
        data={
            "auction_id": str(auction.pk),
            "auction_title": auction.title,
            "ends_at": auction.ends_at.isoformat(),
            "time_remaining": remaining,
        },
        priority="high",
        correlation_id=correlation("ending", auction.pk),
        expected=impacts([s for s in sent if s]),
    )
    return True


def auctions_send_ending_notices(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    window = timedelta(seconds=settings.NP_AUCTION_ENDING_NOTICE_SECONDS)
    ids = Auction.objects.filter(
        status=AuctionStatus.ACTIVE,
        ending_notice_sent_at__isnull=True,
        ends_at__gt=now,
        ends_at__lte=now + window,
    ).values_list("pk", flat=True)
    return sum(auction_send_ending_notice(auction_id=pk, now=now) for pk in list(ids))


def auctions_close_due(*, now: datetime | None = None) -> int:
    now = now or timezone.now()
    ids = Auction.objects.filter(
        status__in=[AuctionStatus.ACTIVE, AuctionStatus.SCHEDULED], ends_at__lte=now
    ).values_list("pk", flat=True)
    return sum(auction_close(auction_id=pk, now=now) is not None for pk in list(ids))
