"""Open ascending auctions: English (with proxy bids and anti-sniping), silent, all-pay
and top-up. Each bid must reach the standing price plus the minimum increment; they
differ in who pays what and whether the end moves."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

from .. import errors
from ..errors import AuctionError
from ..models import Auction, AuctionRuleState, AuctionType, Bid, BidStatus
from .base import (
    CENT,
    ZERO,
    BidContext,
    BidOutcome,
    BidRules,
    ProxyBid,
    Settlement,
    by_amount_then_time,
    highest_per_bidder,
    refuse_leader,
    too_low,
)


class EnglishRules(BidRules):
    """Ascending: the first bid at least the starting price, each later one at least the
    current price plus the minimum increment. A bid may name ``max_amount``: the
    platform then bids for that bidder, one increment at a time, up to that limit
    (proxy bidding; of two equal maximums the earlier holds). A bid within
    ``anti_sniping_seconds`` of the end pushes the end to that far after the bid.
    The highest bid wins and pays its amount; the reserve only decides the sale."""

    auction_type = AuctionType.ENGLISH
    proxies = True
    config_fields = {"anti_sniping_seconds": ("seconds0", 0)}

    def minimum(self, auction: Auction, leading: Bid | None) -> Decimal:
        if leading is None or auction.current_price is None:
            return max(auction.starting_price, CENT)
        return auction.current_price + auction.min_increment

    def extension(self, auction: Auction, ctx: BidContext) -> timedelta:
        window = timedelta(seconds=int(ctx.config.get("anti_sniping_seconds") or 0))
        left = auction.ends_at - ctx.now
        return window - left if window and left < window else ZERO

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
        refuse_leader(leading, bidder_id)
        minimum = self.minimum(auction, leading)
        if amount < minimum:
            raise too_low(minimum, auction.currency)
        limit = ctx.max_amount
        if limit is not None and not self.proxies:
            raise AuctionError(
                errors.BID_AMOUNT_INVALID,
                f"{auction.auction_type} auctions take no maximum (proxy) bids",
                field="max_amount",
            )
        if limit is not None and limit < amount:
            raise AuctionError(
                errors.BID_AMOUNT_INVALID, "max_amount must be at least the amount",
                field="max_amount",
            )
        extend = self.extension(auction, ctx)
        if leading is None or leading.max_amount is None:
            return BidOutcome(BidStatus.LEADING, amount, extend, leading)
        return self._against_proxy(auction, amount, limit or amount, leading, extend)

    def _against_proxy(
        self, auction: Auction, amount: Decimal, limit: Decimal, leading: Bid, extend: timedelta
    ) -> BidOutcome:
        leader_max = leading.max_amount or leading.amount
        step = auction.min_increment
        if limit <= leader_max:
            # the leader's proxy answers: one increment over this bid, at most its limit
            price = min(leader_max, limit + step)
            answer = ProxyBid(leading.bidder_id, price, leader_max, BidStatus.LEADING)
            return BidOutcome(BidStatus.OUTBID, price, extend, None, proxy=answer)
        price = max(amount, min(limit, leader_max + step))
        return BidOutcome(BidStatus.LEADING, price, extend, leading, proxy_exceeded=True)


class SilentRules(EnglishRules):
    """Written bids on an open sheet: every signed-in attendee sees each bid (pseudonym
    and amount); each bid at least the highest plus the minimum increment; no proxies,
    and the end is fixed. The highest bid wins and pays its amount."""

    auction_type = AuctionType.SILENT
    proxies = False
    config_fields = {}

    def extension(self, auction: Auction, ctx: BidContext) -> timedelta:
        return ZERO


class AllPayRules(SilentRules):
    """Open ascending bids; the highest bid wins the item and pays its amount, and every
    other bidder pays their own highest bid too — won or not, reserve met or not."""

    auction_type = AuctionType.ALL_PAY

    def settle(
        self, auction: Auction, bids: Sequence[Bid], state: AuctionRuleState | None = None
    ) -> Settlement:
        result = super().settle(auction, bids)
        winner = result.winning_bid.bidder_id if result.winning_bid else None
        owed = {b: a for b, a in highest_per_bidder(bids).items() if b != winner}
        return Settlement(result.winning_bid, result.price, result.reserve_met, payments=owed)


class TopUpRules(SilentRules):
    """Top-up: the charity variant of the all-pay auction (as e.g. Wikipedia's "Auction"
    article describes it): open ascending bids; the highest bidder wins and pays their
    bid, without any top-up; every losing bidder pays the difference between their
    (highest) bid and the next lower bidder's, the lowest loser the difference to the
    starting price. With no sale (reserve not met) every bidder pays that difference."""

    auction_type = AuctionType.TOP_UP

    def settle(
        self, auction: Auction, bids: Sequence[Bid], state: AuctionRuleState | None = None
    ) -> Settlement:
        result = super().settle(auction, bids)
        winner = result.winning_bid.bidder_id if result.winning_bid else None
        first_at: dict[Any, Any] = {}
        for bid in bids:
            first_at.setdefault(bid.bidder_id, (bid.placed_at, str(bid.id)))
            first_at[bid.bidder_id] = min(first_at[bid.bidder_id], (bid.placed_at, str(bid.id)))
        best = highest_per_bidder(bids)
        ranked = sorted(best, key=lambda b: (-best[b], first_at[b]))
        owed: dict[Any, Decimal] = {}
        for place, bidder in enumerate(ranked):
            if bidder == winner:
                continue
            below = best[ranked[place + 1]] if place + 1 < len(ranked) else auction.starting_price
            top_up = max(best[bidder] - below, Decimal("0.00"))
            if top_up > 0:
                owed[bidder] = top_up
        return Settlement(result.winning_bid, result.price, result.reserve_met, payments=owed)


class ReverseRules(BidRules):
    """Procurement: the auction's owner buys and sellers bid the price down. The first
    bid at most the starting price (the buyer's ceiling; none when it is 0), each later
    one at most the current price minus the minimum increment. The lowest bid wins and is
    paid its amount; the reserve is the most the buyer will pay (ties: the earlier bid)."""

    auction_type = AuctionType.REVERSE

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
        if leading is None or auction.current_price is None:
            ceiling = auction.starting_price if auction.starting_price > 0 else None
        else:
            ceiling = auction.current_price - auction.min_increment
        if ceiling is not None and amount > ceiling:
            raise AuctionError(
                errors.BID_TOO_HIGH,
                f"amount must be at most {ceiling} {auction.currency}",
                field="amount",
            )
        return BidOutcome(BidStatus.LEADING, amount, ZERO, leading)

    def settle(
        self, auction: Auction, bids: Sequence[Bid], state: AuctionRuleState | None = None
    ) -> Settlement:
        ordered = sorted(bids, key=lambda b: (b.amount, b.placed_at, str(b.id)))
        if not ordered:
            return Settlement(None, None, reserve_met=False)
        best = ordered[0]
        if auction.reserve_price is not None and best.amount > auction.reserve_price:
            return Settlement(None, None, reserve_met=False)
        return Settlement(best, best.amount, reserve_met=True)


__all__ = ["AllPayRules", "EnglishRules", "ReverseRules", "SilentRules", "TopUpRules",
           "by_amount_then_time"]
