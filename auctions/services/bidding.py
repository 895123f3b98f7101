"""Bidding and watching: the writes a participant makes on a running auction.

Bids on one auction are serialised by ``SELECT ... FOR UPDATE`` on the auction row:
each bid reads the current price, checks the type's rules (``auctions.rules``) and
writes within the lock, so of two simultaneous bids of the same amount exactly one is
accepted and the other is told it is too low (and of two buyers at a buy-now or Dutch
clock price, exactly one buys). Each bid is announced by
``bid_events.emit_bid_events`` in the same transaction.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from users.models import User

from .. import errors
from ..errors import AuctionError
from ..models import (
    Auction,
    AuctionItem,
    AuctionRuleState,
    AuctionStatus,
    AuctionWatcher,
    Bid,
    BidStatus,
)
from ..rules import BidContext, parse_amount, rules_for
from ..selectors import auction_visible
from .bid_events import emit_bid_events
from .lifecycle import auction_close


def _not_found() -> AuctionError:
    return AuctionError(errors.AUCTION_NOT_FOUND, "no such auction", field="auction_id", status=404)


def _get_auction(auction_id: Any, *, viewer: User) -> Auction:
    """The auction, or 404 when there is none or ``viewer`` may not see it (a draft)."""
    try:
        auction = Auction.objects.get(pk=auction_id)
    except (Auction.DoesNotExist, ValueError, TypeError, ValidationError):
        raise _not_found() from None
    if not auction_visible(auction, viewer):
        raise _not_found()
    return auction


def auction_watch(*, auction_id: Any, user: User) -> AuctionWatcher:
    """Watch an auction (idempotent): watchers hear it start, near its end and end."""
    auction = _get_auction(auction_id, viewer=user)
    watcher, _ = AuctionWatcher.objects.get_or_create(auction=auction, user=user)
    return watcher


def auction_unwatch(*, auction_id: Any, user: User) -> bool:
    """Stop watching; True if the user was watching."""
    auction = _get_auction(auction_id, viewer=user)
    deleted, _ = AuctionWatcher.objects.filter(auction=auction, user=user).delete()
    return deleted > 0


def rule_state(auction: Auction) -> AuctionRuleState | None:
    return AuctionRuleState.objects.filter(auction_id=auction.pk).first()


def lock_running(auction_id: Any, user: User) -> Auction:
    """The auction, locked (``SELECT ... FOR UPDATE``): bids and clock ticks on one
    auction are decided one at a time, by the database."""
    try:
        auction = Auction.objects.select_for_update().get(pk=auction_id)
    except (Auction.DoesNotExist, ValueError, TypeError, ValidationError):
        raise _not_found() from None
    if not auction_visible(auction, user):
        raise _not_found()  # a draft: not even its existence is told
    if auction.seller_id == user.pk:
        raise AuctionError(
            errors.SELLER_CANNOT_BID, "sellers cannot bid on their own auction", field="bidder"
        )
    return auction


def require_running(auction: Auction, now: Any) -> None:
    if auction.status != AuctionStatus.ACTIVE or now < auction.starts_at:
        raise AuctionError(
            errors.AUCTION_NOT_ACTIVE,
            f"the auction is not accepting bids (status {auction.status})",
            status=409,
        )
    if now >= auction.ends_at:
        raise AuctionError(errors.AUCTION_ENDED, "the auction has ended", status=409)


@transaction.atomic
def bid_place(
    *,
    auction_id: Any,
    bidder: User,
    amount: Decimal | int | str,
    item: AuctionItem | Any = None,
    max_amount: Decimal | int | str | None = None,
) -> Bid:
    """Place a bid under the auction type's rules, or raise ``AuctionError``.

    400-class errors name the field at fault (``amount``, ``max_amount``, ``item``,
    ``bidder``, ``auction_type``); an auction that is not running is a 409. A bid that
    ends the auction (Dutch, buy-it-now) closes it in the same transaction.
    """
    value = parse_amount(amount)
    limit = None if max_amount in (None, "") else parse_amount(max_amount, name="max_amount")
    auction = lock_running(auction_id, bidder)
    rules = rules_for(auction.auction_type)
    now = timezone.now()
    require_running(auction, now)
    item_obj = _resolve_item(auction, item)

    leading = None
    bidder_has_bid = False
    if rules.sealed:
        bidder_has_bid = auction.bids.filter(bidder=bidder).exists()
    else:
        leading = auction.bids.filter(status=BidStatus.LEADING).select_related("bidder").first()
    ctx = BidContext(now=now, state=rule_state(auction), max_amount=limit)
    outcome = rules.check(
        auction, value, bidder_id=bidder.pk, leading=leading, bidder_has_bid=bidder_has_bid,
        ctx=ctx,
    )
    recorded = value
    if outcome.status == BidStatus.LEADING and outcome.new_price is not None and rules.proxies:
        recorded = outcome.new_price  # a proxy contest can lift the new leader's bid
    elif outcome.proxy is not None:
        recorded = limit or value  # the leader's proxy beat this bidder's maximum
    bid = Bid.objects.create(
        auction=auction,
        item=item_obj,
        bidder=bidder,
        amount=recorded,
        max_amount=limit,
        status=outcome.status,
        placed_at=now,
    )
    proxy_bid = None
    if outcome.proxy is not None and leading is not None:
        Bid.objects.filter(pk=leading.pk).update(status=BidStatus.OUTBID)
        proxy_bid = Bid.objects.create(
            auction=auction, item=leading.item, bidder_id=outcome.proxy.bidder_id,
            amount=outcome.proxy.amount, max_amount=outcome.proxy.max_amount,
            status=outcome.proxy.status, placed_at=now, by_proxy=True,
        )
    if outcome.displaced is not None:
        Bid.objects.filter(pk=outcome.displaced.pk).update(status=BidStatus.OUTBID)
    previous_price = auction.current_price
    auction.bid_count += 1 + (proxy_bid is not None)
    if outcome.new_price is not None:
        auction.current_price = outcome.new_price
    auction.ends_at = auction.ends_at + outcome.extend_by
    if outcome.close_now:
        auction.ends_at = max(now, auction.starts_at + timedelta(microseconds=1))
    auction.save(update_fields=["bid_count", "current_price", "ends_at", "updated_at"])

    bid_event = emit_bid_events(
        auction, bid, outcome, previous_price, rules=rules, proxy_bid=proxy_bid
    )
    if outcome.close_now:
        auction_close(auction_id=auction.pk, now=auction.ends_at, cause=bid_event)
    return bid


def _resolve_item(auction: Auction, item: AuctionItem | Any) -> AuctionItem | None:
    if item is None or item == "":
        return None
    item_id = item.pk if isinstance(item, AuctionItem) else item
    try:
        return AuctionItem.objects.get(pk=item_id, auction=auction)
    except (AuctionItem.DoesNotExist, ValueError, TypeError, ValidationError):
        raise AuctionError(
            errors.ITEM_NOT_IN_AUCTION, "the item does not belong to this auction", field="item"
        ) from None
