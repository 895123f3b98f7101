"""Clocks run from the database schedule: ``auction_rule_states.clock_due_at`` says when
an auction's clock next needs the beat (``auctions.run_clocks``, every second).

A Dutch or Japanese price is a function of the tick number, and the tick number of the
time since the start; the last tick applied is stored. A run takes the auction's row
lock (``SKIP LOCKED``: another worker has it), computes the tick due now and advances
``clock_tick`` from the stored value with a conditional UPDATE, so a worker that died
mid-run, a restart or two beat runs at once neither skip a tick nor apply one twice:
every tick from the stored one to the due one is published exactly once, each as an
``auction_price_changed`` event carrying the whole price (the ``latest``-only throttle
keeps the newest). A candle's clock is its secret end: the run closes the auction.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from ..models import Auction, AuctionRuleState, AuctionStatus, BidStatus
from ..rules import CandleRules, ClockRules, DutchRules, JapaneseRules, rules_for, tick_at
from .bid_events import publish_price_changed
from .chain import correlation
from .closing import auction_close
from .events import amount_text, base_context, notify_users, watchers


@transaction.atomic
def auction_clock_run(*, auction_id: Any, now: datetime | None = None) -> int:
    """Apply the ticks due on one auction's clock; how many were applied (a candle that
    went out counts 1)."""
    now = now or timezone.now()
    auction = (
        Auction.objects.select_for_update(skip_locked=True)
        .filter(pk=auction_id, status=AuctionStatus.ACTIVE)
        .first()
    )
    if auction is None:
        return 0
    state = AuctionRuleState.objects.filter(auction_id=auction.pk, clock_due_at__lte=now).first()
    if state is None:
        return 0
    rules = rules_for(auction.auction_type)
    if isinstance(rules, CandleRules):
        end = rules.end_of(auction, state)
        if now < end:
            return 0
        auction.ends_at = max(end, auction.starts_at + timedelta(microseconds=1))
        auction.save(update_fields=["ends_at", "updated_at"])
        auction_close(auction_id=auction.pk, now=max(now, auction.ends_at))
        return 1
    if not isinstance(rules, ClockRules):
        AuctionRuleState.objects.filter(pk=state.pk).update(clock_due_at=None)
        return 0
    return _advance(auction, state, rules, now)


def _advance(auction: Auction, state: AuctionRuleState, rules: ClockRules, now: datetime) -> int:
    config = state.config
    target = tick_at(auction, config, now)
    last = rules.last_tick(auction, config)
    if last is not None:
        target = min(target, last)
    old = state.clock_tick
    due = rules.due_at(auction, config, max(target, old))
    claimed = AuctionRuleState.objects.filter(pk=state.pk, clock_tick=old).update(
        clock_tick=max(target, old), clock_due_at=due
    )
    if not claimed or target <= old:
        return 0
    previous = auction.current_price
    auction.current_price = rules.price_at(auction, config, target)
    auction.save(update_fields=["current_price", "updated_at"])
    notified: list[str] = []
    if isinstance(rules, DutchRules):
        context = {**base_context(auction, None),
                   "amount": amount_text(auction.current_price, auction.currency)}
        notified = notify_users(
            watchers(auction), template_key="auction_price_dropped", context=context,
            channels=["in_app"], category="auction", priority="normal",
            idempotency_prefix=f"auction:{auction.pk}:tick:{target}", auction=auction,
        )
    event = None
    for tick in range(old + 1, target + 1):
        before = rules.price_at(auction, config, tick - 1) if tick > old + 1 else previous
        auction.current_price = rules.price_at(auction, config, tick)
        event = publish_price_changed(
            auction, before, cause=event, correlation_id=correlation("tick", f"{auction.pk}:{tick}"),
            reason="clock", tick=tick, notified=notified if tick == target else None,
        )
    if isinstance(rules, JapaneseRules):
        still_in = auction.bids.filter(status=BidStatus.ACTIVE).count()
        if rules.decided(still_in, auction.bid_count):
            auction.ends_at = max(now, auction.starts_at + timedelta(microseconds=1))
            auction.save(update_fields=["ends_at", "updated_at"])
            auction_close(auction_id=auction.pk, now=auction.ends_at, cause=event)
    return target - old


def auctions_run_clocks(*, now: datetime | None = None) -> int:
    """Run every running auction's clock that is due; how many ticks were applied."""
    now = now or timezone.now()
    ids = AuctionRuleState.objects.filter(
        clock_due_at__lte=now, auction__status=AuctionStatus.ACTIVE
    ).values_list("auction_id", flat=True)
    return sum(auction_clock_run(auction_id=pk, now=now) for pk in list(ids))
