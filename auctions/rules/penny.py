"""Penny (pay-per-bid) auctions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from .. import errors
from ..errors import AuctionError
from ..models import Auction, AuctionType, Bid, BidStatus
from .base import BidOutcome, BidRules


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
