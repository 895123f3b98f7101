"""The ``BidRules`` interface and what every type's rules share: amounts as money, the
context a bid is checked in, the outcome of a bid and the settlement of an auction.

Pure functions over an auction's state: no database access here, so every rule is
tested without fixtures and the service (``auctions.services``) owns locking and
writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from django.utils import timezone

from .. import errors
from ..errors import AuctionError
from ..models import Auction, AuctionRuleState, Bid
from .amounts import CENT, MAX_AMOUNT, parse_amount
from .config import clean_config

__all__ = ["CENT", "MAX_AMOUNT", "parse_amount"]  # re-exported: the rules' shared money

ZERO = timedelta(0)


@dataclass(frozen=True)
class ProxyBid:
    """A bid the platform places for a bidder under their maximum (English proxy)."""

    bidder_id: Any
    amount: Decimal
    max_amount: Decimal
    status: str


@dataclass(frozen=True)
class BidOutcome:
    """What accepting a bid does to the auction."""

    status: str  # the new bid's status: leading, sealed, outbid (beaten by a proxy), entry
    new_price: Decimal | None  # the auction's current_price afterwards; None = unchanged
    extend_by: timedelta  # how much later the auction now ends
    displaced: Bid | None  # the previous leading bid, now outbid
    #: the auction ends with this bid (Dutch, buy-it-now, the last one in a Japanese clock)
    close_now: bool = False
    #: a bid the leader's proxy places in answer (its status: leading or outbid)
    proxy: ProxyBid | None = None
    #: the displaced leader had a maximum (proxy) bid, and this bid exceeded it
    proxy_exceeded: bool = False


@dataclass(frozen=True)
class Settlement:
    """The result of an auction once it has ended. ``payments``: what each bidder owes
    (bidder id → amount) beyond the winner's price where the type makes losers pay
    (all-pay, top-up, penny fees, Chinese entries); ``proof``: what the type reveals so
    anyone can check the result (candle end, Chinese draw)."""

    winning_bid: Bid | None
    price: Decimal | None
    reserve_met: bool
    payments: dict[Any, Decimal] = field(default_factory=dict)
    proof: dict[str, Any] = field(default_factory=dict)


@dataclass
class BidContext:
    """What a bid is checked against besides the auction row: the time, the type's
    settings and clock (``state``) and the maximum (proxy) amount the bidder named."""

    now: datetime = field(default_factory=timezone.now)
    state: AuctionRuleState | None = None
    max_amount: Decimal | None = None

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.state.config) if self.state is not None else {}


def by_amount_then_time(bids: Sequence[Bid]) -> list[Bid]:
    # The highest amount wins; of equal amounts the earlier bid (a sealed-bid tie).
    return sorted(bids, key=lambda b: (-b.amount, b.placed_at, str(b.id)))


def too_low(minimum: Decimal, currency: str) -> AuctionError:
    return AuctionError(
        errors.BID_TOO_LOW, f"amount must be at least {minimum} {currency}", field="amount"
    )


def refuse_leader(leading: Bid | None, bidder_id: Any) -> None:
    if leading is not None and leading.bidder_id == bidder_id:
        raise AuctionError(
            errors.ALREADY_LEADING, "you already hold the highest bid", field="amount"
        )


def highest_per_bidder(bids: Sequence[Bid]) -> dict[Any, Decimal]:
    best: dict[Any, Decimal] = {}
    for bid in bids:
        best[bid.bidder_id] = max(best.get(bid.bidder_id, bid.amount), bid.amount)
    return best


class BidRules:
    """The interface every auction type's rules implement."""

    auction_type: ClassVar[str]
    #: bids stay hidden until the end (no current price, no outbid notices)
    sealed: ClassVar[bool] = False
    #: bids may name a maximum the platform bids up to (English proxy bidding)
    proxies: ClassVar[bool] = False
    #: a clock moves the price (Dutch, Japanese) or ends the auction (candle)
    clocked: ClassVar[bool] = False
    #: a secret is committed at the start and revealed at the end (candle, Chinese)
    committed: ClassVar[bool] = False
    #: bidders enter before the start and drop out (Japanese); bid_place refuses
    entry_only: ClassVar[bool] = False
    #: the type's settings in ``AuctionRuleState.config``: name → (kind, default)
    config_fields: ClassVar[dict[str, tuple[str, Any]]] = {}

    def validate_config(self, auction: Auction, config: dict[str, Any]) -> dict[str, Any]:
        """The type's settings, checked and completed with defaults; an unknown or bad
        setting is a 400 naming ``config.<name>``."""
        return clean_config(self, auction, config)

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
        raise NotImplementedError

    def settle(
        self, auction: Auction, bids: Sequence[Bid], state: AuctionRuleState | None = None
    ) -> Settlement:
        """The highest bid wins and pays its amount if it meets the reserve (ties: the
        earlier bid)."""
        ordered = by_amount_then_time(bids)
        if not ordered:
            return Settlement(None, None, reserve_met=False)
        best = ordered[0]
        if auction.reserve_price is not None and best.amount < auction.reserve_price:
            return Settlement(None, None, reserve_met=False)
        return Settlement(best, best.amount, reserve_met=True)
