"""Clock auctions: Dutch (descending) and Japanese (ascending). The price is a function
of the tick number, and the tick number of the time since the start
(``tick_at``): the beat applies each tick once (``auctions.services.clocks``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

from .. import errors
from ..errors import AuctionError
from ..models import Auction, AuctionRuleState, AuctionType, Bid, BidStatus
from .base import ZERO, BidContext, BidOutcome, BidRules, Settlement
from .config import config_error, money


def tick_at(auction: Auction, config: dict[str, Any], now: datetime) -> int:
    """The clock's tick at ``now``: whole ``tick_seconds`` since the start (0 at the start)."""
    elapsed = (min(now, auction.ends_at) - auction.starts_at).total_seconds()
    return max(int(elapsed // int(config["tick_seconds"])), 0)


class ClockRules(BidRules):
    clocked = True

    def price_at(self, auction: Auction, config: dict[str, Any], tick: int) -> Decimal:
        raise NotImplementedError

    def last_tick(self, auction: Auction, config: dict[str, Any]) -> int | None:
        """The last tick that changes anything (None: the end decides)."""
        return None

    def due_at(self, auction: Auction, config: dict[str, Any], tick: int) -> datetime | None:
        """When tick ``tick + 1`` is due, or None when the clock has no more ticks."""
        last = self.last_tick(auction, config)
        if last is not None and tick >= last:
            return None
        due = auction.starts_at + timedelta(seconds=int(config["tick_seconds"]) * (tick + 1))
        return due if due < auction.ends_at else None


class DutchRules(ClockRules):
    """Descending clock: the price starts at the starting price and falls by
    ``decrement`` (default: the minimum increment) every ``tick_seconds`` down to ``floor_price``, where it stays. The
    first bid at the clock price (the price last announced) wins at once and pays it.
    No bid by the end: unsold. A floor below the reserve never sells under the reserve."""

    auction_type = AuctionType.DUTCH
    config_fields = {
        "tick_seconds": ("seconds", 10),
        "decrement": ("money", lambda a: a.min_increment),
        "floor_price": ("money0", "0.00"),
    }

    def validate_config(self, auction: Auction, config: dict[str, Any]) -> dict[str, Any]:
        cleaned = super().validate_config(auction, config)
        if money(cleaned, "floor_price") >= auction.starting_price:
            raise config_error("floor_price", "must be below the starting price")
        return cleaned

    def price_at(self, auction: Auction, config: dict[str, Any], tick: int) -> Decimal:
        fallen = auction.starting_price - money(config, "decrement") * tick
        return max(fallen, money(config, "floor_price"))

    def last_tick(self, auction: Auction, config: dict[str, Any]) -> int | None:
        span = auction.starting_price - money(config, "floor_price")
        step = money(config, "decrement")
        return int((span / step).to_integral_value(rounding=ROUND_CEILING))  # first at the floor

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
        clock = auction.current_price if auction.current_price is not None else auction.starting_price
        if amount != clock:
            raise AuctionError(
                errors.BID_NOT_CLOCK_PRICE,
                f"a Dutch bid must be the clock price, {clock} {auction.currency}",
                field="amount",
            )
        return BidOutcome(BidStatus.LEADING, amount, ZERO, None, close_now=True)


class JapaneseRules(ClockRules):
    """Ascending clock: bidders enter before the start; the price rises by ``increment``
    (default: the minimum increment) every ``tick_seconds``, and each bidder drops out
    when it is too high for them. When one bidder is left in, the auction ends at once:
    that bidder wins at the price at which the runner-up dropped out (the starting price
    if nobody else entered). Several still in at the end: the earliest entrant wins at
    the clock price. Fewer than one entrant: unsold; under the reserve: unsold."""

    auction_type = AuctionType.JAPANESE
    entry_only = True
    config_fields = {
        "tick_seconds": ("seconds", 10),
        "increment": ("money", lambda a: a.min_increment),
    }

    def price_at(self, auction: Auction, config: dict[str, Any], tick: int) -> Decimal:
        return auction.starting_price + money(config, "increment") * tick

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
        raise AuctionError(
            errors.ENTRY_ONLY,
            "a Japanese auction takes no bids: enter before the start, then drop out",
            field="amount",
        )

    def decided(self, still_in: int, entrants: int) -> bool:
        """The auction ends now: one (or nobody) left in. A clock with one entrant ends at
        its first tick."""
        return still_in <= 1

    def settle(
        self, auction: Auction, bids: Sequence[Bid], state: AuctionRuleState | None = None
    ) -> Settlement:
        still_in = sorted(
            (b for b in bids if b.status == BidStatus.ACTIVE),
            key=lambda b: (b.placed_at, str(b.id)),
        )
        dropped = [b.amount for b in bids if b.status == BidStatus.DROPPED]
        if not still_in:
            return Settlement(None, None, reserve_met=False)
        if len(still_in) == 1:
            price = max(dropped) if dropped else auction.starting_price
        else:
            price = auction.current_price or auction.starting_price
        if auction.reserve_price is not None and price < auction.reserve_price:
            return Settlement(None, None, reserve_met=False)
        return Settlement(still_in[0], price, reserve_met=True)
