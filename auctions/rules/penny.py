"""Penny (pay-per-bid) auctions and buy-it-now (fixed price)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from .. import errors
from ..errors import AuctionError
from ..models import Auction, AuctionRuleState, AuctionType, Bid, BidStatus
from .base import ZERO, BidContext, BidOutcome, BidRules, Settlement, refuse_leader
from .config import money
from .english import EnglishRules


class PennyRules(BidRules):
    """Every bid costs the bidder ``bid_fee``, raises the price by exactly one fixed step
    (``bid_increment``) and pushes the end back by ``extension_seconds``; the last
    bidder when the clock runs out wins and pays the final price. Every bidder owes the
    fees of their bids, won or not."""

    auction_type = AuctionType.PENNY
    config_fields = {"bid_fee": ("money0", "0.00")}

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
        ctx: BidContext | None = None,
    ) -> BidOutcome:
        refuse_leader(leading, bidder_id)
        expected = self.next_price(auction)
        if amount != expected:
            raise AuctionError(
                errors.BID_NOT_NEXT_PRICE,
                f"a penny-auction bid must be exactly the next price, {expected} {auction.currency}",
                field="amount",
            )
        extend = timedelta(seconds=auction.extension_seconds or 0)
        return BidOutcome(BidStatus.LEADING, amount, extend, leading)

    def settle(
        self, auction: Auction, bids: Sequence[Bid], state: AuctionRuleState | None = None
    ) -> Settlement:
        result = super().settle(auction, bids)
        fee = money(state.config, "bid_fee") if state and state.config.get("bid_fee") else None
        if not fee:
            return result
        counts = Counter(b.bidder_id for b in bids)
        payments = {bidder: fee * n for bidder, n in counts.items()}
        return Settlement(result.winning_bid, result.price, result.reserve_met, payments=payments)


class BuyItNowRules(EnglishRules):
    """A fixed price (``buy_now_price``): the first bid of exactly that amount buys the
    item and ends the auction at once. With ``bidding`` on, lower bids are taken under
    English rules (no proxies) until someone buys; ``closes_on_first_bid`` (default on)
    withdraws the buy-now option once the first bid is in, and the highest bid then wins
    at the end as in an English auction."""

    auction_type = AuctionType.BUY_IT_NOW
    proxies = False
    config_fields = {
        "buy_now_price": ("money", lambda a: a.starting_price if a.starting_price > 0 else None),
        "bidding": ("bool", False),
        "closes_on_first_bid": ("bool", True),
    }

    def validate_config(self, auction: Auction, config: dict[str, Any]) -> dict[str, Any]:
        cleaned = super().validate_config(auction, config)
        if cleaned["buy_now_price"] is None:
            from .config import config_error

            raise config_error("buy_now_price", "is required for buy_it_now auctions")
        return cleaned

    def buy_now_open(self, auction: Auction, config: dict[str, Any]) -> bool:
        return not (config.get("bidding") and config.get("closes_on_first_bid", True)
                    and auction.bid_count > 0)

    def extension(self, auction: Auction, ctx: BidContext) -> timedelta:
        return ZERO

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
        ctx = ctx or BidContext()
        config = ctx.config
        price = money(config, "buy_now_price") if config.get("buy_now_price") else None
        if price is not None and amount == price and self.buy_now_open(auction, config):
            return BidOutcome(BidStatus.LEADING, amount, ZERO, leading, close_now=True)
        if not config.get("bidding"):
            raise AuctionError(
                errors.BID_NOT_BUY_NOW_PRICE,
                f"this auction sells at its buy-now price only, {price} {auction.currency}",
                field="amount",
            )
        if price is not None and amount >= price and self.buy_now_open(auction, config):
            raise AuctionError(
                errors.BID_NOT_BUY_NOW_PRICE,
                f"a bid at or over the buy-now price must be exactly {price} {auction.currency}",
                field="amount",
            )
        return super().check(
            auction, amount, bidder_id=bidder_id, leading=leading,
            bidder_has_bid=bidder_has_bid, ctx=ctx,
        )

    def settle(
        self, auction: Auction, bids: Sequence[Bid], state: AuctionRuleState | None = None
    ) -> Settlement:
        config = state.config if state is not None else {}
        price = money(config, "buy_now_price") if config.get("buy_now_price") else None
        bought = [b for b in bids if price is not None and b.amount == price]
        if bought:
            first = min(bought, key=lambda b: (b.placed_at, str(b.id)))
            return Settlement(first, first.amount, reserve_met=True)
        return super().settle(auction, bids, state)
