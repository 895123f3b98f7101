"""English (open ascending) auctions."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from .. import errors
from ..errors import AuctionError
from ..models import Auction, AuctionType, Bid, BidStatus
from .base import CENT, BidOutcome, BidRules


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
