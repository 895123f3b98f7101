"""Japanese clock auctions: bidders enter before the start and drop out while the price
rises. An entry is a ``bids`` row (status ``active``, the starting price); dropping out
sets it to ``dropped`` with the clock price at that moment. When one bidder is left in,
the auction closes at once (``JapaneseRules.decided``)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from users.models import User

from .. import errors
from ..errors import AuctionError
from ..models import AuctionStatus, Bid, BidStatus
from ..rules import CENT, JapaneseRules, rules_for
from .bidding import lock_running, require_running
from .chain import correlation, impacts, publish_chained
from .events import amount_text, base_context, bidder_pseudonym, money, notify_user
from .lifecycle import auction_close


def _japanese(auction_type: str) -> JapaneseRules:
    rules = rules_for(auction_type)
    if not isinstance(rules, JapaneseRules):
        raise AuctionError(
            errors.ENTRY_ONLY, "only Japanese auctions take entries and drop-outs",
            field="auction_type",
        )
    return rules


@transaction.atomic
def auction_enter(*, auction_id: Any, bidder: User) -> Bid:
    """Enter a scheduled Japanese auction (once)."""
    auction = lock_running(auction_id, bidder)
    _japanese(auction.auction_type)
    if auction.status != AuctionStatus.SCHEDULED:
        raise AuctionError(
            errors.ENTRY_CLOSED, "entries close when the clock starts", status=409
        )
    if auction.bids.filter(bidder=bidder).exists():
        raise AuctionError(errors.ALREADY_ENTERED, "you have entered already", field="bidder")
    now = timezone.now()
    entry = Bid.objects.create(
        auction=auction, bidder=bidder, amount=max(auction.starting_price, CENT),
        status=BidStatus.ACTIVE, placed_at=now,
    )
    auction.bid_count += 1
    auction.save(update_fields=["bid_count", "updated_at"])
    publish_chained(
        auction, "auction_entered", category="bid", visibility="authenticated",
        data={"auction_id": str(auction.pk), "auction_title": auction.title,
              "auction_type": auction.auction_type,
              "bidder": bidder_pseudonym(auction.pk, bidder.pk),
              "entrants": auction.bid_count},
        correlation_id=correlation("enter", entry.pk), bid=entry, expected=impacts(),
    )
    return entry


@transaction.atomic
def auction_drop_out(*, auction_id: Any, bidder: User) -> Bid:
    """Leave a running Japanese auction at the current clock price; when only one
    bidder is left in, the auction closes and that bidder wins at this price."""
    auction = lock_running(auction_id, bidder)
    rules = _japanese(auction.auction_type)
    now = timezone.now()
    require_running(auction, now)
    entry = auction.bids.filter(bidder=bidder, status=BidStatus.ACTIVE).first()
    if entry is None:
        raise AuctionError(errors.NOT_ENTERED, "you are not in this auction", field="bidder")
    price = auction.current_price or auction.starting_price
    Bid.objects.filter(pk=entry.pk).update(status=BidStatus.DROPPED, amount=price, placed_at=now)
    entry.refresh_from_db()
    still_in = auction.bids.filter(status=BidStatus.ACTIVE).count()
    sent = notify_user(
        bidder, template_key="auction_dropped_out",
        context={**base_context(auction, None), "amount": amount_text(price, auction.currency)},
        channels=["in_app"], category="bid", priority="normal",
        idempotency_key=f"bid:{entry.pk}:dropped", auction=auction, bid=entry,
    )
    corr = correlation("drop_out", entry.pk)
    decided = rules.decided(still_in, auction.bid_count)
    event = publish_chained(
        auction, "auction_dropped_out", category="bid", visibility="authenticated",
        data={"auction_id": str(auction.pk), "auction_title": auction.title,
              "auction_type": auction.auction_type,
              "bidder": bidder_pseudonym(auction.pk, bidder.pk),
              "price": money(price), "currency": auction.currency, "still_in": still_in},
        correlation_id=corr, bid=entry,
        expected=impacts([sent] if sent else [], ends_auction=decided or None),
    )
    if decided:
        auction.ends_at = max(now, auction.starts_at + timedelta(microseconds=1))
        auction.save(update_fields=["ends_at", "updated_at"])
        auction_close(auction_id=auction.pk, now=auction.ends_at, cause=event)
    return entry
