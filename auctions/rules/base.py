"""The ``BidRules`` interface and what every type's rules share: amounts as money, the
outcome of a bid and the settlement of an auction.

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

from .. import errors
from ..errors import AuctionError
from ..models import Auction, Bid

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


def by_amount_then_time(bids: Sequence[Bid]) -> list[Bid]:
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
        ordered = by_amount_then_time(bids)
        if not ordered:
            return Settlement(None, None, reserve_met=False)
        best = ordered[0]
        if auction.reserve_price is not None and best.amount < auction.reserve_price:
            return Settlement(None, None, reserve_met=False)
        return Settlement(best, best.amount, reserve_met=True)
