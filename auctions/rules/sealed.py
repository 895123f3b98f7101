"""Sealed-bid auctions: first-price and Vickrey (second-price)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from .. import errors
from ..errors import AuctionError
from ..models import Auction, AuctionRuleState, AuctionType, Bid, BidStatus
from .base import CENT, BidContext, BidOutcome, BidRules, Settlement, by_amount_then_time


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
        ctx: BidContext | None = None,
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

    def settle(
        self, auction: Auction, bids: Sequence[Bid], state: AuctionRuleState | None = None
    ) -> Settlement:
        ordered = by_amount_then_time(bids)
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
