"""Auctions decided by a committed random value: candle (a random end) and Chinese (a
draw weighted by entries).

At the start the platform draws a 256-bit secret and publishes its SHA-256 hash (the
commitment); at the end it reveals the secret. Anyone can then check that the hash
matches and recompute the result from the secret with the functions below, so the
platform could not pick the end or the winner after seeing the bids.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from .. import errors
from ..errors import AuctionError
from ..models import Auction, AuctionRuleState, AuctionType, Bid, BidStatus
from .base import BidContext, BidOutcome, BidRules, Settlement
from .config import config_error, money
from .english import SilentRules


def new_secret() -> tuple[str, str]:
    """A fresh secret (hex) and its commitment, SHA-256 of the hex text."""
    secret = secrets.token_hex(32)
    return secret, commitment_of(secret)


def commitment_of(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def candle_end(auction: Auction, window_seconds: int, secret: str) -> datetime:
    """ends_at − window + (int(SHA-256(secret + ":end"), 16) mod (window + 1)) seconds."""
    digest = hashlib.sha256(f"{secret}:end".encode()).hexdigest()
    offset = int(digest, 16) % (window_seconds + 1)
    return auction.ends_at - timedelta(seconds=window_seconds - offset)


def draw_ticket(secret: str, entries: Sequence[tuple[str, int]]) -> int:
    """The winning ticket (0-based) among ``sum(count)`` tickets: SHA-256 of the secret,
    ":" and the entry list ("<bid id>:<count>" joined by ",", in purchase order), mod
    the number of tickets."""
    listing = ",".join(f"{bid_id}:{count}" for bid_id, count in entries)
    total = sum(count for _, count in entries)
    return int(hashlib.sha256(f"{secret}:{listing}".encode()).hexdigest(), 16) % total


class CandleRules(SilentRules):
    """Open ascending bids (each at least the highest plus the increment) until the
    candle goes out: a moment in the final ``window_seconds`` before ``ends_at``, fixed
    at the start by the committed secret (``candle_end``) and unknown to everyone until
    then. The highest bid placed before that moment wins and pays its amount."""

    auction_type = AuctionType.CANDLE
    clocked = True
    committed = True
    config_fields = {"window_seconds": ("seconds", lambda a: min(
        300, int((a.ends_at - a.starts_at).total_seconds())))}

    def validate_config(self, auction: Auction, config: dict[str, Any]) -> dict[str, Any]:
        cleaned = super().validate_config(auction, config)
        if cleaned["window_seconds"] > (auction.ends_at - auction.starts_at).total_seconds():
            raise config_error("window_seconds", "must fit between starts_at and ends_at")
        return cleaned

    def end_of(self, auction: Auction, state: AuctionRuleState) -> datetime:
        return candle_end(auction, int(state.config["window_seconds"]), state.secret)

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
        if ctx.state is not None and ctx.state.secret and ctx.now >= self.end_of(auction, ctx.state):
            raise AuctionError(errors.AUCTION_ENDED, "the candle has gone out", status=409)
        return super().check(
            auction, amount, bidder_id=bidder_id, leading=leading,
            bidder_has_bid=bidder_has_bid, ctx=ctx,
        )

    def settle(
        self, auction: Auction, bids: Sequence[Bid], state: AuctionRuleState | None = None
    ) -> Settlement:
        if state is None or not state.secret:
            return super().settle(auction, bids)
        end = self.end_of(auction, state)
        result = super().settle(auction, [b for b in bids if b.placed_at < end])
        proof = {"secret": state.secret, "commitment": state.commitment,
                 "candle_end": end.isoformat(),
                 "window_seconds": state.config["window_seconds"]}
        return Settlement(result.winning_bid, result.price, result.reserve_met, proof=proof)


class ChineseRules(BidRules):
    """A lottery: bidders buy entries (``entry_price`` each; a bid's amount must be a
    whole number of entries) until the end; then one entry is drawn, each entry equally
    likely, so a bidder's chance is their share of all entries (``draw_ticket``). The
    drawn entry's bidder wins and pays their entries; everyone else pays their entries
    too. Takings (all entries) under the reserve: no draw, nobody pays."""

    auction_type = AuctionType.CHINESE
    committed = True
    config_fields = {
        "entry_price": ("money", lambda a: a.starting_price if a.starting_price > 0 else "1.00"),
    }

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
        price = money(ctx.config, "entry_price") if ctx.config.get("entry_price") else Decimal("1")
        if amount % price:
            raise AuctionError(
                errors.BID_NOT_ENTRY_MULTIPLE,
                f"amount must be a whole number of entries at {price} {auction.currency}",
                field="amount",
            )
        takings = (auction.current_price or Decimal("0.00")) + amount
        return BidOutcome(BidStatus.ENTRY, takings, timedelta(0), None)

    def settle(
        self, auction: Auction, bids: Sequence[Bid], state: AuctionRuleState | None = None
    ) -> Settlement:
        config = state.config if state is not None else {}
        price = money(config, "entry_price") if config.get("entry_price") else Decimal("1")
        ordered = sorted(bids, key=lambda b: (b.placed_at, str(b.id)))
        takings = sum((b.amount for b in ordered), Decimal("0.00"))
        if not ordered or state is None or not state.secret:
            return Settlement(None, None, reserve_met=False)
        if auction.reserve_price is not None and takings < auction.reserve_price:
            return Settlement(None, None, reserve_met=False)
        entries = [(str(b.id), int(b.amount / price)) for b in ordered]
        ticket = draw_ticket(state.secret, entries)
        seen = 0
        winning = ordered[-1]
        for bid, (_, count) in zip(ordered, entries, strict=True):
            if ticket < seen + count:
                winning = bid
                break
            seen += count
        paid: dict[Any, Decimal] = {}
        for bid in ordered:
            paid[bid.bidder_id] = paid.get(bid.bidder_id, Decimal("0.00")) + bid.amount
        winner_paid = paid.pop(winning.bidder_id)
        proof = {"secret": state.secret, "commitment": state.commitment,
                 "entries": [f"{i}:{n}" for i, n in entries], "ticket": ticket}
        return Settlement(winning, winner_paid, True, payments=paid, proof=proof)
