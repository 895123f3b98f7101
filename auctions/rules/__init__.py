"""Bidding rules per auction type: which bids are acceptable, what a bid changes, and
who wins at what price — one ``BidRules`` class per type, one module per family
(``english``: English, silent, all-pay, top-up, reverse; ``sealed``: first-price,
Vickrey; ``penny``: penny, buy-it-now; ``clock``: Dutch, Japanese; ``lottery``: candle,
Chinese).

Pure functions over an auction's state: no database access here, so every rule is
tested without fixtures and the service (``auctions.services``) owns locking and
writes.
"""

from __future__ import annotations

from .. import errors
from ..errors import AuctionError
from .base import CENT, MAX_AMOUNT, BidContext, BidOutcome, BidRules, Settlement, parse_amount
from .clock import ClockRules, DutchRules, JapaneseRules, tick_at
from .english import AllPayRules, EnglishRules, ReverseRules, SilentRules, TopUpRules
from .lottery import CandleRules, ChineseRules, candle_end, commitment_of, draw_ticket, new_secret
from .penny import BuyItNowRules, PennyRules
from .sealed import SealedFirstPriceRules, VickreyRules

RULES: dict[str, BidRules] = {
    rules.auction_type: rules
    for rules in (
        EnglishRules(), DutchRules(), JapaneseRules(), SealedFirstPriceRules(), VickreyRules(),
        PennyRules(), ReverseRules(), AllPayRules(), CandleRules(), SilentRules(),
        ChineseRules(), TopUpRules(), BuyItNowRules(),
    )
}


def supports_bidding(auction_type: str) -> bool:
    return auction_type in RULES


def rules_for(auction_type: str) -> BidRules:
    try:
        return RULES[auction_type]
    except KeyError:
        raise AuctionError(
            errors.BID_RULES_UNAVAILABLE,
            f"bidding on {auction_type} auctions is not supported",
            field="auction_type",
        ) from None


__all__ = [
    "CENT", "MAX_AMOUNT", "RULES", "AllPayRules", "BidContext", "BidOutcome", "BidRules",
    "BuyItNowRules", "CandleRules", "ChineseRules", "ClockRules", "DutchRules", "EnglishRules",
    "JapaneseRules", "PennyRules", "ReverseRules", "SealedFirstPriceRules", "Settlement",
    "SilentRules", "TopUpRules", "VickreyRules", "candle_end", "commitment_of", "draw_ticket",
    "new_secret", "parse_amount", "rules_for", "supports_bidding", "tick_at",
]
