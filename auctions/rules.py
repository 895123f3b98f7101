"""Bidding rules per auction type: which bids are acceptable, what a bid changes, and
who wins at what price.

Pure functions over an auction's state: no database access here, so every rule is
tested without fixtures and the service (``auctions.services``) owns locking and
writes. Types without rules are stored and listed but refuse bids with
``BID_RULES_UNAVAILABLE``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from . import errors
from .errors import AuctionError
from .models import Auction, AuctionType, Bid, BidStatus

MAX_AMOUNT = Decimal("9999999999.99")  # numeric(12,2)
CENT = Decimal("0.01")


@dataclass(frozen=True)
class BidOutcome:
    """What accepting a bid does to the auction."""

    status: str  # the new bid's status: leading or sealed
    new_price: Decimal | None  # the auction's current_price afterwards; None = unchanged
    extend_by: timedelta  # how much later the auction now ends
    displaced: Bid | None  # the previous leading bid, now outbid


@dataclass(frozen=True)
class Settlement:
    """The result of an auction once it has ended."""

    winning_bid: Bid | None
    price: Decimal | None
    reserve_met: bool


def parse_amount(value: Any) -> Decimal:
    """A bid amount as money: positive, at most two decimals, within numeric(12,2)."""
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value))
    except (InvalidOperation, ValueError, TypeError):
        raise AuctionError(
            errors.BID_AMOUNT_INVALID, "amount must be a number", field="amount"
        ) from None
    if not amount.is_finite():
        raise AuctionError(errors.BID_AMOUNT_INVALID, "amount must be a number", field="amount")
    if amount <= 0:
        raise AuctionError(
            errors.BID_AMOUNT_INVALID, "amount must be greater than zero", field="amount"
        )
    # the bound first: quantize() of a number past Decimal's precision (1e30) raises
    if amount > MAX_AMOUNT:
        raise AuctionError(
            errors.BID_AMOUNT_INVALID, f"amount can be at most {MAX_AMOUNT}", field="amount"
        )
    if amount != amount.quantize(CENT):
        raise AuctionError(
            errors.BID_AMOUNT_INVALID, "amount can have at most two decimals", field="amount"
        )
    return amount.quantize(CENT)


def _by_amount_then_time(bids: Sequence[Bid]) -> list[Bid]:
    # The highest amount wins; of equal amounts the earlier bid (a sealed-bid tie).
    return sorted(bids, key=lambda b: (-b.amount, b.placed_at, str(b.id)))


class BidRules:
    """The interface every auction type's rules implement."""

    auction_type: ClassVar[str]
    #: bids stay hidden until the end (no current price, no outbid notices)
    sealed: ClassVar[bool] = False

    def check(
        self,
        auction: Auction,
        amount: Decimal,
        *,
        bidder_id: Any,
        leading: Bid | None,
        bidder_has_bid: bool,
    ) -> BidOutcome:
        raise NotImplementedError

    def settle(self, auction: Auction, bids: Sequence[Bid]) -> Settlement:
        ordered = _by_amount_then_time(bids)
        if not ordered:
            return Settlement(None, None, reserve_met=False)
        best = ordered[0]
        if auction.reserve_price is not None and best.amount < auction.reserve_price:
            return Settlement(None, None, reserve_met=False)
        return Settlement(best, best.amount, reserve_met=True)


class EnglishRules(BidRules):
    """Ascending: the first bid at least the starting price, each later one at least the
    current price plus the minimum increment. The reserve only decides the sale."""

    auction_type = AuctionType.ENGLISH

    def minimum(self, auction: Auction, leading: Bid | None) -> Decimal:
        if leading is None or auction.current_price is None:
            return max(auction.starting_price, CENT)
        return auction.current_price + auction.min_increment

    def check(
        self,
        auction: Auction,
        amount: Decimal,
        *,
        bidder_id: Any,
        leading: Bid | None,
        bidder_has_bid: bool,
    ) -> BidOutcome:
        if leading is not None and leading.bidder_id == bidder_id:
            raise AuctionError(
                errors.ALREADY_LEADING, "you already hold the highest bid", field="amount"
            )
        minimum = self.minimum(auction, leading)
        if amount < minimum:
            raise AuctionError(
                errors.BID_TOO_LOW,
                f"amount must be at least {minimum} {auction.currency}",
                field="amount",
            )
        return BidOutcome(BidStatus.LEADING, amount, timedelta(0), leading)


class PennyRules(BidRules):
    """Every bid raises the price by exactly one fixed increment and pushes the end
    back by ``extension_seconds``; the last bidder when the clock runs out wins."""

    auction_type = AuctionType.PENNY

    def next_price(self, auction: Auction) -> Decimal:
        step = auction.bid_increment or auction.min_increment
        base = (
            auction.current_price if auction.current_price is not None else auction.starting_price
        )
        return base + step

    def check(
        self,
        auction: Auction,
        amount: Decimal,
        *,
        bidder_id: Any,
        leading: Bid | None,
        bidder_has_bid: bool,
    ) -> BidOutcome:
        if leading is not None and leading.bidder_id == bidder_id:
            raise AuctionError(
                errors.ALREADY_LEADING, "you already hold the highest bid", field="amount"
            )
        expected = self.next_price(auction)
        if amount != expected:
            raise AuctionError(
                errors.BID_NOT_NEXT_PRICE,
                f"a penny-auction bid must be exactly the next price, {expected} {auction.currency}",
                field="amount",
            )
        extend = timedelta(seconds=auction.extension_seconds or 0)
        return BidOutcome(BidStatus.LEADING, amount, extend, leading)


class SealedFirstPriceRules(BidRules):
    """One hidden bid per bidder, at least the starting price; the highest pays its bid."""

    auction_type = AuctionType.SEALED_FIRST_PRICE
    sealed = True

    def check(
        self,
        auction: Auction,
        amount: Decimal,
        *,
        bidder_id: Any,
        leading: Bid | None,
        bidder_has_bid: bool,
    ) -> BidOutcome:
        if bidder_has_bid:
            raise AuctionError(
                errors.SEALED_BID_EXISTS,
                "a sealed-bid auction takes one bid per bidder and you already bid",
                field="amount",
            )
        minimum = max(auction.starting_price, CENT)
        if amount < minimum:
            raise AuctionError(
                errors.BID_TOO_LOW,
                f"amount must be at least {minimum} {auction.currency}",
                field="amount",
            )
        return BidOutcome(BidStatus.SEALED, None, timedelta(0), None)


class VickreyRules(SealedFirstPriceRules):
    """Sealed second-price: the highest bidder wins and pays the second-highest bid, or
    the reserve (else the starting price) when there is no second bid; never less than
    the reserve."""

    auction_type = AuctionType.VICKREY

    def settle(self, auction: Auction, bids: Sequence[Bid]) -> Settlement:
        ordered = _by_amount_then_time(bids)
        if not ordered:
            return Settlement(None, None, reserve_met=False)
        best = ordered[0]
        reserve = auction.reserve_price
        if reserve is not None and best.amount < reserve:
            return Settlement(None, None, reserve_met=False)
        if len(ordered) > 1:
            price = ordered[1].amount
        else:
            price = reserve if reserve is not None else auction.starting_price
        if reserve is not None:
            price = max(price, reserve)
        return Settlement(best, price, reserve_met=True)


RULES: dict[str, BidRules] = {
    rules.auction_type: rules
    for rules in (EnglishRules(), PennyRules(), SealedFirstPriceRules(), VickreyRules())
}


def supports_bidding(auction_type: str) -> bool:
    return auction_type in RULES


def rules_for(auction_type: str) -> BidRules:
    try:
        return RULES[auction_type]
    except KeyError:
        raise AuctionError(
            errors.BID_RULES_UNAVAILABLE,
            f"bidding on {auction_type} auctions is not supported yet",
            field="auction_type",
        ) from None
