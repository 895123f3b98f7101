"""Bidding and watching: the writes a participant makes on a running auction.

Bids on one auction are serialised by ``SELECT ... FOR UPDATE`` on the auction row:
each bid reads the current price, checks the type's rules (``auctions.rules``) and
writes within the lock, so of two simultaneous bids of the same amount exactly one is
accepted and the other is told it is too low. Each bid is announced by
``events.emit_bid_events`` in the same transaction.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from users.models import User

from .. import errors
from ..errors import AuctionError
from ..models import Auction, AuctionItem, AuctionStatus, AuctionWatcher, Bid, BidStatus
from ..rules import parse_amount, rules_for
from ..selectors import auction_visible
from .events import emit_bid_events


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


@transaction.atomic
def bid_place(
    *, auction_id: Any, bidder: User, amount: Decimal | int | str, item: AuctionItem | Any = None
) -> Bid:
    """Place a bid under the auction type's rules, or raise ``AuctionError``.

    400-class errors name the field at fault (``amount``, ``item``, ``bidder``,
    ``auction_type``); an auction that is not running is a 409.
    """
    value = parse_amount(amount)
    try:
        auction = Auction.objects.select_for_update().get(pk=auction_id)
    except (Auction.DoesNotExist, ValueError, TypeError, ValidationError):
        raise _not_found() from None
    if not auction_visible(auction, bidder):
        raise _not_found()  # a draft: not even its existence is told
    rules = rules_for(auction.auction_type)
    if auction.seller_id == bidder.pk:
        raise AuctionError(
            errors.SELLER_CANNOT_BID, "sellers cannot bid on their own auction", field="bidder"
        )
    now = timezone.now()
    if auction.status != AuctionStatus.ACTIVE or now < auction.starts_at:
        raise AuctionError(
            errors.AUCTION_NOT_ACTIVE,
            f"the auction is not accepting bids (status {auction.status})",
            status=409,
        )
    if now >= auction.ends_at:
        raise AuctionError(errors.AUCTION_ENDED, "the auction has ended", status=409)
    item_obj = _resolve_item(auction, item)

    leading = None
    bidder_has_bid = False
    if rules.sealed:
        bidder_has_bid = auction.bids.filter(bidder=bidder).exists()
    else:
        leading = auction.bids.filter(status=BidStatus.LEADING).select_related("bidder").first()
    outcome = rules.check(
        auction, value, bidder_id=bidder.pk, leading=leading, bidder_has_bid=bidder_has_bid
    )

    bid = Bid.objects.create(
        auction=auction,
        item=item_obj,
        bidder=bidder,
        amount=value,
        status=outcome.status,
        placed_at=now,
    )
    if outcome.displaced is not None:
        Bid.objects.filter(pk=outcome.displaced.pk).update(status=BidStatus.OUTBID)
    previous_price = auction.current_price
    auction.bid_count += 1
    if outcome.new_price is not None:
        auction.current_price = outcome.new_price
    auction.ends_at = auction.ends_at + outcome.extend_by
    auction.save(update_fields=["bid_count", "current_price", "ends_at", "updated_at"])

    emit_bid_events(auction, bid, outcome, previous_price, sealed=rules.sealed)
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
